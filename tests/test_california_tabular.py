"""experiments/california_tabular.py: every table model's runs through experiments/common.py, one README
section computed from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, entry_env

sys.path.insert(0, str(ROOT / "experiments"))  # experiments/ is a folder of scripts, not a package
import common


@pytest.mark.slow
def test_smoke_writes_one_row_per_model_from_its_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = tmp_path / "runs"
    monkeypatch.setenv(common.RUNS_ENV, str(runs))
    readme = tmp_path / "README.md"
    begin, end = common.section_markers("california_tabular")
    readme.write_text(f"Prose.\n\n{begin}\n{end}\n")
    subprocess.run([sys.executable, "experiments/california_tabular.py", "--smoke", "--seeds", "0", "1",
                    "--models", "tabm", "catboost", "--readme", str(readme), "--", "hardware=cpu1"], cwd=ROOT,
                   check=True, capture_output=True, env=entry_env())
    found = [common.Run("california_tabular_smoke", tuple(json.loads(path.read_text())))
             for path in sorted((runs / "california_tabular_smoke").glob("*/overrides.json"))]
    assert len(found) == 4 and all(run.finished for run in found)
    text = readme.read_text()
    for model, label in (("tabm", "| TabM | 2 |"), ("catboost", "| CatBoost | 2 |")):
        rmse = common.spread(run.metrics()["test_rmse"] for run in found
                             if f"experiment=california_{model}" in run.overrides)
        assert f"{label} {rmse:.4f} |" in text
    assert text.startswith(f"Prose.\n\n{begin}\n```bash\npython experiments/california_tabular.py --smoke")
