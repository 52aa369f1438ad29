"""mode-collapse at small size: critic damping decides between collapse and coverage (THEORY §5)."""
import pytest

from analysis.collapse import best_ridge, gaussian_w2, mixture_flow
from gandyn.experiments.mode_collapse import tag


@pytest.fixture(scope="module")
def gaussian_ends():
    """{λ: (W₂, |σ|)} at t = 40 of the Gaussian game's gradient flow (c_ω = 1) on a small grid of ridges."""
    ends = {ridge: gaussian_w2(ridge, n_records=11) for ridge in (0.0, 0.5, 1.0, 2.0, 4.0)}
    return {ridge: (float(w2[-1]), float(sigma[-1])) for ridge, (_, w2, sigma) in ends.items()}


def test_gaussian_starts_at_the_quoted_distance():
    """W₂(N(0, 0.25), N(2, 1)) = √4.25 = 2.06 at t = 0."""
    _, w2, _ = gaussian_w2(0.5, t_end=1.0, n_records=2)
    assert float(w2[0]) == pytest.approx(4.25**0.5, rel=1e-12)


def test_gaussian_without_ridge_stalls(gaussian_ends):
    """λ = 0: σ collapses and W₂ stays at least 100× above λ = 0.5's."""
    assert gaussian_ends[0.0][0] >= 100 * gaussian_ends[0.5][0], gaussian_ends
    assert gaussian_ends[0.0][1] < 0.05 < gaussian_ends[0.5][1], gaussian_ends


def test_gaussian_intermediate_damping_is_best(gaussian_ends):
    """The best ridge of the grid is neither its smallest nor its largest."""
    best = best_ridge({ridge: w2 for ridge, (w2, _) in gaussian_ends.items()})
    assert min(gaussian_ends) < best < max(gaussian_ends), gaussian_ends


@pytest.mark.parametrize("seed", [0, 1])
def test_two_modes_damped_covers_undamped_collapses(seed):
    """mix2, 40 particles: α = 2, λ = 1 ends on both modes with a small MMD²; λ = 0 ends in one clump."""
    damped = mixture_flow("mix2", 2.0, 1.0, 40, 40.0, n_records=5, seed=seed)
    assert int(damped["covered"][-1]) == 2 and float(damped["mmd2"][-1]) < 0.05, damped["covered"]
    undamped = mixture_flow("mix2", 2.0, 0.0, 40, 40.0, n_records=5, seed=seed)
    assert int(undamped["covered"][-1]) <= 1 and float(undamped["mmd2"][-1]) > 0.3, undamped["covered"]


def test_key_spelling():
    """Numbers in key names write the decimal point as "p"."""
    assert [tag(v) for v in (0.0, 0.5, 8.0, 0.25)] == ["0", "0p5", "8", "0p25"]
