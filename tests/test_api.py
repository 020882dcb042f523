"""The notebook API composes like the CLI and runs the same training."""

from __future__ import annotations

import dl_core
from conftest import TINY


def test_compose_and_run_match_the_cli_pipeline(tmp_path):
    cfg = dl_core.compose(*TINY, "trainer.max_epochs=2", "trainer.progress_bar=false", run_dir=tmp_path / "api")
    assert cfg.data.name == "synthetic" and cfg.model.hidden_dim == 16
    result = dl_core.run(cfg)
    assert result.run_dir == tmp_path / "api"
    assert result.metrics["epochs"] == 2 and result.objective == result.metrics["val_loss"]
    assert (result.run_dir / "checkpoints" / "best.ckpt").is_file()
