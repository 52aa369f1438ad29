"""The flow catalog entries in --quick mode: their summary keys land in the ranges THEORY §3 and §5 expect."""
import json

import pytest

from gandyn.cli import main


def quick(name, tmp_path) -> dict:
    assert main(["reproduce", name, "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    return json.loads((tmp_path / "summary.json").read_text())


@pytest.mark.slow
def test_modified_ode_orders(tmp_path):
    summary = quick("modified-ode", tmp_path)
    for update in ("sim", "alt"):
        assert 0.8 <= summary[f"slope_flow_{update}"] <= 1.2, summary
        assert 1.7 <= summary[f"slope_modified_{update}"] <= 2.3, summary
        for system in ("dirac", "gaussian", "rotation"):
            assert summary[f"slope_modified_{update}_{system}"] > summary[f"slope_flow_{update}_{system}"] + 0.7
    assert (tmp_path / "modified_ode.png").exists()


@pytest.mark.slow
def test_dual_flow_limit_is_first_order(tmp_path):
    summary = quick("dual-flow-limit", tmp_path)
    assert 0.8 <= summary["slope_dual_limit"] <= 1.2, summary
    for system in ("gaussian", "particles"):
        assert summary[f"slope_dual_limit_{system}_low"] <= 1.0 + 0.2 and summary[f"slope_dual_limit_{system}"] > 0.8


@pytest.mark.slow
def test_gradient_layer_entry_reaches_the_ring(tmp_path):
    """Both generators end far below the start's MMD² (about 0.7); the gradient layer covers most of
    the 8 modes, the parametric generator (still improving at 1000 updates) at least half."""
    summary = quick("gradient-layer", tmp_path)
    for generator, modes in (("gradient_layer", 6), ("parametric", 4)):
        assert summary[f"mmd_final_{generator}"] < 0.05, summary
        assert summary[f"modes_covered_{generator}"] >= modes, summary
        assert summary[f"wall_time_{generator}_s"] > 0
