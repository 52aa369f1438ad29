"""The fluctuation–dissipation relation of a constant-rate update (Yaida 2018, FDR1; THEORY §4).

For θ' = θ − η d and any constant c₀, |θ' − c₀|² − |θ − c₀|² = −2η(θ − c₀)·d + η²|d|², so a stationary chain
has 2E[(θ − c₀)·d] = ηE|d|², whatever optimiser made the direction d.
"""
from __future__ import annotations


def fdr_sides(dot, sq, lr):
    """(2(θ − c₀)·d, η|d|²): the two sides of the relation (Yaida 2018, FDR1).

    Args:
        dot: (θ − c₀)·d.
        sq: |d|².
        lr: the rate η.

    Returns:
        (left side, right side), each broadcast from the arguments.
    """
    return 2 * dot, lr * sq
