"""The README's Python example runs and does what it says."""
import re
from pathlib import Path

import torch


def test_readme_custom_game_example(tmp_path, monkeypatch):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(block.replace("2000", "600"), "README.md", "exec"), scope)
    traj = scope["traj"]
    assert abs(traj.theta[-1].mean().item() - 1.0) < 0.1
    assert (tmp_path / "runs" / "custom.npz").exists()
    assert traj.states.dtype == torch.float64


def test_readme_sde_example():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[1]
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    chain, sme2 = scope["chain"], scope["sme2"]
    assert torch.allclose(chain.times, sme2.times)  # the same clock t = Σ η
    diff = chain.states[-1].mean(0) - sme2.states[-1].mean(0)
    se = (chain.states[-1].var(0) / 500 + sme2.states[-1].var(0) / 500).sqrt()
    assert torch.all(diff.abs() < 5 * se), (diff, se)


def test_readme_compare_example(tmp_path, monkeypatch):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[2]
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(block, "README.md", "exec"), scope)
    result = scope["result"]
    assert len(result.times) == 11 and torch.allclose(result.times[-1], torch.tensor(2.0, dtype=torch.float64))
    assert 0 < scope["se"] < scope["error"]  # SME-1's O(η) error is resolved by 2000 runs
    assert (tmp_path / "compare.png").exists()
