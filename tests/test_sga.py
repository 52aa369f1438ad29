"""Discrete training: batching, seeds, update rules, divergence, and the update map's Jacobian."""
import math
import sys

import pytest
import torch

from analysis.compare import weak_error
from analysis.linearisation import eigenvalues, max_eigen_difference
from games.linearisation import field_jacobian, update_map_jacobian
from games import SGA, BilinearGame, Custom, DiracGAN, GaussianGame, Player, Trajectory, train
from games.execution import using
from games.random import Streams


@pytest.mark.parametrize("update,n_d,shared", [("sim", 1, False), ("sim", 1, True), ("alt-d", 3, False),
                                               ("alt-g", 2, True)])
def test_ensemble_equals_single_runs(update, n_d, shared):
    game = GaussianGame(n=2)
    sga = SGA(game, lr=0.02, update=update, n_d=n_d, batch_size=5, shared_batch=shared,
              gen=Player("adam", scale=0.5), disc=Player("heavy_ball", weight_decay=0.01))
    ens = sga.run(30, K=4, seed=11, record_every=7)
    for k, seed in enumerate(ens.metadata["seeds"]):
        single = sga.run(30, streams=Streams([seed]), record_every=7)
        assert torch.equal(single.states[:, 0], ens.states[:, k])
        for name, v in single.observables.items():
            assert torch.equal(v[:, 0], ens[name][:, k]), name


def test_same_seed_same_trajectory():
    game = DiracGAN(noise=0.3)
    a, b, c = (train(game, 50, K=3, seed=s, batch_size=4, update="alt-d") for s in (5, 5, 6))
    assert torch.equal(a.states, b.states) and not torch.equal(a.states, c.states)
    for name in a.observables:
        assert torch.equal(a[name], b[name])


@pytest.mark.slow
def test_bilinear_simultaneous_spirals_out_alternating_stays_bounded():
    game = BilinearGame(noise_offset=0.0)  # L = θω: a pure rotation field
    x0 = torch.tensor([1.0, 0.0])
    sim = train(game, 2000, K=1, x0=x0, lr=0.1, update="sim", record_every=100)
    alt = train(game, 2000, K=1, x0=x0, lr=0.1, update="alt-d", record_every=100)
    r_sim, r_alt = sim.states[:, 0].norm(dim=-1), alt.states[:, 0].norm(dim=-1)
    assert (r_sim[1:] > r_sim[:-1]).all()  # |1 + ih| > 1: the radius grows every record
    assert r_sim[-1] > 1e3 * r_sim[0] * 0.9  # (1 + h²)^{1000} ≈ e^{9.95}
    assert math.isclose(r_sim[-1].item(), (1 + 0.01) ** 1000, rel_tol=1e-9)
    assert r_alt.max() < 1.2 and r_alt.min() > 0.8


def test_divergence_is_reported_with_its_step_and_the_record_is_kept():
    game = BilinearGame(noise_offset=0.0)
    # sim GD multiplies |x| by √(1 + h²) per step: with h = 1e3 it overflows float64 near step 103
    with using(blowup=math.inf):  # no bound: divergence is overflow
        traj = train(game, 400, K=2, x0=torch.tensor([1.0, 0.0]), lr=1e3, record_every=1)
    step = traj.metadata["diverged"][0]
    assert traj.metadata["diverged"] == {0: step, 1: step}
    expected = math.ceil(math.log(sys.float_info.max) / (0.5 * math.log(1 + 1e6)))
    assert abs(step - expected) <= 2
    assert torch.isfinite(traj.states[:step]).all()
    assert len(traj.times) == step + 1


