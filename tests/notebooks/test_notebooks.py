"""The walkthrough notebooks run top to bottom on small data (notebooks/)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
    monkeypatch.setenv("VIPCAST_NOTEBOOK_CUSTOMERS", "2500")
    monkeypatch.setenv("VIPCAST_NOTEBOOK_WORKDIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not errors
    # Every cell that draws a figure shows it (the notebooks once set the Agg backend: no output).
    drawing = [cell for cell in notebook.cells if cell.cell_type == "code" and "plt.subplots" in cell.source]
    assert drawing and all(any("image/png" in o.get("data", {}) for o in cell.outputs) for cell in drawing)
    assert len(NOTEBOOKS) == 2
