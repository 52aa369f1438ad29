"""A learning-rate-schedule sweep over discrete training of a network GAN, run by Ray Tune.

Each trial draws one schedule per player from ``SEARCH_SPACE`` (a base rate on a log scale and a
decay: constant, or a step schedule that divides it by ten at 50% and 75% of the budget) and trains
``runs`` GANs at once with alternating SGD (``games.sga.SGA``, discriminator first, ``BATCH`` samples a
gradient) for ``budget`` iterations: the mixture GAN (``games.mixture.MixtureGAN`` on the 8-mode ring) or
the digits GAN (``games.DigitsGAN``), NS-GAN loss, MLPs of ``hidden`` widths. Every trial uses the same
seed, so the same initial networks and minibatches: trials differ by their schedules alone.

The metric, lower is better, averaged over the runs and infinite (``None`` in the records) if a run
diverged (``METRICS``):
- mixture: ``sw2``, the sliced W₂ (``analysis.metrics.sliced_w2``, 128 directions) between ``EVAL``
  generated points G_θ(z) and ``EVAL`` target samples (latents and targets fixed per run, the same in every
  trial). Also reported: ``modes_covered``, the mean over runs of the number of the 8 modes receiving at
  least 1/32 of the points within 3σ (``analysis.metrics.mode_coverage``), and ``high_quality``, the
  fraction of points within 3σ of a mode;
- digits: ``fdd``, the Fréchet digits distance of ``EVAL`` generated images to the held-out digits
  (``analysis.digits``), and ``coverage``, the classes they cover.
Trials report to Tune about ten times and at the end.

Ray does the parallelism, one trial per CPU (or a quarter of a GPU each with a cuda device): locally
by default, or on the cluster at ``address`` (its nodes need this project installed). The run
directory ``out`` holds Tune's experiment (``ray/``), ``trials.jsonl`` (one line per finished trial,
written as it finishes) and ``sweep.json`` (the settings and the best trial). Calling ``ray_sweep``
again on the same directory resumes an interrupted sweep; finished trials are not run again.
"""
from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import torch

from analysis.digits import generator_quality
from analysis.metrics import mode_coverage, sliced_w2
from games.base import PLAYERS
from games.errors import ConfigError, MissingExtra, check_int, check_positive
from games.digits import DigitsGAN
from games.mixture import MixtureGAN
from games.random import Streams
from games.schedules import Schedule, make_schedule
from games.sga import SGA, Player
from games.trajectory import atomic_write

# The searched keys, per player (θ the generator, ω the discriminator): "<player>_lr", the base rate,
# log-uniform on [1e-3, 0.3]; "<player>_decay", "constant" (η_k = lr) or "step" (lr ÷ 10 at 50% and
# 75% of the budget). Plain data, so that this module loads without Ray.
SEARCH_SPACE = {
    **{f"{who}_lr": ("loguniform", 1e-3, 3e-1) for who in PLAYERS},
    **{f"{who}_decay": ("choice", ["constant", "step"]) for who in PLAYERS},
}
METRICS = {"mixture": "sw2", "digits": "fdd"}  # each game's metric (lower is better)
METRIC = METRICS["mixture"]
HIDDEN = (32, 32)  # hidden widths of both networks
LATENT = 8  # the digits generator's latent dimension
BATCH = 64  # samples per gradient evaluation
EVAL = 512  # generated points and target samples per run for the metric
REPORTS = 10  # reports to Tune per trial (and one at the end)
GPU_SHARE = 0.25  # fraction of a GPU a trial asks for with a cuda device
FIXED = ("game", "budget", "samples", "runs", "seed", "device", "hidden")  # settings a resumed sweep keeps
EXPERIMENT = "sweep"  # Tune's experiment name, under out/ray
INSTALL = "pip install -c constraints.txt -e '.[distributed]'"


class MissingRay(MissingExtra):
    """Ray Tune is not installed; the message says how to install it."""


# ---------------------------------------------------------------------------- one trial

