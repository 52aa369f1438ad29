"""The command line: bad input exits with status 2 and one line naming the field; runs write their files."""
import json
import subprocess
import sys

import pytest

from gandyn.cli import main
from gandyn.config import Config, load_toml, parse_overrides


@pytest.mark.parametrize("setting,field", [
    ("sga.lr=-1", "sga.lr"),
    ("sga.lr=nan", "sga.lr"),
    ("sga.n_d=0", "sga.n_d"),
    ("game.name=nosuchgame", "game.name"),
    ("sga.gen.optimizer=nosuchopt", "sga.gen.optimizer"),
    ("run.paths=0", "run.paths"),
    ("sga.update=sideways", "sga.update"),
    ("sga.nosuchkey=1", "sga.nosuchkey"),
    ("game.nosuchoption=1", "game.nosuchoption"),
    ("game.ridge=-0.5", "game.ridge"),
])
def test_bad_values_exit_2_naming_the_field(setting, field, capsys, tmp_path):
    assert main(["run", "--quiet", "--out", str(tmp_path), "--set", setting]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err, err


def test_unknown_experiment_exits_2(capsys):
    assert main(["reproduce", "nosuch", "--quiet"]) == 2
    assert "nosuch" in capsys.readouterr().err


def test_console_script_exit_status():
    out = subprocess.run([sys.executable, "-m", "gandyn.cli", "run", "--set", "sga.lr=-1"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "sga.lr" in out.stderr and "Traceback" not in out.stderr


def test_overrides_and_toml(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[game]\nname = "dirac"\nloss = "wgan"\n[sga]\nlr = 0.1\n[sga.gen]\noptimizer = "adam"\n'
                    'beta1 = 0.5\n[run]\npaths = 3\n')
    cfg = Config().with_overrides({**load_toml(toml), **parse_overrides(["sga.n_d=2", "sga.update='alt-d'"])})
    assert cfg.game.name == "dirac" and cfg.game.options == {"loss": "wgan"}
    assert cfg.sga.lr == 0.1 and cfg.sga.n_d == 2 and cfg.sga.gen.optimizer == "adam"
    assert cfg.sga.gen.options == {"beta1": 0.5} and cfg.run.paths == 3
    assert cfg.sga.build(cfg.game.build()).optimizers["theta"].beta1 == 0.5


def test_list_names_the_catalog(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "dirac-phase" in out and "overview" in out


@pytest.mark.slow
def test_dirac_phase_quick_eigenvalues(tmp_path):
    assert main(["reproduce", "dirac-phase", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["eigen_max_abs_error"] <= 1e-6
    assert summary["eigen_cases_compared"] >= 12
    assert (tmp_path / "dirac_phase.png").exists() and (tmp_path / "report.md").exists()


@pytest.mark.slow
def test_run_quick_writes_a_report(tmp_path):
    assert main(["run", "--quick", "--quiet", "--out", str(tmp_path), "--set", "run.paths=32",
                 "--set", "sga.steps=600"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["paths"] == 32 and summary["diverged_runs"] == 0
    assert summary["distance"].startswith("W₂")
    assert summary["distance_final_mean"] < summary["distance_initial_mean"]
    for name in ("parameters.png", "convergence.png", "sde.png", "report.md", "config.json",
                 "trajectories/sga.npz", "trajectories/sme2.npz"):
        assert (tmp_path / name).exists(), name
    # SME-2 follows the chain's mean more closely than SME-1 through the transient
    assert summary["sme2_mean_gap"] < summary["sme1_mean_gap"]


@pytest.mark.slow
@pytest.mark.parametrize("game", ["dirac", "bilinear", "onelayer", "mixture"])
def test_run_works_for_every_game(game, tmp_path):
    assert main(["run", "--quick", "--quiet", "--out", str(tmp_path), "--set", f"game.name={game}",
                 "--set", "run.paths=4", "--set", "sga.steps=40"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["paths"] == 4 and "fdr_ratio_theta" in summary
    assert ("distance_final_mean" in summary) == (game != "mixture")  # the mixture has no known x*


def test_ctrl_c_keeps_what_was_computed(tmp_path, monkeypatch, capsys):
    """An interrupt during training: exit 130, the partial record and a report marked interrupted."""
    from games.sga import SGA

    original = SGA.step_players
    calls = {"n": 0}

    def step_players(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 150:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SGA, "step_players", step_players)
    assert main(["run", "--quick", "--quiet", "--out", str(tmp_path), "--set", "run.paths=8"]) == 130
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True
    from games import Trajectory

    traj = Trajectory.load(tmp_path / "trajectories" / "sga")
    assert traj.metadata["interrupted"] == 149 and len(traj.times) == 8  # rows at steps 0, 20, …, 140
    assert "interrupted" in capsys.readouterr().err


def test_python_reproduce_names_an_unknown_entry():
    import gandyn
    from games.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown experiment 'nosuch'"):
        gandyn.reproduce("nosuch", quiet=True)


def test_importing_the_plots_leaves_the_users_matplotlib_backend_alone(tmp_path):
    """A user's session keeps its backend after gandyn is imported and has drawn and saved a figure."""
    code = ("import matplotlib; matplotlib.use('svg'); from pathlib import Path; import analysis.plots as p; "
            "from gandyn.report import Report; fig, axes = p.new_figure(); axes[0, 0].plot([0, 1]); "
            f"Report(Path({str(tmp_path)!r}), 't', quiet=True).figure(fig, 'f', 'c'); "
            "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()")
    root = str(__import__("pathlib").Path(__file__).resolve().parent.parent)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.pdf").stat().st_size > 0


def test_a_missing_extra_exits_2_with_how_to_install_it_and_other_import_errors_are_not_hidden(tmp_path, capsys,
                                                                                            monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails
    assert main(["reproduce", "svag", "--quick", "--quiet", "--out", str(tmp_path / "a"),
                 "--set", "run.workers=2", "--set", "run.paths=8"]) == 2
    error = capsys.readouterr().err
    assert "run.workers" in error and "[distributed]" in error and len(error.strip().splitlines()) == 1
    import gandyn.cli

    def broken(*args, **kwargs):
        raise ImportError("cannot import name 'x' from 'games'")  # a bug, not a missing extra

    monkeypatch.setattr(gandyn.cli, "reproduce", broken)
    with pytest.raises(ImportError, match="cannot import name"):
        main(["reproduce", "svag", "--quick", "--quiet", "--out", str(tmp_path / "b")])
