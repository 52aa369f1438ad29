"""gandyn: discrete, stochastic and continuous dynamics of adversarial training."""
__version__ = "0.1.0"


def reproduce(name: str, quick: bool = False, out=None, overrides=None, quiet: bool = False):
    """Run catalog entry ``name`` as ``gandyn reproduce NAME`` does; returns its output directory.

    Args:
        name: the catalog entry's name (``gandyn list`` shows them).
        quick: whether to apply the entry's ``--quick`` overrides (a smaller run).
        out: the output directory; None for runs/NAME.
        overrides: {dotted key: value} of configuration keys, on top of the entry's defaults.
        quiet: whether to silence progress messages.

    Returns:
        The output directory (a Path) holding summary.json, report.md and the figures.
    """
    from .runner import reproduce as _reproduce

    return _reproduce(name, quick, out, overrides, quiet)
