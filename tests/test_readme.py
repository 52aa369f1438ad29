"""The examples of the README and the documentation pages run and do what they say, and every command
they show is a valid command."""
import re
import shlex

import pytest
import torch

from games.random import Streams
from pages import commands, python_block

# The blocks that the tests below run with their own assertions; test_docs runs every other block.
DEDICATED = ("Player(\"adam\")", "sme2 = integrate(", "class Damped(UpdateRule)",
             "weak errors [T, 2d] on the 11 common times", "Custom(p=1, q=2", "gandyn.reproduce(")


def run_block(marker: str, *replace: str, cwd=None, monkeypatch=None) -> dict:
    """Execute the pages' Python block with ``marker`` (sizes shrunk by the (old, new) pairs in
    ``replace``), in ``cwd`` if given; its variables."""
    block = python_block(marker)
    for old, new in zip(replace[::2], replace[1::2]):
        assert old in block, f"the block with {marker!r} no longer has {old!r} to shrink"
        block = block.replace(old, new)
    if cwd is not None:
        monkeypatch.chdir(cwd)
    scope = {}
    exec(compile(block, marker, "exec"), scope)
    return scope


def test_readme_custom_game_example(tmp_path, monkeypatch):
    traj = run_block("Player(\"adam\")", "2000", "600", cwd=tmp_path, monkeypatch=monkeypatch)["traj"]
    assert abs(traj.theta[-1].mean().item() - 1.0) < 0.1
    assert (tmp_path / "runs" / "custom.npz").exists()
    assert traj.states.dtype == torch.float64


def test_readme_sde_example():
    scope = run_block("sme2 = integrate(")
    chain, sme2 = scope["chain"], scope["sme2"]
    assert torch.allclose(chain.times, sme2.times)  # the same clock t = Σ η
    diff = chain.states[-1].mean(0) - sme2.states[-1].mean(0)
    se = (chain.states[-1].var(0) / 500 + sme2.states[-1].var(0) / 500).sqrt()
    assert torch.all(diff.abs() < 5 * se), (diff, se)


def test_readme_rule_example():
    """The rule written in the README trains, and its SME-2 drift is βV − (η/2)β²(DV)V."""
    scope = run_block("class Damped(UpdateRule)", "500, K=256", "50, K=8")
    sme, game = scope["sme"], scope["sga"].game
    x = game.init(3, Streams([0, 1, 2])) + 0.1 * torch.randn(3, game.d, generator=torch.Generator().manual_seed(0))
    v = game.expected_field(x)
    expected = 0.5 * v - 0.5 * 0.05 * 0.25 * game.expected_field_jvp(x, v)
    torch.testing.assert_close(sme.drift(x), expected)
    assert torch.isfinite(scope["traj"].states).all()


def test_readme_compare_example(tmp_path, monkeypatch):
    scope = run_block("weak errors [T, 2d] on the 11 common times", cwd=tmp_path, monkeypatch=monkeypatch)
    result = scope["result"]
    assert len(result.times) == 11 and torch.allclose(result.times[-1], torch.tensor(2.0, dtype=torch.float64))
    assert 0 < scope["se"] < scope["error"]  # SME-1's O(η) error is resolved by 2000 runs
    assert (tmp_path / "compare.png").exists()


@pytest.mark.slow
def test_readme_getting_started(tmp_path, monkeypatch):
    """The newcomer's path: a custom game through training, SME-1 and its gradient flow, which agree."""
    scope = run_block("Custom(p=1, q=2", "K=1000", "K=400", cwd=tmp_path, monkeypatch=monkeypatch)
    chain, sme1, flow = scope["chain"], scope["sme1"], scope["flow"]
    error, se = scope["result"].final_weak_error
    assert error < 0.1 and se < error  # SME-1's O(η) gap, resolved
    assert abs(chain.states[-1, :, 0].mean() - sme1.states[-1, :, 0].mean()) < 0.05
    assert abs(chain.states[-1, :, 0].mean() - flow.states[-1, 0, 0]) < 0.1
    assert (tmp_path / "three.png").exists()


INVALID = {"gandyn run --set sga.lr=-1": "sga.lr: must be > 0, got -1"}  # shown as an error example


def check_command(line: str) -> None:
    """Parse ``line`` with the CLI's parser and build the configuration it asks for (ConfigError if bad)."""
    from gandyn import catalog
    from gandyn.cli import build_parser, overrides_of
    from gandyn.config import Config

    args = build_parser().parse_args(shlex.split(line)[1:])
    names = {"run": ["overview"], "reproduce": [getattr(args, "name", None)], "gallery": getattr(args, "names", [])}
    for name in names.get(args.command, []):
        catalog.get(name).config(args.quick, overrides_of(args))
    if args.command == "tune":
        Config().with_overrides({"game.name": args.game, **overrides_of(args)})


@pytest.mark.parametrize("line", commands())
def test_readme_command_is_valid(line):
    """Each command parses, names an existing entry and builds a valid configuration, or fails with the
    error the README shows (the runs themselves are exercised, reduced, by each entry's tests)."""
    from games.errors import ConfigError

    if line in INVALID:
        with pytest.raises(ConfigError, match=re.escape(INVALID[line])):
            check_command(line)
    else:
        check_command(line)


def test_readme_shows_concrete_commands():
    lines = commands()
    assert any(line.startswith("gandyn reproduce ") and "[" not in line for line in lines)
    assert any(line.startswith("gandyn tune ") and "[" not in line for line in lines)


def test_readme_reproduce_from_python(tmp_path, monkeypatch):
    summary = run_block("gandyn.reproduce(", '"run.paths": 1000', '"run.paths": 300', cwd=tmp_path,
                        monkeypatch=monkeypatch)["summary"]
    assert summary["slope_svag_sim_low"] <= 1 <= summary["slope_svag_sim_high"]  # SVAG's weak error is O(η/l)
    assert (tmp_path / "runs" / "svag" / "svag.png").exists()
