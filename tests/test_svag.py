"""SVAG (Li, Malladi & Arora 2021) in discrete training: l = 1 is plain SGA bit for bit; l > 1 keeps the
mean step per unit time, multiplies the gradient noise covariance by l and divides the rate by l."""
import math

import pytest
import torch

from games import SGA, BilinearGame, GaussianGame, Player
from games.base import PLAYERS
from games.errors import ConfigError
from games.random import Streams
from games.sga import svag_combine

GAME = BilinearGame(p=2, q=2, b=0.3, c=-0.2, ridge=0.5, noise_coupling=0.2, noise_offset=0.3)


def plain_sgd(game, update, shared, eta, B, steps, K, seed):
    """The plain SGD chain written out (sim, or alt-d with n_d = 1): states [steps + 1, K, d]."""
    streams = Streams.from_seed(seed, K)
    params = dict(zip(PLAYERS, game.split(game.init(K, streams))))
    states = [game.join(params["theta"], params["omega"])]
    for _ in range(steps):
        batch = game.sample(K, B, streams) if shared else None
        for players in ([PLAYERS] if update == "sim" else [("omega",), ("theta",)]):
            if shared:
                grads = game.player_grads(params["theta"], params["omega"], batch, players)[0]
            else:
                grads = {w: game.player_grads(params["theta"], params["omega"], game.sample(K, B, streams),
                                              (w,))[0][w] for w in players}
            params = {**params, **{w: params[w] - eta * grads[w] for w in players}}
        states.append(game.join(params["theta"], params["omega"]))
    return torch.stack(states)


@pytest.mark.parametrize("update,shared", [("sim", False), ("alt-d", False), ("sim", True), ("alt-d", True)])
def test_l1_is_plain_training_bit_for_bit(update, shared):
    options = dict(lr=0.07, update=update, batch_size=3, shared_batch=shared)
    ours = SGA(GAME, svag=1, **options).run(12, K=5, seed=3, record_every=1)
    plain = SGA(GAME, **options).run(12, K=5, seed=3, record_every=1)
    assert torch.equal(ours.states, plain.states) and torch.equal(ours.times, plain.times)
    assert ours.observables.keys() == plain.observables.keys()
    for name in plain.observables:
        assert torch.equal(ours[name], plain[name]), name
    # the same random numbers as the chain written out: no second batch is drawn at l = 1
    assert torch.equal(ours.states, plain_sgd(GAME, update, shared, 0.07, 3, 12, 5, 3))


@pytest.mark.parametrize("shared,l,distinct", [(True, 1, 1), (False, 1, 3), (True, 3, 2), (False, 3, 6)])
def test_batches_of_an_iteration(monkeypatch, shared, l, distinct):
    """alt-d with n_d = 2 evaluates 3 gradients: each on a pair of batches under SVAG, the same pair
    for all three with shared batches, as the single batch is without SVAG."""
    seen, original = [], BilinearGame.player_grads

    def spy(self, theta, omega, batch, *args, **kwargs):
        seen.append(batch)  # kept alive, so that ids are distinct
        return original(self, theta, omega, batch, *args, **kwargs)

    monkeypatch.setattr(BilinearGame, "player_grads", spy)
    sga = SGA(GAME, update="alt-d", n_d=2, shared_batch=shared, svag=l)
    x = torch.zeros(2, GAME.d, dtype=torch.float64)
    sga.step(x, sga.init_state(x), 0, Streams.from_seed(0, 2))
    assert len(seen) == 3 * (1 if l == 1 else 2) and len({id(b) for b in seen}) == distinct
    if l > 1:
        assert not torch.equal(seen[0], seen[1])  # the pair's batches are independent draws


@pytest.mark.parametrize("l", [1, 2, 4, 10, 37])
def test_combination_weights(l):
    a_plus, a_minus = svag_combine(l, 1.0, 0.0), svag_combine(l, 0.0, 1.0)
    assert a_plus + a_minus == pytest.approx(1.0, rel=1e-14)  # E g unchanged
    assert a_plus**2 + a_minus**2 == pytest.approx(l, rel=1e-14)  # noise covariance × l
    assert svag_combine(l, 2.0, 2.0) == pytest.approx(2.0, rel=1e-14)


