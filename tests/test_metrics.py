"""Distances between distributions, held against closed forms and independent implementations
(POT's exact LP and sliced estimator, scipy, brute-force sums)."""
import math

import numpy as np
import ot
import pytest
import scipy.linalg
import scipy.spatial
import scipy.stats
import torch

from analysis.metrics import (W2_SAMPLES_LIMIT, energy_distance, mmd2, mode_coverage, sliced_w2,
                              w2_1d, w2_gaussian, w2_samples)
from games.errors import ConfigError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def normal_quantiles(n):
    """Φ⁻¹((i − ½)/n), i = 1..n: an exact quantile grid of N(0, 1)."""
    return torch.from_numpy(scipy.stats.norm.ppf((np.arange(n) + 0.5) / n))


def spd(n, g):
    A = torch.randn(n, n, generator=g)
    return A @ A.T + 0.5 * torch.eye(n)


# ---------------------------------------------------------------------------- W₂ on the line

def test_w2_1d_gaussian_closed_form_on_quantile_grids_of_unequal_sizes():
    m1, s1, m2, s2 = 0.3, 1.0, -0.5, 2.0
    x = m1 + s1 * normal_quantiles(4000)[torch.randperm(4000, generator=gen(1))]
    y = m2 + s2 * normal_quantiles(9001)
    exact = math.sqrt((m1 - m2) ** 2 + (s1 - s2) ** 2)
    assert float(w2_1d(x, y)) == pytest.approx(exact, rel=2e-4)
    assert float(w2_1d(y, x)) == pytest.approx(float(w2_1d(x, y)), rel=1e-12)


@pytest.mark.parametrize("N, M", [(7, 11), (12, 12), (1, 5), (6, 4)])
def test_w2_1d_matches_exact_lp(N, M):
    g = gen(N * 100 + M)
    x, y = torch.randn(N, generator=g), 2 * torch.randn(M, generator=g) + 1
    lp = ot.emd2(np.full(N, 1 / N), np.full(M, 1 / M), (x[:, None] - y[None, :]).pow(2).numpy())
    assert float(w2_1d(x, y)) ** 2 == pytest.approx(lp, rel=1e-10, abs=1e-14)


def test_w2_1d_ensemble_equals_member_by_member():
    g = gen(2)
    x, y = torch.randn(5, 30, generator=g), torch.randn(5, 17, generator=g)
    batched = w2_1d(x, y)
    assert batched.shape == (5,)
    assert torch.allclose(batched, torch.stack([w2_1d(a, b) for a, b in zip(x, y)]), rtol=1e-12)
    assert w2_1d(x, y[0]).shape == (5,)  # an unbatched y broadcasts against the ensemble


# ---------------------------------------------------------------------------- Gaussian W₂

def test_w2_gaussian_one_dimensional_formula():
    d = w2_gaussian(torch.tensor([0.3]), torch.tensor([[4.0]]), torch.tensor([-1.0]), torch.tensor([[0.25]]))
    assert float(d) == pytest.approx(math.sqrt(1.3 ** 2 + (2.0 - 0.5) ** 2), rel=1e-12)


def test_w2_gaussian_commuting_case_by_hand():
    a, b = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 0.0])  # S₂ singular on purpose
    m1, m2 = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 0.0])
    by_hand = math.sqrt(5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 0) ** 2)
    assert float(w2_gaussian(m1, torch.diag(a), m2, torch.diag(b))) == pytest.approx(by_hand, rel=1e-12)


def test_w2_gaussian_non_commuting_against_scipy_sqrtm_symmetric_and_batched():
    g = gen(3)
    m1, m2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    S1, S2 = torch.stack([spd(3, g) for _ in range(4)]), torch.stack([spd(3, g) for _ in range(4)])
    d = w2_gaussian(m1, S1, m2, S2)
    assert d.shape == (4,)
    for k in range(4):  # tr (S₁S₂)^½ = tr (S₂^½ S₁ S₂^½)^½, computed by a different route
        cross = np.trace(scipy.linalg.sqrtm((S1[k] @ S2[k]).numpy())).real
        ref = float((m1[k] - m2[k]).pow(2).sum()) + float(S1[k].trace() + S2[k].trace()) - 2 * cross
        assert float(d[k]) == pytest.approx(math.sqrt(ref), rel=1e-9)
    assert torch.allclose(d, w2_gaussian(m2, S2, m1, S1), rtol=1e-9)
    assert torch.allclose(w2_gaussian(m1, S1, m1, S1), torch.zeros(4), atol=1e-6)