def test_a_finite_explosion_is_flagged_at_its_step_and_left_out_of_the_means():
    game = BilinearGame(noise_offset=0.0)
    x0 = torch.tensor([[1.0, 0.0], [0.0, 1e-9], [2e-9, 0.0]])  # run 0 leaves its bound 1e6 · max(1, |x_0|) = 1e6; 1 and 2 stay
    with using(blowup=math.inf):
        free = train(game, 4, x0=x0, lr=1e3, record_every=1)
    peak = free.states.abs().amax(dim=-1)  # [T, K], finite throughout
    assert torch.isfinite(peak).all() and peak.max() < 1e13
    expected = int(torch.nonzero(peak[:, 0] > 1e6)[0])
    traj = train(game, 4, x0=x0, lr=1e3, record_every=1)
    assert traj.metadata["diverged"] == {0: expected}
    assert torch.equal(traj.states[:expected], free.states[:expected])  # kept up to the step
    assert torch.isnan(traj.states[expected:, 0]).all()
    assert torch.equal(traj.states[:, 1:], free.states[:, 1:])  # the others are untouched
    estimate = weak_error(traj.states[-1], torch.zeros(2, 2))
    assert estimate.left_out == (1, 0)
    assert torch.allclose(estimate.value[:2], free.states[-1, 1:].mean(0), rtol=1e-12, atol=0)


def test_only_the_diverging_run_stops():
    game = BilinearGame(noise_offset=0.0)
    x0 = torch.tensor([[1.0, 0.0], [1e305, 0.0]])  # grows by √2 a step: overflows near step 22
    traj = train(game, 30, K=2, x0=x0, lr=1.0, record_every=1)  # run 0 stays within 1e6 of its start
    assert list(traj.metadata["diverged"]) == [1]
    assert torch.isfinite(traj.states[:, 0]).all()


def test_custom_game_trains_and_its_field_is_autograd():
    def losses(theta, omega, batch):
        lg = (theta * omega).sum(-1) + 0.5 * (theta**2).sum(-1) + (batch.mean(1) * theta).sum(-1)
        return lg, -(theta * omega).sum(-1) + 0.5 * (omega**2).sum(-1)

    game = Custom(p=2, q=2, losses=losses, sample=lambda K, B, gen: gen.normal(B, 2))
    x = torch.randn(3, 4)
    batch = torch.zeros(3, 4, 2)
    th, om = x[:, :2], x[:, 2:]
    assert torch.allclose(game.field(x, batch), torch.cat([-(om + th), th - om], 1))
    traj = train(game, 500, K=8, seed=0, lr=0.05, batch_size=4, update="alt-d")
    assert traj.states[-1].norm(dim=-1).mean() < 0.5  # contracts towards 0 up to the noise


def test_record_rows_and_observables():
    game = GaussianGame()
    traj = train(game, 25, K=3, seed=0, record_every=10, lr=0.01, batch_size=2)
    assert traj.metadata["diverged"] == {}
    assert traj.times.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.25])
    for who in ("theta", "omega"):
        for name in ("loss", "grad_norm", "dot", "sq", "lr"):
            assert traj[f"{name}_{who}"].shape == (4, 3)
    theta = traj.theta[0]
    d = traj["dot_theta"][0] / theta.norm(dim=-1).clamp_min(1e-12)
    assert torch.all(d.abs() <= traj["sq_theta"][0].sqrt() + 1e-12)  # Cauchy–Schwarz


def test_fdr_terms_are_those_of_the_applied_direction():
    """|θ'−c|² − |θ−c|² = −2η (θ−c)·d + η²|d|² holds exactly, step by step, for the applied d."""
    game = GaussianGame()
    sga = SGA(game, lr=0.05, update="alt-g", batch_size=3, gen=Player("adam", center=0.3),
              disc=Player("heavy_ball", center=-0.2))
    traj = sga.run(40, K=5, seed=2, record_every=1)
    for who, part in (("theta", traj.theta - 0.3), ("omega", traj.omega + 0.2)):
        lhs = (part[1:] ** 2).sum(-1) - (part[:-1] ** 2).sum(-1)
        eta = traj[f"lr_{who}"][:-1]
        rhs = -2 * eta * traj[f"dot_{who}"][:-1] + eta**2 * traj[f"sq_{who}"][:-1]
        assert torch.allclose(lhs, rhs, atol=1e-12)


