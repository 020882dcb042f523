"""Resume: which overrides a resume honours, extending a finished run, and unreadable checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from dl_core.engine.checkpoint import load_checkpoint
from dl_core.errors import CheckpointError, ConfigError
from dl_core.pipeline import train
from dl_core.resume import resumed_config
from dl_core.serving.load import load_run
from helpers import TINY, TINY_TABULAR
from test_loop import fit_run


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict:
    """The config a finished tiny run saved in its checkpoint."""
    from helpers import compose_config

    run_dir = tmp_path_factory.mktemp("saved") / "run"
    train(compose_config([*TINY, "trainer.max_epochs=1"], run_dir))
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["config"]


@pytest.mark.parametrize(("overrides", "keys"), [
    (["model.hidden_dim=32"], "model.hidden_dim (saved 16, given 32)"),
    (["data.path=/elsewhere.csv"], "data.path (saved None, given /elsewhere.csv)"),
    (["trainer.lr=0.01", "seed=1"], "seed (saved 42, given 1), trainer.lr (saved 0.001, given 0.01)"),
    (["model=dlinear"], "model._target_"),  # a group override compares the whole group
])
def test_resume_refuses_an_override_that_changes_the_run(saved, make_cfg, overrides, keys):
    given = {override.split("=")[0] for override in overrides}
    tiny = [o for o in TINY if not any(o.startswith(f"{key}.") or o.split("=")[0] == key for key in given)]
    with pytest.raises(ConfigError) as err:
        resumed_config(saved, make_cfg(*tiny, *overrides), ["trainer.resume=x", *overrides])
    assert str(err.value).startswith(keys)
    assert "cannot change when resuming" in str(err.value) and "\n" not in str(err.value)


def test_resume_applies_what_extends_the_run_and_accepts_repeated_values(saved, make_cfg):
    overrides = ["trainer.max_epochs=20", "trainer.patience=30", "hardware.threads=1", "model.hidden_dim=16"]
    cfg = resumed_config(saved, make_cfg(*TINY, *overrides), overrides)
    assert cfg.trainer.max_epochs == 20 and cfg.trainer.patience == 30 and cfg.model.hidden_dim == 16
    # keys no override names keep the saved value, whatever the resume command's defaults are
    untouched = resumed_config(saved, make_cfg("trainer.max_epochs=7"), ["trainer.max_epochs=7"])
    assert untouched.model.hidden_dim == 16 and untouched.data.generator.length == 400


def test_a_cosine_schedule_cannot_be_extended(saved, make_cfg):
    cosine = {**saved, "trainer": {**saved["trainer"], "scheduler": "cosine"}}
    with pytest.raises(ConfigError, match=r"^trainer.max_epochs: .*trainer.scheduler=cosine"):
        resumed_config(cosine, make_cfg(*TINY, "trainer.max_epochs=9"), ["trainer.max_epochs=9"])


def test_a_finished_run_resumed_with_more_epochs_ends_like_the_longer_run(make_cfg):
    """The saved `finished` flag used to stop a resumed run before its first epoch."""
    straight = fit_run(make_cfg(*TINY, "trainer.max_epochs=4", run="straight"))
    short = make_cfg(*TINY, "trainer.max_epochs=2", run="short")
    fit_run(short)
    resume = load_checkpoint(Path(short.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert resume["finished"]
    extended = fit_run(make_cfg(*TINY, "trainer.max_epochs=4", run="short"), resume=resume)
    for name, weights in straight.state_dict().items():
        assert torch.equal(weights, extended.state_dict()[name])


def test_a_tabular_run_resumes_with_the_plain_resume_command(make_cfg, tmp_path):
    """The resume command composes the default (LSTM, time series) config; merging the saved tabular
    config into its schemas failed with ConfigKeyError."""
    train(make_cfg(*TINY_TABULAR, "trainer.max_epochs=2", run="tabular"))
    train(make_cfg(f"trainer.resume={tmp_path / 'tabular'}", run="stub"))
    assert json.loads((tmp_path / "tabular" / "metrics.json").read_text())["epochs"] == 2


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_last_checkpoint_is_one_line_naming_it_and_best_resumes_instead(make_cfg, tmp_path):
    args = [*TINY, "trainer.max_epochs=5", "trainer.lr=0.03"]  # the best epoch is the 3rd of 5
    train(make_cfg(*args, run="straight"))
    train(make_cfg(*args, run="run"))
    ckpts = tmp_path / "run" / "checkpoints"
    assert load_checkpoint(ckpts / "best.ckpt")["epoch"] < load_checkpoint(ckpts / "last.ckpt")["epoch"]
    truncate(ckpts / "last.ckpt")
    with pytest.raises(CheckpointError) as err:
        train(make_cfg(f"trainer.resume={tmp_path / 'run'}", run="stub"))
    message = str(err.value)
    assert message.startswith(f"{ckpts / 'last.ckpt'}: cannot read this checkpoint, it is truncated or corrupt")
    assert f"cp {ckpts / 'best.ckpt'} {ckpts / 'last.ckpt'}" in message and "\n" not in message
    # The advice works: the best epoch's checkpoint resumes and replays the epochs after it exactly.
    shutil.copy(ckpts / "best.ckpt", ckpts / "last.ckpt")
    train(make_cfg(f"trainer.resume={tmp_path / 'run'}", run="stub"))
    history = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    pd.testing.assert_frame_equal(history.drop(columns="time_s"),
                                  pd.read_csv(tmp_path / "straight" / "metrics.csv").drop(columns="time_s"))


def test_a_truncated_best_checkpoint_is_one_line_for_predict_and_serve(make_cfg, tmp_path):
    train(make_cfg(*TINY, "trainer.max_epochs=1"))
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    truncate(best)
    with pytest.raises(CheckpointError, match=r"best.ckpt: cannot read this checkpoint, .* train the run again$"):
        load_run(tmp_path / "run")