# ---------------------------------------------------------------------------- exact W₂ of clouds

def test_w2_samples_equals_w2_1d_on_the_line():
    g = gen(4)
    x, y = torch.randn(40, 1, generator=g), 1.5 * torch.randn(65, 1, generator=g) + 0.5
    assert float(w2_samples(x, y)) == pytest.approx(float(w2_1d(x[:, 0], y[:, 0])), rel=1e-9)


def test_w2_samples_translation_is_the_shift_and_batches():
    g = gen(5)
    x, c = torch.randn(3, 80, 2, generator=g), torch.tensor([0.7, -1.2])
    d = w2_samples(x, x + c)  # W₂(μ, μ(· − c)) = |c|: the identity plan is optimal
    assert d.shape == (3,)
    assert torch.allclose(d, c.norm().expand(3), rtol=1e-9)


def test_w2_samples_refuses_large_clouds_and_points_to_sliced():
    x = torch.zeros(W2_SAMPLES_LIMIT + 1, 2)
    with pytest.raises(ConfigError, match="sliced_w2") as err:
        w2_samples(x, torch.zeros(3, 2))
    assert err.value.field == "x"


# ---------------------------------------------------------------------------- sliced W₂

def test_sliced_w2_of_a_shift_is_c_over_root_n():
    # y = x + c: each projection is a translation by θ·c, so SW₂² = mean (θ·c)² → |c|²/n, and
    # (θ·e)² ~ Beta(½, (n−1)/2) has variance 2(n−1)/(n²(n+2)).
    n, P = 3, 4000
    x, c = torch.randn(200, n, generator=gen(6)), torch.tensor([1.0, -2.0, 0.5])
    sw2 = float(sliced_w2(x, x + c, n_projections=P, seed=7)) ** 2
    sd = float(c.pow(2).sum()) * math.sqrt(2 * (n - 1) / (n ** 2 * (n + 2)) / P)
    assert abs(sw2 - float(c.pow(2).sum()) / n) < 4 * sd


def test_sliced_w2_of_independent_gaussian_samples_that_differ_by_a_shift():
    n, c = 2, torch.tensor([1.5, 0.0])
    g = gen(8)
    x, y = torch.randn(3000, n, generator=g), torch.randn(3000, n, generator=g) + c
    assert float(sliced_w2(x, y, n_projections=500, seed=1)) == pytest.approx(float(c.norm()) / math.sqrt(n), rel=0.05)


def test_sliced_w2_matches_pot_with_the_same_directions():
    g = gen(9)
    x, y = torch.randn(50, 4, generator=g), torch.randn(37, 4, generator=g) * 2
    ours = sliced_w2(x, y, n_projections=20, seed=3)
    theta = torch.randn(20, 4, generator=gen(3))  # the documented draw: CPU generator seeded by seed
    theta = theta / theta.norm(dim=-1, keepdim=True)
    pot = ot.sliced_wasserstein_distance(x.numpy(), y.numpy(), projections=theta.T.numpy())
    assert float(ours) == pytest.approx(float(pot), rel=1e-9)


def test_sliced_w2_is_deterministic_and_batched():
    g = gen(10)
    x, y = torch.randn(4, 30, 3, generator=g), torch.randn(4, 25, 3, generator=g)
    a, b = sliced_w2(x, y, n_projections=16, seed=5), sliced_w2(x, y, n_projections=16, seed=5)
    assert torch.equal(a, b) and a.shape == (4,)
    assert not torch.equal(a, sliced_w2(x, y, n_projections=16, seed=6))
    assert torch.allclose(a, torch.stack([sliced_w2(p, q, n_projections=16, seed=5) for p, q in zip(x, y)]))


# ---------------------------------------------------------------------------- MMD

def rbf_mmd2_gaussians(m1, s1, m2, s2, h, n):
    """MMD² between N(m₁, s₁²I) and N(m₂, s₂²I) for exp(−|x−y|²/2h²): with Z = X − Y ~ N(μ, σ²I),
    E exp(−|Z|²/2h²) = (h²/(h²+σ²))^{n/2} exp(−|μ|²/2(h²+σ²))."""
    def e(mu2, var):
        return (h ** 2 / (h ** 2 + var)) ** (n / 2) * math.exp(-mu2 / (2 * (h ** 2 + var)))
    dm2 = float((m1 - m2).pow(2).sum())
    return e(0, 2 * s1 ** 2), e(0, 2 * s2 ** 2), e(dm2, s1 ** 2 + s2 ** 2)


