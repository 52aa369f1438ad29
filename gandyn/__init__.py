"""gandyn: discrete, stochastic and continuous dynamics of adversarial training."""
__version__ = "0.1.0"


def reproduce(name: str, quick: bool = False, out=None, overrides=None, quiet: bool = False):
    """Run catalog entry ``name`` as ``gandyn reproduce NAME`` does; returns its output directory."""
    from .runner import reproduce as _reproduce

    return _reproduce(name, quick, out, overrides, quiet)
