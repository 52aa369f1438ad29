"""Errors every layer raises: a bad value names its field and what is accepted."""
import math


class ConfigError(ValueError):
    """A configuration value is invalid. ``field`` names it, as a dotted key when known."""

    def __init__(self, field: str, message: str):
        """A ``ValueError`` whose message is ``"field: message"``.

        Args:
            field: the invalid key, dotted where known (``sga.lr``, ``run.workers``).
            message: what is wrong with its value and what is accepted.
        """
        self.field = field
        super().__init__(f"{field}: {message}")


class MissingExtra(ImportError):
    """An optional extra of the project is not installed; the message says what needs it and how to install it."""

    def __init__(self, what: str, module: str, extra: str):
        """An ``ImportError`` of ``module`` whose message names the pip extra that installs it.

        Args:
            what: the feature that needs the module (``"run.workers > 1"``).
            module: the missing module's import name.
            extra: the project's optional extra that installs it (``pip install -e '.[extra]'``).
        """
        super().__init__(f"{what} needs {module}, which is not installed; install it with: "
                         f"pip install -c constraints.txt -e '.[{extra}]'", name=module)


def check_finite(field: str, value) -> float:
    """Return ``value`` as a float if it is a finite number.

    Args:
        field: the key ``value`` was given for, named by the error.
        value: anything ``float`` accepts.

    Returns:
        ``float(value)``.

    Raises:
        ConfigError: if ``value`` is not a number or is ±inf or NaN.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(field, f"expected a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ConfigError(field, f"must be finite, got {value!r}")
    return v


def check_positive(field: str, value, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is finite and > 0 (>= 0 with ``allow_zero``).

    Args:
        field: the key ``value`` was given for, named by the error.
        value: anything ``float`` accepts.
        allow_zero: accept 0 as well.

    Returns:
        ``float(value)``.

    Raises:
        ConfigError: if ``value`` is not finite or is out of range.
    """
    v = check_finite(field, value)
    if v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(field, f"must be {bound}, got {value!r}")
    return v


def check_int(field: str, value, *, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer >= ``minimum``.

    Args:
        field: the key ``value`` was given for, named by the error.
        value: an int, or a float with an integral value (``1e3``); bools are refused.
        minimum: the smallest value accepted.

    Returns:
        ``int(value)``.

    Raises:
        ConfigError: if ``value`` is not an integer or is below ``minimum``.
    """
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value != int(value)):
        raise ConfigError(field, f"expected an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise ConfigError(field, f"must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(field: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``.

    Args:
        field: the key ``value`` was given for, named by the error.
        value: the value given.
        choices: the accepted values (listed by the error).

    Returns:
        ``value``, unchanged.

    Raises:
        ConfigError: if ``value`` is not in ``choices``.
    """
    if value not in choices:
        raise ConfigError(field, f"unknown value {value!r}; expected one of {', '.join(map(str, choices))}")
    return value


def check_shape(name: str, value, shape: tuple):
    """``value`` if it has ``shape``, else a ValueError naming ``name``.

    Args:
        name: what ``value`` is, for the message.
        value: a tensor or array.
        shape: the expected shape.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: if ``value.shape`` differs from ``shape``.
    """
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {list(shape)}, got {list(value.shape)}")
    return value