@pytest.mark.parametrize("loss,gamma", [("gan", 0.0), ("ns-gan", 0.0), ("wgan", 0.0), ("gan", 0.3),
                                        ("gan", 1.0)])
def test_dirac_jacobians_match_theory(loss, gamma):
    game, h = DiracGAN(loss=loss, gamma=gamma), 0.2
    x_star = game.equilibrium()
    assert max_eigen_difference(eigenvalues(field_jacobian(game, x_star)), game.flow_eigenvalues()) < 1e-7
    cases = [("sim", 1)] + ([("alt-d", 1), ("alt-d", 5), ("alt-g", 5)] if gamma == 0 else [])
    for update, n_d in cases:
        auto = eigenvalues(update_map_jacobian(SGA(game, lr=h, update=update, n_d=n_d), x_star))
        exact = game.gd_eigenvalues(h, "sim" if update == "sim" else "alt", n_d)
        assert max_eigen_difference(auto, exact) < 1e-7, (update, n_d)


def test_separate_rates_scale_each_player():
    game = BilinearGame(noise_offset=0.0)
    x0 = torch.tensor([1.0, 1.0])
    traj = train(game, 1, K=1, x0=x0, lr=0.1, gen=Player(scale=2.0), disc=Player(scale=0.5), record_every=1)
    # V(1, 1) = (−ω, θ) = (−1, 1): θ' = 1 − 0.2, ω' = 1 + 0.05
    assert torch.allclose(traj.states[-1, 0], torch.tensor([0.8, 1.05]))


def test_trajectory_save_load_roundtrip(tmp_path):
    traj = train(GaussianGame(), 20, K=3, seed=0, record_every=5, batch_size=2, metadata={"note": "x"})
    path = traj.save(tmp_path / "run")
    back = Trajectory.load(path)
    assert torch.equal(back.states, traj.states) and torch.equal(back.times, traj.times)
    assert set(back.observables) == set(traj.observables)
    assert back.metadata["note"] == "x" and back.p == traj.p
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json", "run.npz"]  # no temporary left
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    for name in ("run.json", "run.npz"):  # the permissions of a plain open, not the temporary file's 0600
        assert (tmp_path / name).stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_interrupt_keeps_the_record(monkeypatch):
    game = GaussianGame()
    sga = SGA(game, lr=0.01)
    calls = {"n": 0}
    original = sga.step_players

    def step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 13:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(sga, "step_players", step)
    traj = sga.run(100, K=2, seed=0, record_every=5)
    assert traj.metadata["interrupted"] == 12
    assert len(traj.times) == 3  # rows at steps 0, 5, 10

    calls["n"] = 12  # an interrupt in the very first step: the initial state is the record
    first = sga.run(100, K=2, seed=0, record_every=5)
    assert first.metadata["interrupted"] == 0 and torch.equal(first.states[0], traj.states[0])
    assert first.times.tolist() == [0.0] and first.observables == {}


def test_observables_skipped_between_records_do_not_change_the_dynamics():
    game = GaussianGame()
    a = train(game, 30, K=3, seed=1, batch_size=2, record_every=1, gen=Player("adam"))
    b = train(game, 30, K=3, seed=1, batch_size=2, record_every=10, gen=Player("adam"))
    assert torch.equal(a.states[::10], b.states)
    for name in b.observables:
        assert torch.equal(a[name][::10], b[name]), name


@pytest.mark.slow
def test_compiled_losses_train_like_eager():
    """torch.compile'd losses give the eager trajectory up to rounding (a small MLP GAN)."""
    from games import MixtureGAN

    game = MixtureGAN(hidden=(8,))
    options = dict(lr=0.05, update="alt-d", batch_size=8)
    eager = SGA(game, **options).run(5, K=3, seed=0, record_every=5)
    compiled = SGA(game, compile=True, **options).run(5, K=3, seed=0, record_every=5)
    assert torch.allclose(compiled.states, eager.states, rtol=1e-10, atol=1e-12)
    assert compiled.metadata["compile"] and not eager.metadata["compile"]