def test_mmd2_unbiased_mean_matches_gaussian_closed_form_and_biased_its_expectation():
    R, N, M, n, h = 400, 40, 30, 2, 1.3
    m1, s1, m2, s2 = torch.tensor([0.0, 0.0]), 1.0, torch.tensor([0.8, -0.3]), 0.7
    g = gen(11)
    x, y = m1 + s1 * torch.randn(R, N, n, generator=g), m2 + s2 * torch.randn(R, M, n, generator=g)
    exx, eyy, exy = rbf_mmd2_gaussians(m1, s1, m2, s2, h, n)
    u = mmd2(x, y, bandwidth=h)
    assert u.shape == (R,)
    assert abs(float(u.mean()) - (exx + eyy - 2 * exy)) < 4 * float(u.std()) / math.sqrt(R)
    v = mmd2(x, y, bandwidth=h, unbiased=False)  # E V = ((N−1)Exx + k(0))/N + same for y − 2Exy
    expected_v = ((N - 1) * exx + 1) / N + ((M - 1) * eyy + 1) / M - 2 * exy
    assert abs(float(v.mean()) - expected_v) < 4 * float(v.std()) / math.sqrt(R)


def test_mmd2_unbiased_is_centred_under_equal_distributions():
    R = 400
    g = gen(12)
    u = mmd2(torch.randn(R, 30, 2, generator=g), torch.randn(R, 30, 2, generator=g))
    assert abs(float(u.mean())) < 4 * float(u.std()) / math.sqrt(R)
    assert (u < 0).any()  # the U-statistic is not clipped at zero


def brute_force_mmd2(x, y, k, unbiased):
    x, y = x.numpy(), y.numpy()
    def mean(a, b, same):
        vals = [k(np.linalg.norm(p - q)) for i, p in enumerate(a) for j, q in enumerate(b)
                if not (same and unbiased and i == j)]
        return sum(vals) / len(vals)
    return mean(x, x, True) + mean(y, y, True) - 2 * mean(x, y, False)


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("kernel", ["rbf", "imq", "energy"])
def test_mmd2_against_brute_force_sums(kernel, unbiased):
    g = gen(13)
    x, y, h = torch.randn(6, 3, generator=g), torch.randn(9, 3, generator=g) + 0.5, 0.9
    k = {"rbf": lambda d: math.exp(-d ** 2 / (2 * h ** 2)), "imq": lambda d: (1 + d ** 2 / h ** 2) ** -0.5,
         "energy": lambda d: -d}[kernel]
    got = float(mmd2(x, y, kernel=kernel, bandwidth=h, unbiased=unbiased))
    assert got == pytest.approx(brute_force_mmd2(x, y, k, unbiased), rel=1e-10)


def test_mmd2_median_heuristic_is_the_median_pooled_distance():
    g = gen(14)
    x, y = torch.randn(10, 2, generator=g), torch.randn(5, 2, generator=g)  # 105 pairs: an odd count
    h = float(np.median(scipy.spatial.distance.pdist(torch.cat([x, y]).numpy())))
    assert float(mmd2(x, y)) == pytest.approx(float(mmd2(x, y, bandwidth=h)), rel=1e-12)


# ---------------------------------------------------------------------------- energy distance

def test_energy_distance_is_the_square_of_scipys_in_1d():
    g = gen(15)
    u, v = torch.randn(70, generator=g), 1.3 * torch.randn(45, generator=g) + 0.4
    scipy_value = scipy.stats.energy_distance(u.numpy(), v.numpy())
    assert float(energy_distance(u[:, None], v[:, None])) == pytest.approx(scipy_value ** 2, rel=1e-10)


def test_energy_distance_point_masses_positive_and_small_for_equal_laws():
    c = torch.tensor([3.0, 4.0])
    assert float(energy_distance(torch.zeros(5, 2), c.expand(7, 2))) == pytest.approx(2 * 5.0, rel=1e-12)
    g = gen(16)
    e = energy_distance(torch.randn(20, 25, 3, generator=g), torch.randn(20, 25, 3, generator=g) + 0.3)
    assert (e >= 0).all()
    same = energy_distance(torch.randn(2000, 2, generator=g), torch.randn(2000, 2, generator=g))
    shifted = energy_distance(torch.randn(2000, 2, generator=g), torch.randn(2000, 2, generator=g) + 0.5)
    assert 0 <= float(same) < 0.01 < float(shifted)


# ---------------------------------------------------------------------------- mode coverage

RING = torch.stack([torch.tensor([2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)])
                    for k in range(8)])


