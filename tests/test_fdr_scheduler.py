"""The FDR scheduler (games.fdr_scheduler) and per-run rate tables (games.schedules.Table)."""
import pytest
import torch

from games import SGA, BilinearGame, Player
from games.errors import ConfigError
from games.fdr_scheduler import FDRScheduler
from games.random import Streams
from games.schedules import Table

N = 16  # coordinates per player: |θ|² concentrates enough for the pooled tests within the budget
GAME = BilinearGame(p=N, q=N, coupling=(0.3 * torch.eye(N)).tolist(), ridge=1.0, noise_offset=1.0, x0=3.0)
LR, STEPS, K = 0.01, 1500, 50


def feed(scheduler, dot_of, updates, K=4, eta=0.1):
    """Observe ``updates`` synthetic updates with |d|² = 1 and (θ − c₀)·d = dot_of(n) [K]."""
    state = scheduler.start(torch.zeros(K, 1, dtype=torch.float64))
    for n in range(updates):
        state = scheduler.observe(state, dot_of(n), torch.ones(K, dtype=torch.float64))
    return state


@pytest.mark.parametrize("test", ["sasa", "yaida"])
def test_a_relation_off_by_half_never_cuts_and_an_exact_one_cuts_at_the_first_test(test):
    scheduler = FDRScheduler(0.1, test=test, every=10, min_updates=100)
    noise = torch.Generator().manual_seed(0)
    jitter = lambda: 1e-4 * torch.randn(4, generator=noise, dtype=torch.float64)  # noqa: E731
    off = feed(scheduler, lambda n: 1.5 * 0.05 + jitter(), 400)  # 2E[θ·d] = 1.5 ηE|d|²
    assert off["cuts"] == [] and torch.all(off["rate"] == 0.1)
    exact = feed(scheduler, lambda n: 0.05 + jitter(), 150)
    assert exact["cuts"] == [[100, [0, 1, 2, 3]]]
    torch.testing.assert_close(exact["rate"], torch.full((4,), 0.01, dtype=torch.float64))


def test_pooled_runs_share_one_decision_that_no_single_run_would_take():
    scheduler = FDRScheduler(0.1, test="yaida", every=10, min_updates=100, pooled=True)
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)  # each run off by ±50%, the mean exact
    pooled = feed(scheduler, lambda n: 0.05 * (1 + 0.5 * signs), 150)
    alone = feed(FDRScheduler(0.1, test="yaida", every=10, min_updates=100), lambda n: 0.05 * (1 + 0.5 * signs), 150)
    assert pooled["cuts"] == [[100, [0, 1, 2, 3]]] and alone["cuts"] == []


@pytest.fixture(scope="module")
def constant_rate_runs():
    """E|x|² [T] of constant-rate training per optimiser (the schedulers' reference)."""
    return {opt: _sq(SGA(GAME, lr=LR, gen=Player(opt), disc=Player(opt)).run(STEPS, K=K, seed=3, record_every=20))
            for opt in ("sgd", "heavy_ball")}


def _sq(traj):
    return (traj.states ** 2).sum(-1).mean(-1)


@pytest.mark.parametrize("test, optimizer", [("sasa", "sgd"), ("yaida", "sgd"), ("yaida", "heavy_ball")])
def test_no_cut_in_the_transient_and_a_cut_at_stationarity(test, optimizer, constant_rate_runs):
    """On a linear game, whatever the optimiser: each player is cut, and only once constant-rate training
    has reached its stationary level E|x|² (within 50%)."""
    scheduler = lambda: FDRScheduler(LR, test=test, every=20, min_updates=100, pooled=True)  # noqa: E731
    sga = SGA(GAME, lr=LR, gen=Player(optimizer, schedule=scheduler()), disc=Player(optimizer, schedule=scheduler()))
    traj = sga.run(STEPS, K=K, seed=3, record_every=20)
    reference = constant_rate_runs[optimizer]
    plateau = reference[len(reference) // 2 :].mean()
    for who, decided in traj.metadata["schedules"].items():
        assert decided["cuts"], f"{who} was never cut"
        first = decided["cuts"][0][0]
        assert reference[first // 20] < 1.5 * plateau, f"{who} cut at {first}, in the transient"
        # the decision is in the record: the rate drops by the factor at the first record after the cut
        lr = traj[f"lr_{who}"][:, 0]
        after = -(-first // 20)
        assert torch.all(lr[:after] == LR) and lr[after] == pytest.approx(LR * 0.1)


def test_a_table_trains_its_rows_as_one_ensemble():
    """Run r of a Table ensemble is bit for bit the constant-rate run of its row, with the same seed."""
    rates = torch.tensor([[0.01], [0.03]], dtype=torch.float64)
    game = BilinearGame(p=2, q=2, ridge=1.0, noise_offset=1.0)
    table = SGA(game, gen=Player(schedule=Table(rates, 3)), disc=Player(schedule=Table(2 * rates, 3)))
    streams = Streams.from_seed(5, 6)
    together = table.run(30, streams=streams)
    for run, seed in enumerate(streams.seeds.tolist()):
        eta = float(rates[run // 3])
        alone = SGA(game, lr=eta, disc=Player(scale=2.0)).run(30, streams=Streams([seed]))
        torch.testing.assert_close(together.states[:, run], alone.states[:, 0], rtol=0, atol=0)
    assert torch.equal(together["lr_omega"][0], 2 * rates.repeat_interleave(3, 0)[:, 0])


def test_bad_schedules_are_named():
    table = Table(torch.full((2, 5), 0.01, dtype=torch.float64), 2)
    with pytest.raises(ConfigError, match=r"sga.gen.schedule: gives 4 per-run rates for K = 3 runs"):
        SGA(GAME, gen=Player(schedule=table)).run(2, K=3)
    with pytest.raises(ConfigError, match="schedule.values"):
        Table(torch.tensor([[0.1, -1.0]]))
    with pytest.raises(ConfigError, match="fdr.factor"):
        FDRScheduler(0.1, factor=2.0)
    with pytest.raises(ConfigError, match="fdr.test"):
        FDRScheduler(0.1, test="sasa+")
    with pytest.raises(ConfigError, match="sga.svag"):
        SGA(GAME, svag=2, gen=Player(schedule=FDRScheduler(0.1)))


def test_the_final_observation_is_not_reported_to_an_adaptive_schedule():
    """The last record's observables come from a step that is never applied: the schedule hears only of the
    ``steps`` updates each player made, so it can record no cut of an update that never happened."""
    heard = []

    class Listening(FDRScheduler):
        def observe(self, state, dot, sq):
            heard.append(state["updates"])
            return super().observe(state, dot, sq)

    sga = SGA(GAME, lr=LR, gen=Player(schedule=Listening(LR)), disc=Player(schedule=Listening(LR)))
    steps = 7
    traj = sga.run(steps, K=2, seed=0, record_every=steps)
    assert len(traj.times) == 2  # the start and the end, whose row holds the final observation
    assert len(heard) == 2 * steps  # one report per player and update, none for the final observation
