"""experiments/quickstart.ipynb runs end to end (tiny settings), so the documented API cannot rot."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from helpers import ROOT, entry_env


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKSTART_EPOCHS", "2")
    monkeypatch.setenv("QUICKSTART_OUTPUT", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", entry_env()["PYTHONPATH"])
    notebook = nbformat.read(ROOT / "experiments" / "quickstart.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "experiments")}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert (tmp_path / "lstm" / "metrics.json").is_file() and (tmp_path / "ft_transformer" / "metrics.json").is_file()
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # curves, forecast, scatter
    predicted = next(cell for cell in notebook.cells if "predict(rows)" in cell.source).outputs[0]["data"]
    assert "predicted" in predicted["text/plain"] and "actual" in predicted["text/plain"]
    # Trained on a DataFrame (kept under paths.log_dir/frames), scored on labelled rows.
    assert (tmp_path / "from_frame" / "metrics.json").is_file() and len(list((tmp_path / "frames").iterdir())) == 1
    scored = notebook.cells[-1].outputs[0]["data"]["text/plain"]
    assert "'n_samples': 200" in scored and "'rmse'" in scored and "'r2'" in scored