def test_mode_coverage_collapsed_and_full_ring():
    sigma, g = 0.05, gen(17)
    collapsed = RING[3] + sigma * torch.randn(1000, 2, generator=g)
    cov = mode_coverage(collapsed, RING, radius=3 * sigma)
    assert int(cov.covered) == 1 and int(cov.per_mode.argmax()) == 3
    full = RING.repeat(1000, 1) + sigma * torch.randn(8000, 2, generator=g)
    cov = mode_coverage(full, RING, radius=3 * sigma)
    assert int(cov.covered) == 8
    p = 1 - math.exp(-9 / 2)  # P(|Z| ≤ 3) for a standard normal in ℝ²
    assert abs(float(cov.high_quality) - p) < 4 * math.sqrt(p * (1 - p) / 8000)
    assert float(cov.per_mode.sum()) == pytest.approx(float(cov.high_quality), rel=1e-12)


def test_mode_coverage_threshold_rule_and_batch():
    x = torch.cat([RING[0].expand(95, 2), RING[1].expand(5, 2)])  # 5% ≥ 1/32: covered
    x = torch.stack([x, torch.cat([RING[0].expand(98, 2), RING[1].expand(2, 2)]),  # 2% < 1/32
                     torch.zeros(100, 2)])
    cov = mode_coverage(x, RING, radius=0.1)
    assert cov.covered.tolist() == [2, 1, 0]
    assert cov.high_quality.tolist() == [1.0, 1.0, 0.0]
    assert cov.threshold == pytest.approx(1 / 32)


# ---------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, field", [
    (lambda: w2_1d(torch.zeros(0), torch.zeros(3)), "x"),
    (lambda: w2_1d(torch.zeros(3), [1.0, 2.0]), "y"),
    (lambda: w2_1d(torch.zeros(2, 3), torch.zeros(3, 3)), "y"),
    (lambda: w2_gaussian(torch.zeros(2), torch.eye(3), torch.zeros(2), torch.eye(2)), "S1"),
    (lambda: w2_gaussian(torch.zeros(2), torch.eye(2), torch.zeros(3), torch.eye(3)), "m2"),
    (lambda: w2_samples(torch.zeros(5), torch.zeros(5)), "x"),
    (lambda: w2_samples(torch.zeros(5, 2), torch.zeros(5, 3)), "y"),
    (lambda: sliced_w2(torch.zeros(5, 2), torch.zeros(5, 2), n_projections=0), "n_projections"),
    (lambda: sliced_w2(torch.zeros(5, 2), torch.zeros(0, 2)), "y"),
    (lambda: mmd2(torch.zeros(1, 2), torch.zeros(5, 2)), "x"),
    (lambda: mmd2(torch.zeros(4, 2), torch.zeros(5, 2), kernel="laplace"), "kernel"),
    (lambda: mmd2(torch.zeros(4, 2), torch.zeros(5, 2), bandwidth=-1.0), "bandwidth"),
    (lambda: mmd2(torch.zeros(4, 2), torch.zeros(5, 2)), "bandwidth"),  # median heuristic is 0
    (lambda: energy_distance(torch.zeros(4, 2, dtype=torch.int64), torch.zeros(5, 2)), "x"),
    (lambda: mode_coverage(torch.zeros(4, 2), RING, radius=0.0), "radius"),
    (lambda: mode_coverage(torch.zeros(4, 3), RING, radius=1.0), "centers"),
    (lambda: mode_coverage(torch.zeros(4), RING, radius=1.0), "x"),
])
def test_bad_input_raises_config_error_naming_the_argument(call, field):
    with pytest.raises(ConfigError) as err:
        call()
    assert err.value.field == field


def test_tv_gaussian_against_the_one_dimensional_closed_form():
    """TV(N(0, 1), N(0, σ²)) = 2(Φ(c) − Φ(c/σ)) with c² = 2σ² log σ / (σ² − 1), the densities' crossing."""
    from analysis.metrics import tv_gaussian

    for sigma in (1.5, 3.0):
        c = math.sqrt(2 * sigma**2 * math.log(sigma) / (sigma**2 - 1))
        exact = 2 * (scipy.stats.norm.cdf(c) - scipy.stats.norm.cdf(c / sigma))
        value, se = tv_gaussian(torch.eye(1, dtype=torch.float64), torch.full((1, 1), sigma**2, dtype=torch.float64),
                                samples=100_000)
        assert abs(float(value) - exact) < 4 * float(se)
    S = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    same, _ = tv_gaussian(S.expand(3, 2, 2), S.expand(3, 2, 2))
    assert same.shape == (3,) and same.abs().max() < 1e-12
