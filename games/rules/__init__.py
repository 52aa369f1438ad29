"""Update rules as objects, one file per family: each is one iteration x_k → x_{k+1}, written once, from
which training, its SMEs and its modified flows are all read (``games.rules.base``)."""
from __future__ import annotations

from dataclasses import fields

from ..errors import ConfigError, check_choice, check_int
from .base import Step, UpdateRule, trace
from .extragradient import Extragradient
from .gda import Alternating, Simultaneous
from .hamiltonian import Consensus, Hamiltonian, Symplectic
from .lookahead import Lookahead
from .optimistic import Optimistic

_FAMILIES = {"sim": Simultaneous, "alt-d": Alternating, "alt-g": Alternating, "eg": Extragradient,
             "ogda": Optimistic, "hgd": Hamiltonian, "consensus": Consensus, "symplectic": Symplectic,
             "lookahead": Lookahead}
RULES = tuple(_FAMILIES)  # the names sga.update accepts


def make_rule(name: str, n_d: int = 1, field: str = "sga", **options) -> UpdateRule:
    """The rule ``name`` (``sga.update``) with its ``options`` (config keys ``field``.<option>); n_d > 1
    only for alternating rules (and lookahead's inner one). A ConfigError names the bad key.

    Args:
        name: one of ``RULES``.
        n_d: discriminator steps per iteration (alternating rules only).
        field: the config key prefix of the options, for errors.
        **options: the rule's options (lookahead: ``k``, ``alpha``, ``inner`` and the inner rule's
            options).

    Returns:
        The rule.
    """
    check_choice(f"{field}.update", name, RULES)
    n_d = check_int(f"{field}.n_d", n_d)
    if name == "lookahead":
        own = {k: options.pop(k) for k in ("k", "alpha") if k in options}
        inner = options.pop("inner", "sim")
        if inner == "lookahead":
            raise ConfigError(f"{field}.inner", "lookahead's inner rule cannot be lookahead itself")
        return Lookahead.checked(field, make_rule(inner, n_d, field, **options), **own)
    cls = _FAMILIES[name]
    accepted = [f.name for f in fields(cls) if f.name not in ("first", "n_d")]
    for key in options:
        if key not in accepted:
            raise ConfigError(f"{field}.{key}", f"not an option of rule {name!r}; accepted: "
                                                f"{', '.join(accepted) or 'none'}")
    if cls is Alternating:
        return Alternating.checked(field, first="omega" if name == "alt-d" else "theta", n_d=n_d)
    if n_d > 1:
        raise ConfigError(f"{field}.n_d", "n_d > 1 needs alternating updates (sga.update = alt-d or alt-g)")
    return cls.checked(field, **options)


__all__ = ["UpdateRule", "Step", "trace", "make_rule", "RULES", "Simultaneous", "Alternating", "Extragradient",
           "Optimistic", "Hamiltonian", "Consensus", "Symplectic", "Lookahead"]
