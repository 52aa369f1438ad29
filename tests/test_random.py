"""Per-run random streams."""
import pytest
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


@pytest.mark.parametrize("paths_inner", [False, True])
def test_a_float32_buffer_holds_the_float64_normals_exactly(paths_inner):
    a, b = Streams.from_seed(9, 37), Streams.from_seed(9, 37)
    assert a.buffer_dtype == torch.float32
    out = torch.empty((12, 37) if paths_inner else (37, 12), dtype=a.buffer_dtype)
    for _ in range(2):  # consecutive draws into the same buffer
        z = a.normal(3, 4, paths_inner=paths_inner, out=out)
        assert z.dtype == torch.float32 and torch.equal(z.double(), b.normal(3, 4))
    with pytest.raises(ValueError, match="float32"):
        a.normal(3, 4, out=torch.empty(37, 12, dtype=torch.float64))


def _hex(values):
    return torch.tensor([float.fromhex(v) for v in values], dtype=torch.float64)


def test_streams_reproduce_pinned_numbers():
    """Exact numbers of a few seeds (hashes, uniforms, integers, normals in both layouts, with vector
    bodies and tails), so that any change of the streams, however small, is caught."""
    assert run_seeds(0, 3).tolist() == [2625578578644062981, 2625578580641173829, 2625578577822445004]
    assert run_seeds(2**40 + 3, 2).tolist() == [916619172767584942, 916619172260450472]
    s = Streams.from_seed(7, 2)
    assert s._bits(5).tolist() == [[2946493452, 1507122684, 391510130, 431753820, 3327909526],
                                   [3591385258, 1146329480, 2093753762, 2142320313, 1256006512]]
    assert torch.equal(s.uniform(3).flatten(), _hex([
        "0x1.a59cc7f5p-1", "0x1.9792d5ep-6", "0x1.6a4ae5dcp-3", "0x1.797cbd92p-2", "0x1.89827923p-1",
        "0x1.4c370bcep-2"]))
    assert s.randint(1000, 4).tolist() == [[370, 829, 100, 343], [40, 681, 862, 506]]
    z = s.normal(19)
    assert torch.equal(z[0], _hex([
        "-0x1.ee0104p-4", "-0x1.d15516p-2", "-0x1.0f2482p+0", "0x1.a39e24p+1", "0x1.5d6d72p-1",
        "-0x1.db42acp-1", "-0x1.2cefp+0", "0x1.423388p-3", "0x1.09cc1cp-3", "0x1.fc55dap-5",
        "0x1.3e51d6p-1", "-0x1.dc4396p-1", "0x1.eb405cp+0", "0x1.6f7728p-1", "-0x1.9a58fcp-1",
        "-0x1.7f7252p+0", "0x1.48b3aap-1", "0x1.163d1cp-1", "0x1.0a3c9cp-2"]))
    assert torch.equal(z[1, -3:], _hex(["0x1.3b719cp+0", "0x1.3aee82p-2", "-0x1.14287ap-1"]))
    inner = s.normal(2, 3, paths_inner=True)
    assert torch.equal(inner.flatten(), _hex([
        "0x1.46d0e8p+1", "0x1.47a68ep+0", "-0x1.bd7172p+0", "0x1.d8dc54p-2", "-0x1.03e6dcp-3",
        "-0x1.9e8e3cp-2", "-0x1.351f9ep-2", "-0x1.8763e8p-1", "0x1.486deap-1", "-0x1.317d76p-1",
        "0x1.14c5f2p+1", "0x1.64cbf0p+0"]))
    assert s.counter == 5


def test_each_shape_of_compiled_normals_has_a_code_object_of_its_own():
    """dynamo keeps ``recompile_limit`` compilations per code object (8) and then runs it eagerly (other numbers,
    to rounding): the compiled kernel of each buffer shape runs on a code object of its own (whose compilations
    ``tests/test_layout.py`` counts)."""
    from games.random import _compiled_box_muller

    kernels = [_compiled_box_muller(torch.Size([4, K]), torch.Size([4, K]), torch.float32, torch.device("cpu"))
               for K in (3, 4)]
    codes = [kernel._torchdynamo_orig_callable.__code__ for kernel in kernels]
    assert codes[0] is not codes[1] and codes[0].co_code == codes[1].co_code


@pytest.mark.parametrize("paths_inner", [False, True], ids=["runs-outer", "runs-inner"])
def test_parts_of_a_draw_at_a_counter_make_the_whole_draw(paths_inner):
    """normal_at(counter, pairs=…) in three parts (an odd count of normals: the last pair's sine is dropped)
    fills the buffer with what normal() draws at that counter, and leaves the streams where they were."""
    n, K = 21, 5
    whole = torch.empty((n, K) if paths_inner else (K, n), dtype=torch.float32)
    streams = Streams.from_seed(3, K)
    streams.counter = 4
    streams.normal(n, paths_inner=paths_inner, out=whole)
    parts = torch.full_like(whole, float("nan"))
    again = Streams.from_seed(3, K)
    for pairs in (range(0, 4), range(4, 7), range(7, 11)):
        again.normal_at(4, n, out=parts, pairs=pairs, paths_inner=paths_inner)
    assert torch.equal(parts, whole) and again.counter == 0
    with pytest.raises(ValueError, match="pairs"):
        again.normal_at(4, n, out=parts, pairs=range(10, 12), paths_inner=paths_inner)
