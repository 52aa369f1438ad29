"""The notebooks in notebooks/: each runs end to end at small size, is committed without outputs, and
every catalog entry has one."""
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from gandyn.catalog import catalog  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
IDS = [path.stem for path in NOTEBOOKS]

def notebook_name(entry: str) -> str:
    """The notebook of catalog entry ``entry``: weak-order → weak_order.ipynb."""
    return entry.replace("-", "_") + ".ipynb"


def test_every_catalog_entry_has_a_notebook():
    present = {path.name for path in NOTEBOOKS}
    missing = [name for name in catalog() if notebook_name(name) not in present]
    assert not missing, f"catalog entries without a notebook in notebooks/: {missing}"
    assert "intro.ipynb" in present


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}: cell {i} has outputs; strip them before committing"
            assert cell.execution_count is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_at_small_size(path, tmp_path, monkeypatch):
    """Execute every cell in a fresh kernel of this interpreter (small sizes: GANDYN_NOTEBOOK_SMALL=1),
    in a temporary working directory, so that the runs the notebook writes land there."""
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    monkeypatch.setenv("GANDYN_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(path, as_version=4)
    # the native kernel ("python3") is ipykernel in this interpreter: jupyter_client replaces a kernel
    # command's "python" by sys.executable
    client = nbclient.NotebookClient(nb, kernel_name=NATIVE_KERNEL_NAME, timeout=600,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell and its traceback, on any error