@pytest.mark.parametrize("shared", [False, True])
def test_one_step_mean_and_covariance(shared):
    """From a fixed x: E Δ = (η/l) V(x) and Cov Δ = l (η/l)² Σ_B(x) = (η²/l) Σ_B (sim; with fresh
    batches the players' minibatches are independent, so the cross block vanishes)."""
    K, B, eta, l = 20000, 4, 0.1, 4
    x = torch.tensor([[0.4, -0.7, 1.1, 0.2]], dtype=torch.float64)
    sga = SGA(GAME, lr=eta, batch_size=B, shared_batch=shared, svag=l)
    xs = x.expand(K, -1)
    new, _, _ = sga.step(xs, sga.init_state(xs), 0, Streams.from_seed(1, K))
    step = new - xs
    sigma = GAME.gradient_covariance(x, B)[0]
    if not shared:
        sigma[: GAME.p, GAME.p :] = sigma[GAME.p :, : GAME.p] = 0.0
    cov = eta**2 / l * sigma
    mean = eta / l * GAME.expected_field(x)[0]
    se = (cov.diagonal() / K).sqrt()
    assert ((step.mean(0) - mean).abs() < 4.5 * se).all(), (step.mean(0), mean)
    var = cov.diagonal()
    se_cov = ((var[:, None] * var[None, :] + cov**2) / K).sqrt()
    centred = step - step.mean(0)
    assert ((centred.T @ centred / (K - 1) - cov).abs() < 4.5 * se_cov).all()
    assert sga.rate("theta", 0) == sga.rate("omega", 0) == eta / l


def test_clock_and_schedules_index_plain_iterations():
    n, eta, l = 20, 0.05, 4
    traj = SGA(GAME, lr=eta, svag=l, batch_size=2).run(n, K=2, seed=0, record_every=1)
    assert traj.times[-1].item() == pytest.approx(n * eta / l, rel=1e-12)
    assert traj.metadata["svag"] == l
    schedule = lambda k: 0.1 / (1 + k)  # noqa: E731
    plain = SGA(GAME, lr=schedule).run(5, K=1, seed=0, record_every=1)
    ours = SGA(GAME, lr=schedule, svag=l).run(5 * l, K=1, seed=0, record_every=1)
    assert ours.times[::l].tolist() == pytest.approx(plain.times.tolist(), rel=1e-12)
    for w in PLAYERS:
        expected = plain[f"lr_{w}"][:-1].repeat_interleave(l, 0) / l
        assert torch.equal(ours[f"lr_{w}"][:-1], expected)


def test_fdr_identity_holds_with_the_recorded_rate():
    """|θ'−c|² − |θ−c|² = −2η (θ−c)·d + η²|d|² step by step, with η = lr_ (= η_k/l under SVAG)."""
    sga = SGA(GaussianGame(), lr=lambda k: 0.06 / (1 + 0.1 * k), update="alt-g", n_d=2, batch_size=3, svag=3,
              gen=Player("adam", center=0.3), disc=Player("heavy_ball", center=-0.2, scale=0.5))
    traj = sga.run(30, K=4, seed=2, record_every=1)
    for who, part in (("theta", traj.theta - 0.3), ("omega", traj.omega + 0.2)):
        lhs = (part[1:] ** 2).sum(-1) - (part[:-1] ** 2).sum(-1)
        eta = traj[f"lr_{who}"][:-1]
        rhs = -2 * eta * traj[f"dot_{who}"][:-1] + eta**2 * traj[f"sq_{who}"][:-1]
        assert torch.allclose(lhs, rhs, atol=1e-12)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "x", True, math.nan])
def test_bad_svag_is_a_config_error(bad):
    with pytest.raises(ConfigError) as err:
        SGA(GAME, svag=bad)
    assert err.value.field == "sga.svag"
    from gandyn.config import Config

    with pytest.raises(ConfigError) as err:
        Config().with_overrides({"sga.svag": bad})
    assert err.value.field == "sga.svag"


def test_config_passes_svag_through():
    from gandyn.config import Config

    config = Config().with_overrides({"sga.svag": 3.0})
    sga = config.sga.build(config.game.build())
    assert sga.svag == 3 and isinstance(sga.svag, int) and sga.describe()["svag"] == 3