def schedules_of(config: dict, budget: int) -> Dict[str, Schedule]:
    """The schedule {"theta": …, "omega": …} of each player for a trial config and a budget.

    Args:
        config: the trial's config, with ``<player>_lr`` (> 0) and ``<player>_decay`` ("constant" or "step").
        budget: the number of iterations, ≥ 1 (the step decay's milestones are at its half and three quarters).

    Returns:
        {"theta": Schedule, "omega": Schedule}.
    """
    budget = check_int("budget", budget)
    half = max(1, budget // 2)
    milestones = [half, max(half + 1, 3 * budget // 4)]
    out = {}
    for who in PLAYERS:
        decay, lr = config.get(f"{who}_decay"), check_positive(f"{who}_lr", config.get(f"{who}_lr"))
        options = {"milestones": milestones, "gamma": 0.1} if decay == "step" else {}
        out[who] = make_schedule(decay, lr, field=f"{who}_decay", **options)
    return out


def trial_progress(config: dict) -> Iterator[dict]:
    """Train a trial's runs; yield its metrics about ``REPORTS`` times and after the last step (the last
    also with ``per_run``, each run's metric)."""
    budget, runs, seed = config["budget"], config["runs"], config["seed"]
    device, dtype = torch.device(config["device"]), torch.float32
    game = build_game(config.get("game", "mixture"), config["hidden"])
    schedules = schedules_of(config, budget)
    sga = SGA(game, update="alt-d", batch_size=BATCH,
              gen=Player(schedule=schedules["theta"]), disc=Player(schedule=schedules["omega"]))
    streams = Streams.from_seed(seed, runs, device=device, dtype=dtype)
    evaluation = Streams.from_seed(seed + 1, runs, device=device, dtype=dtype)
    targets, latents = game.sample(runs, EVAL, evaluation)[0], evaluation.normal(EVAL, game.z_dim)
    x = game.init(runs, streams)
    params, state = dict(zip(PLAYERS, game.split(x))), sga.init_state(x)
    every = max(1, budget // REPORTS)
    for k in range(budget):
        new, state, _ = sga.step_players(params, state, k, streams, observe=False)
        params = {who: v.detach() for who, v in new.items()}
        if (k + 1) % every == 0 or k + 1 == budget:
            yield evaluate(game, params, latents, targets, k + 1, per_run=k + 1 == budget)


def build_game(name: str, hidden):
    """The swept game ``name`` ("mixture" or "digits") with ``hidden`` widths.

    Args:
        name: "mixture" or "digits".
        hidden: the hidden widths of both networks.

    Returns:
        The MixtureGAN (on the 8-mode ring) or the DigitsGAN, NS-GAN loss.

    Raises:
        ConfigError: for another name.
    """
    if name == "digits":
        return DigitsGAN(loss="ns-gan", latent=LATENT, hidden=tuple(hidden))
    if name == "mixture":
        return MixtureGAN(target="ring", loss="ns-gan", hidden=tuple(hidden))
    raise ConfigError("--game", f"the sweep trains the mixture or the digits GAN, got {name!r}")


def evaluate(game, params: dict, latents: torch.Tensor, targets: torch.Tensor, step: int,
             per_run: bool = False) -> dict:
    """The metrics of the runs at ``params`` (see the module docstring).

    Args:
        game: the trial's game (MixtureGAN or DigitsGAN).
        params: {"theta": [runs, p], "omega": [runs, d − p]}, the players' parameters.
        latents: each run's evaluation latents [runs, EVAL, z_dim].
        targets: each run's target samples [runs, EVAL, 2] (unused for the digits GAN).
        step: the iteration reached, reported as ``step``.
        per_run: whether to add ``per_run``, each run's metric.

    Returns:
        {"step", the game's metric (inf if a run diverged), its extras, "diverged", and "per_run" if asked}.
    """
    with torch.no_grad():
        finite = torch.stack([torch.isfinite(v).all(-1) for v in params.values()]).all(0)
        if isinstance(game, DigitsGAN):
            values, covered = generator_quality(game, params["theta"], latents)
            extra = {"coverage": covered.double().mean().item()}
        else:
            points = game.generate(params["theta"], latents)
            values = sliced_w2(points, targets)
            cover = mode_coverage(points, game.modes(points.device, points.dtype), 3 * game.sigma)
            extra = {"modes_covered": cover.covered.double().mean().item(),
                     "high_quality": cover.high_quality.double().mean().item()}
    mean = values.mean().item() if bool(finite.all()) else math.inf
    metric = METRICS[game.name]
    return {"step": step, metric: mean if math.isfinite(mean) else math.inf, **extra, "diverged": int((~finite).sum()),
            **({"per_run": values.double().tolist()} if per_run else {})}


def train_trial(config: dict) -> None:
    """Tune's trainable: train one trial and report its metrics to Tune as they come."""
    tune = _import_ray()[1]
    for metrics in trial_progress(config):
        tune.report({key: value for key, value in metrics.items() if key != "per_run"})


# ---------------------------------------------------------------------------- the sweep

def ray_sweep(out: Path, budget: int, *, samples: int = 8, runs: int = 8, address: Optional[str] = None,
              seed: int = 0, device: str = "cpu", quiet: bool = False, max_concurrent: Optional[int] = None,
              hidden=HIDDEN, game: str = "mixture") -> List[dict]:
    """Run the sweep in ``out``, or resume the one there; the finished trials' records, best first.

    ``samples`` trials of ``runs`` GANs of ``game`` (``hidden`` widths) trained ``budget`` iterations each, on
    ``device``; configurations drawn with ``seed``. Ray starts on this machine unless it is already
    running in this process or ``address`` names a cluster; ``max_concurrent`` caps the trials running
    at once (default: as many as there are CPUs). A resumed sweep keeps its own ``max_concurrent`` and
    ``quiet`` and refuses other values of the settings in ``FIXED``. Raises ConfigError for a bad setting, MissingRay
    without Ray, RuntimeError if trials failed and KeyboardInterrupt if Tune was interrupted (Ctrl-C):
    trials.jsonl then holds those that finished, and calling again resumes the rest.

    Args:
        out: the sweep's directory.
        budget: iterations per trial.
        samples: the number of trials.
        runs: GANs trained per trial.
        address: the Ray cluster's address; None for this machine.
        seed: the seed of the configurations drawn and of every trial's runs.
        device: the torch device the trials train on.
        quiet: whether to silence Ray and Tune.
        max_concurrent: the most trials running at once; None for one per CPU.
        hidden: the hidden widths of both networks.
        game: "mixture" or "digits".

    Returns:
        The finished trials' records (as in trials.jsonl), best first.
    """
    out = Path(out).resolve()
    spec = _spec(budget, samples, runs, seed, device, hidden, max_concurrent, game)
    if address is None and torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", f"{device!r} but this machine has no GPU (pass address for a cluster with one)")
    _check_same(out, spec)
    done = load_results(out)
    if len(done) >= spec["samples"] and _finished(out):
        return done  # a finished sweep: nothing to run (Tune's restore may run finished trials again)
    ray, tune = _import_ray()
    started = not ray.is_initialized()
    if started:
        _start_ray(ray, address, quiet)
    try:
        grid = _tuner(tune, out, spec, quiet).fit()
    finally:
        if started:
            ray.shutdown()
    return _finish(out, spec, grid)


def load_results(out: Path) -> List[dict]:
    """The records of ``out``/trials.jsonl, one per trial (the last line of each), best first."""
    path = Path(out) / "trials.jsonl"
    if not path.exists():
        return []
    records = {}
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            records[record["trial_id"]] = record
    return _ranked(records.values())


def _spec(budget, samples, runs, seed, device, hidden, max_concurrent, game: str = "mixture") -> dict:
    """The checked settings of a sweep; those that fix its trials also go into each trial's config."""
    if max_concurrent is not None:
        check_int("max_concurrent", max_concurrent)
    try:
        torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError("device", f"not a torch device: {device!r}") from None
    built = build_game(game, hidden)
    return {"game": game, "budget": check_int("budget", budget), "samples": check_int("samples", samples),
            "runs": check_int("runs", runs), "seed": check_int("seed", seed, minimum=0),
            "device": str(device), "hidden": list(built.hidden), "max_concurrent": max_concurrent}


def _import_ray():
    """(ray, ray.tune), or MissingRay saying how to install them."""
    try:
        import ray
        from ray import tune
    except ImportError as e:
        raise MissingRay("the sweep", f"Ray Tune ({e.name or 'ray'})", "distributed") from e
    return ray, tune


def _start_ray(ray, address: Optional[str], quiet: bool) -> None:
    """Join the cluster at ``address``, or start Ray on this machine."""
    level = logging.WARNING if quiet else logging.INFO
    if address:
        ray.init(address=address, logging_level=level, log_to_driver=not quiet)
        return
    ray.init(include_dashboard=False, logging_level=level, log_to_driver=not quiet)


def _tuner(tune, out: Path, spec: dict, quiet: bool):
    """A new Tuner for ``spec`` in out/ray, or the interrupted one found there (same settings only)."""
    path = out / "ray" / EXPERIMENT
    gpu = GPU_SHARE if torch.device(spec["device"]).type == "cuda" else 0
    trainable = tune.with_resources(train_trial, {"cpu": 1, "gpu": gpu})
    if tune.Tuner.can_restore(str(path)):
        return tune.Tuner.restore(str(path), trainable, resume_unfinished=True, resume_errored=True)
    _write_summary(out, spec, [])
    space = {key: getattr(tune, kind)(*args) for key, (kind, *args) in SEARCH_SPACE.items()}
    fixed = {key: spec[key] for key in ("game", "budget", "runs", "seed", "device", "hidden")}
    search = tune.search.BasicVariantGenerator(random_state=spec["seed"],
                                               max_concurrent=spec["max_concurrent"] or 0)
    tune_config = tune.TuneConfig(num_samples=spec["samples"], search_alg=search, metric=METRICS[spec["game"]],
                                  mode="min")
    run_config = tune.RunConfig(name=EXPERIMENT, storage_path=str(out / "ray"), verbose=0 if quiet else 1,
                                callbacks=[_stream_callback(tune)])
    return tune.Tuner(trainable, param_space={**space, **fixed}, tune_config=tune_config, run_config=run_config)


def _finished(out: Path) -> bool:
    """Whether out/sweep.json records a sweep whose trials all finished."""
    path = out / "sweep.json"
    if not path.exists():
        return False
    summary = json.loads(path.read_text())
    return summary.get("finished", 0) >= summary.get("settings", {}).get("samples", math.inf)


def _check_same(out: Path, spec: dict) -> None:
    """Refuse to resume a sweep made with other settings."""
    path = out / "sweep.json"
    if not path.exists():
        return
    before = json.loads(path.read_text()).get("settings", {})
    changed = [f"{k}={before[k]!r}" for k in FIXED if k in before and before[k] != spec[k]]
    if changed:
        raise ConfigError("out", f"{out} holds a sweep made with {', '.join(changed)}; pass the same "
                                 "settings to resume it, or another directory")


def _stream_callback(tune):
    """A Tune callback that appends each finished trial's record to out/trials.jsonl."""

    class StreamTrials(tune.Callback):
        def on_trial_complete(self, iteration, trials, trial, **info):
            out = Path(trial.path).parents[2]  # out/ray/EXPERIMENT/<trial>: found again if out moves
            _append(out, _record(trial.trial_id, trial.config, trial.last_result))

    return StreamTrials()


def _record(trial_id: str, config: dict, result: dict) -> dict:
    """A finished trial's line of trials.jsonl: its searched config, final metrics and the metric's name."""
    name = METRICS[config.get("game", "mixture")]
    metric = result.get(name)
    extra = ("coverage",) if name == "fdd" else ("modes_covered", "high_quality")
    return {"trial_id": trial_id, "config": {key: config[key] for key in SEARCH_SPACE}, "metric": name,
            name: metric if metric is not None and math.isfinite(metric) else None,
            **{key: result.get(key) for key in extra},
            "diverged": result.get("diverged"), "steps": result.get("step"),
            "wall_s": round(result["time_total_s"], 3) if "time_total_s" in result else None}


def _append(out: Path, record: dict) -> None:
    """One line on out/trials.jsonl, on disk before this returns."""
    with open(out / "trials.jsonl", "a") as f:
        f.write(json.dumps(record, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _ranked(records) -> List[dict]:
    """Records best (lowest metric) first; diverged trials last."""
    value = lambda r: r[r.get("metric", METRIC)]  # noqa: E731
    return sorted(records, key=lambda r: (value(r) is None, value(r) or 0.0, r["trial_id"]))


def _finish(out: Path, spec: dict, grid) -> List[dict]:
    """Complete trials.jsonl from Tune's results, write sweep.json; raise if trials failed or are left."""
    finished = [_record(r.metrics["trial_id"], r.config, r.metrics) for r in grid
                if r.error is None and r.metrics and r.metrics.get("done")]
    streamed = {r["trial_id"] for r in load_results(out)}
    for record in finished:
        if record["trial_id"] not in streamed:
            _append(out, record)  # finished after Tune's last saved state, or its line was lost
    records = _ranked(finished)
    _write_summary(out, spec, records)
    if grid.errors:
        cause = getattr(grid.errors[0], "cause", None) or grid.errors[0]  # a RayTaskError's own exception
        first = f"{type(cause).__name__}: {cause}".splitlines()[0]
        raise RuntimeError(f"{len(grid.errors)} of {len(grid)} trials failed (first: {first}); their tracebacks "
                           f"are in {out / 'ray' / EXPERIMENT}; run the sweep again on {out} to retry them")
    if len(records) < spec["samples"]:
        raise KeyboardInterrupt(f"sweep interrupted after {len(records)} of {spec['samples']} trials; "
                                f"run it again on {out} to resume")
    return records


def _write_summary(out: Path, spec: dict, records: List[dict]) -> None:
    """out/sweep.json: the settings, the metric, the number of finished trials and the best one."""
    summary = {"settings": spec, "metric": METRICS[spec["game"]], "finished": len(records),
               "best": records[0] if records else None}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "sweep.json", lambda f: f.write(json.dumps(summary, indent=2).encode()))
