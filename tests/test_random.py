"""Per-run random streams."""
import torch

from games.random import Streams, run_seeds


def test_ensemble_streams_equal_single_streams():
    ens = Streams.from_seed(3, 5)
    draws = [ens.normal(4, 2), ens.uniform(3), ens.randint(7, 6)]
    for k in range(5):
        single = Streams(ens.seeds[k : k + 1])
        mine = [single.normal(4, 2), single.uniform(3), single.randint(7, 6)]
        for a, b in zip(draws, mine):
            assert torch.equal(a[k : k + 1], b)


def test_normals_have_gaussian_moments():
    z = Streams.from_seed(0, 2000).normal(500).flatten()
    n = z.numel()
    assert abs(z.mean()) < 4 / n**0.5
    assert abs(z.var() - 1) < 4 * (2 / n) ** 0.5
    assert abs((z**4).mean() - 3) < 4 * (96 / n) ** 0.5
    tail = (z.abs() > 3).double().mean()
    assert abs(tail - 0.0026998) < 4 * (0.0027 / n) ** 0.5


def test_runs_are_uncorrelated_and_distinct():
    z = Streams.from_seed(0, 50).normal(4000)
    corr = torch.corrcoef(z)
    off = corr[~torch.eye(50, dtype=torch.bool)]
    assert off.abs().max() < 5 / 4000**0.5
    assert len(set(run_seeds(0, 10000).tolist())) == 10000


def test_seed_zero_first_draw_is_not_degenerate():
    # lowbias32(0) = 0: a key of 0 must never turn into a uniform of 0
    u = Streams.from_seed(0, 1).uniform(8)
    assert u.min() > 1e-6


def test_same_seed_same_numbers_different_seed_different():
    a, b, c = (Streams.from_seed(s, 3).normal(10) for s in (1, 1, 2))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_uniform_and_serial_pairs_chi_square():
    """χ² of 64 bins (df 63: mean 63, sd 11.2) for values and for consecutive pairs within a run."""
    u = Streams.from_seed(0, 256).uniform(4096)
    h = torch.histc(u.flatten(), 64, 0, 1)
    e = u.numel() / 64
    assert ((h - e) ** 2 / e).sum() < 63 + 5 * 11.2
    pairs = (u[:, :-1] * 8).long() * 8 + (u[:, 1:] * 8).long()
    h2 = torch.bincount(pairs.flatten(), minlength=64).double()
    e2 = pairs.numel() / 64
    assert ((h2 - e2) ** 2 / e2).sum() < 63 + 5 * 11.2


def test_no_correlation_across_elements_runs_and_draws():
    s = Streams.from_seed(1, 512)
    z, z_next = s.normal(2048), s.normal(2048)
    n = z.numel() ** 0.5
    assert abs((z[:, 1:] * z[:, :-1]).mean() * n) < 5  # within a run
    assert abs((z[1:] * z[:-1]).mean() * n) < 5  # neighbouring runs
    assert abs((z * z_next).mean() * n) < 5  # consecutive draws


def test_paths_inner_draws_are_the_same_numbers_stored_paths_innermost():
    a, b = Streams.from_seed(4, 5), Streams.from_seed(4, 5)
    for shape in ((3,), (2, 3)):
        plain, inner = a.normal(*shape), b.normal(*shape, paths_inner=True)
        assert torch.equal(plain, inner) and inner.stride()[0] == 1
