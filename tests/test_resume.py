"""Resume, one test per property: a killed run continues bit-identical, which overrides a resume honours,
a finished run extends, and a missing or unreadable checkpoint is one line. Ctrl-C and the run lock are
train.py's, in test_cli.py."""

from __future__ import annotations

import json
import re
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

import dl_core
from dl_core.data import build_bundle
from dl_core.engine import FitContext, fit, resolve_hardware
from dl_core.engine.checkpoint import load_checkpoint, seed_everything
from dl_core.errors import CheckpointError, ConfigError
from dl_core.models.build import build_model
from dl_core.runs.pipeline import train
from dl_core.runs.resume import resumed_config
from dl_core.serving.load import load_run
from helpers import ROOT, TINY, TINY_GPU, TINY_TABULAR, entry_command, entry_env, needs_gpu, run_entry, start_entry
from unprivileged import require_unprivileged, run_unprivileged

TIMING = {"train_time_s", "train_samples_per_s"}


def assert_same_run(run: Path, reference: Path) -> None:
    """Metrics (timings aside), the per-epoch history and the weights of both checkpoints are equal."""
    metrics = [{k: v for k, v in json.loads((path / "metrics.json").read_text()).items() if k not in TIMING}
               for path in (run, reference)]
    assert metrics[0] == metrics[1]
    pd.testing.assert_frame_equal(pd.read_csv(run / "metrics.csv").drop(columns="time_s"),
                                  pd.read_csv(reference / "metrics.csv").drop(columns="time_s"))
    for name in ("best.ckpt", "last.ckpt"):
        ours, theirs = (load_checkpoint(path / "checkpoints" / name)["model"] for path in (run, reference))
        for key, weights in theirs.items():
            assert torch.equal(ours[key], weights), f"{name}: {key}"


# One xdist worker runs the whole module, so that `one_epoch` is trained once.
pytestmark = pytest.mark.xdist_group("test_resume")


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory) -> Path:
    """A finished one-epoch tiny run, trained once for the module: tests read it, or resume a copy of it."""
    run_dir = tmp_path_factory.mktemp("one_epoch") / "run"
    train(dl_core.compose(*TINY, "trainer.max_epochs=1", run_dir=run_dir))
    return run_dir


@pytest.fixture
def finished_run(one_epoch, tmp_path) -> Path:
    """`one_epoch` copied to tmp_path/run, for a test that changes it (resumes it, locks it, breaks it)."""
    return Path(shutil.copytree(one_epoch, tmp_path / "run"))


@pytest.fixture(scope="module")
def saved(one_epoch) -> dict:
    """The config a finished tiny run saved in its checkpoint."""
    return load_checkpoint(one_epoch / "checkpoints" / "last.ckpt")["config"]


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    pytest.param([*TINY, "data.generator.length=2500", "trainer.max_epochs=5", "trainer.patience=5"], id="lstm"),
    # rtdl builds the FT-Transformer's no-weight-decay group from a set, whose order differs from model to
    # model and process to process: a resumed run gave one parameter's Adam moments to another of its shape.
    # The plain resume command composes the default (LSTM, time series) config: merging the saved tabular
    # config into its schemas failed with ConfigKeyError.
    pytest.param([*TINY_TABULAR, "data.generator.n_rows=4000", "trainer.max_epochs=5", "trainer.patience=5"],
                 id="ft_transformer"),
])
def test_a_killed_run_resumes_bit_identical(tmp_path, args):
    """SIGKILL a real training process after its second epoch, resume it with the plain resume command,
    and match an uninterrupted run exactly (trained through the API: the same config, one process less)."""
    killed = start_entry("train.py", *args, f"hydra.run.dir={tmp_path / 'killed'}")
    csv = tmp_path / "killed" / "metrics.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and killed.poll() is None:
        if csv.exists() and len(csv.read_text().splitlines()) >= 3:  # header + 2 epochs
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "metrics.json").exists()

    resumed = run_entry("train.py", f"trainer.resume={tmp_path / 'killed'}", f"hydra.run.dir={tmp_path / 'stub'}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    train(dl_core.compose(*args, run_dir=tmp_path / "straight"))
    assert_same_run(tmp_path / "killed", tmp_path / "straight")


@pytest.mark.parametrize(("overrides", "saved_trainer", "keys"), [
    (["model.hidden_dim=32"], {}, "model.hidden_dim (saved 16, given 32)"),
    (["data.path=/elsewhere.csv"], {}, "data.path (saved None, given /elsewhere.csv)"),
    (["trainer.lr=0.01", "seed=1"], {}, "seed (saved 42, given 1), trainer.lr (saved 0.001, given 0.01)"),
    (["model=dlinear"], {}, "model._target_"),  # a group override compares the whole group
    # extending is allowed, but a cosine schedule ends at the saved max_epochs
    (["trainer.max_epochs=9"], {"scheduler": "cosine"},
     "trainer.max_epochs: cannot change when resuming a run with trainer.scheduler=cosine"),
])
def test_resume_refuses_an_override_that_changes_the_run(saved, make_cfg, overrides, saved_trainer, keys):
    given = {override.split("=")[0] for override in overrides}
    tiny = [o for o in TINY if not any(o.startswith(f"{key}.") or o.split("=")[0] == key for key in given)]
    with pytest.raises(ConfigError) as err:
        resumed_config({**saved, "trainer": {**saved["trainer"], **saved_trainer}}, make_cfg(*tiny, *overrides),
                       ["trainer.resume=x", *overrides])
    assert str(err.value).startswith(keys)
    assert "cannot change when resuming" in str(err.value) and "\n" not in str(err.value)


def test_resume_applies_what_extends_the_run_and_accepts_repeated_values(saved, make_cfg):
    overrides = ["trainer.max_epochs=20", "trainer.patience=30", "hardware.threads=1", "model.hidden_dim=16"]
    cfg = resumed_config(saved, make_cfg(*TINY, *overrides), overrides)
    assert cfg.trainer.max_epochs == 20 and cfg.trainer.patience == 30 and cfg.model.hidden_dim == 16
    # keys no override names keep the saved value, whatever the resume command's defaults are
    untouched = resumed_config(saved, make_cfg("trainer.max_epochs=7"), ["trainer.max_epochs=7"])
    assert untouched.model.hidden_dim == 16 and untouched.data.generator.length == 400



@pytest.mark.parametrize("preset", ["hardware=auto", "hardware=ddp"])
def test_a_resume_that_repeats_the_hardware_preset_keeps_what_auto_decided(make_cfg, preset):
    """The saved config holds what `auto` chose at the run's start (precision, threads, compile); a resume command
    repeating the preset (`torchrun ... hardware=ddp trainer.resume=...`) gives `auto` again, which changes
    nothing: the run goes on with its choice. Another explicit value is still refused."""
    tiny = [o for o in TINY if not o.startswith("hardware")]
    saved = OmegaConf.to_container(make_cfg(*tiny, preset), resolve=True)
    saved["hardware"].update(precision="bf16-mixed", threads=2, compile=False)  # as the pipeline records them
    cfg = resumed_config(saved, make_cfg(*tiny, preset), ["trainer.resume=x", preset])
    assert (cfg.hardware.precision, cfg.hardware.threads, cfg.hardware.compile) == ("bf16-mixed", 2, False)
    with pytest.raises(ConfigError, match=r"^hardware\.precision \(saved bf16-mixed, given 32\): cannot change"):
        resumed_config(saved, make_cfg(*tiny, preset, "hardware.precision=32"), [preset, "hardware.precision=32"])

def fit_run(cfg, resume: dict | None = None) -> torch.nn.Module:
    """The epoch engine alone on a composed config (the Python API resumes under the saved config as it is,
    so a longer max_epochs reaches a finished run only through the engine or train.py's overrides)."""
    seed_everything(cfg.seed)
    hw = resolve_hardware(cfg.hardware)
    bundle = build_bundle(cfg.data).to(hw.device)
    model = build_model(cfg.model, bundle.spec).to(hw.device)
    fit(model, bundle, FitContext(cfg.trainer, hw, Path(cfg.paths.output_dir), cfg.seed, {}, (), resume))
    return model


def test_a_finished_run_resumed_with_more_epochs_ends_like_the_longer_run(make_cfg):
    """The saved `finished` flag used to stop a resumed run before its first epoch."""
    assert_resumed_ends_like_straight(make_cfg, TINY)


@needs_gpu
def test_a_run_resumed_on_a_gpu_ends_like_the_longer_run(make_cfg):
    """On CUDA too: the checkpoint (read onto the CPU) puts the optimizer state, the GPU's RNG and the
    shuffle back, so the resumed run's weights are bit-identical to those of the run that never stopped."""
    assert_resumed_ends_like_straight(make_cfg, TINY_GPU)


def assert_resumed_ends_like_straight(make_cfg, overrides: list[str]) -> None:
    straight = fit_run(make_cfg(*overrides, "trainer.max_epochs=4", run="straight"))
    short = make_cfg(*overrides, "trainer.max_epochs=2", run="short")
    fit_run(short)
    resume = load_checkpoint(Path(short.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert resume["finished"]
    extended = fit_run(make_cfg(*overrides, "trainer.max_epochs=4", run="short"), resume=resume)
    for name, weights in straight.state_dict().items():
        assert torch.equal(weights, extended.state_dict()[name]), name


def test_resume_without_a_checkpoint_says_what_to_pass(make_cfg, tmp_path):
    with pytest.raises(ConfigError, match="checkpoint not found"):
        train(make_cfg(*TINY, f"trainer.resume={tmp_path / 'nowhere'}"))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_checkpoint_is_one_line_naming_it_and_how_to_recover(make_cfg, tmp_path):
    """A truncated last.ckpt: resume names it and the copy from best.ckpt that recovers, and the advice
    works; a truncated best.ckpt: loading the run for predict/serve says to train again."""
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

    truncate(ckpts / "best.ckpt")
    with pytest.raises(CheckpointError, match=r"best.ckpt: cannot read this checkpoint, .* train the run again$"):
        load_run(tmp_path / "run")


@pytest.mark.slow
def test_a_run_saved_before_keys_were_added_resumes_with_their_defaults(finished_run):
    """A checkpoint written before `data.split.folds`/`fold` and `model.quantiles` existed failed to resume
    with `Missing key folds`; the new keys take their schema defaults, what was saved stays (hidden_dim 16, where
    the resume command's default is 64)."""
    checkpoint = finished_run / "checkpoints" / "last.ckpt"
    state = load_checkpoint(checkpoint)
    for section, key in (("data", "split"), ("model", None)):
        node = state["config"][section] if key is None else state["config"][section][key]
        for old in ("folds", "fold", "quantiles", "distribution"):
            node.pop(old, None)
    torch.save(state, checkpoint)
    assert "folds" not in load_checkpoint(checkpoint)["config"]["data"]["split"]
    done = run_entry("train.py", f"trainer.resume={finished_run}", "trainer.max_epochs=2")
    assert done.returncode == 0, done.stderr
    resumed = load_checkpoint(checkpoint)
    assert resumed["epoch"] == 2 and resumed["config"]["model"]["hidden_dim"] == 16
    assert resumed["config"]["data"]["split"]["folds"] == 1 and resumed["config"]["model"]["quantiles"] is None


def test_a_saved_section_of_another_schema_gets_no_keys_from_the_composed_one(make_cfg):
    tabular = load_checkpoint_config(make_cfg(*TINY_TABULAR, "trainer.max_epochs=1", run="table"))
    cfg = resumed_config(tabular, make_cfg("trainer.max_epochs=1"), [])
    assert set(cfg.model) == set(tabular["model"]) and "hidden_dim" not in cfg.model


def load_checkpoint_config(cfg) -> dict:
    train(cfg)
    return load_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["config"]


def checkpoints(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((run_dir / "checkpoints").iterdir())}


@pytest.mark.slow
def test_a_checkpoint_the_disk_refuses_is_one_line_and_the_previous_one_is_kept(finished_run, tmp_path):
    """A full disk, here the file-size limit (`ulimit -f`): was an OSError traceback (Errno 27). The checkpoints
    already written stay as they were, to resume from, and no temp file is left."""
    run_dir = finished_run
    before = checkpoints(run_dir)
    limit = min(map(len, before.values())) // 2  # bytes: the log, metrics.csv and the lock fit, a checkpoint does not

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    done = subprocess.run(entry_command("train.py", (f"trainer.resume={run_dir}", "trainer.max_epochs=2",
                                                     f"hydra.run.dir={tmp_path / 'stub'}")),
                          cwd=ROOT, env=entry_env(), capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=limit_file_size)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-3000:]
    assert re.fullmatch(rf"error: {run_dir}/checkpoints/(best|last)\.ckpt: cannot write this checkpoint \(File too "
                        rf"large\); free disk space or raise the file-size limit \(ulimit -f\); resume with: python "
                        rf"train\.py trainer\.resume={run_dir}", done.stderr.strip()), done.stderr
    assert checkpoints(run_dir) == before


def test_a_resume_that_cannot_write_its_checkpoints_is_refused_before_any_work(finished_run, tmp_path):
    """Was a PermissionError traceback once the first resumed epoch had trained."""
    require_unprivileged(tmp_path)
    run_dir = finished_run
    (run_dir / "checkpoints").chmod(0o555)
    stub = tmp_path / "stub"
    done = run_unprivileged("train.py", f"trainer.resume={run_dir}", "trainer.max_epochs=2", f"hydra.run.dir={stub}",
                            timeout=120)
    refusal = (f"error: trainer.resume: cannot write in {run_dir}/checkpoints (permission denied); make it writable, "
               f"then resume")
    assert (done.returncode, done.stderr.strip()) == (2, refusal)
    assert pd.read_csv(run_dir / "metrics.csv")["epoch"].tolist() == [1] and not stub.exists()


def series_file(path: Path, scale: float = 1.0) -> list[str]:
    """A CSV of one series at `path`, and the overrides that train on it."""
    steps = np.arange(400)
    pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=len(steps), freq="h"),
                  "target": scale * np.sin(steps / 12)}).to_csv(path, index=False)
    return ["data=csv_timeseries", f"data.path={path}", "data.timestamp_column=timestamp", "data.target_column=target"]


def test_a_resume_on_a_data_file_changed_since_the_run_is_refused_by_name(make_cfg, tmp_path):
    """The same path with other numbers: the resume refitted the scalers on the new file and went on, and its
    metrics mixed two data sets."""
    data = tmp_path / "series.csv"
    train(make_cfg(*series_file(data), *TINY[1:], "trainer.max_epochs=1"))
    history = (tmp_path / "run" / "metrics.csv").read_text()
    series_file(data, scale=100.0)
    with pytest.raises(ConfigError) as err:
        train(make_cfg(f"trainer.resume={tmp_path / 'run'}", run="stub"))
    assert re.fullmatch(rf"data\.path: {data} is not the file this run trained on \(sha256 [0-9a-f]{{12}}\.\.\. of "
                        rf"\d+ bytes then, [0-9a-f]{{12}}\.\.\. of \d+ bytes now\); restore that file to resume, or "
                        rf"train a new run on this data \(without trainer\.resume\)", str(err.value)), str(err.value)
    assert (tmp_path / "run" / "metrics.csv").read_text() == history
    series_file(data)  # the file the run trained on again (the same bytes): the resume is accepted
    train(make_cfg(f"trainer.resume={tmp_path / 'run'}", run="stub"))


@pytest.mark.parametrize("locked", ["checkpoints", "."])
def test_a_run_whose_checkpoints_this_user_may_not_read_is_one_line_naming_the_folder(finished_run, tmp_path,
                                                                                      locked):
    """Was a PermissionError traceback (Python's `is_file` raises for a file under a folder it may not enter),
    and the resume left a directory of its own."""
    require_unprivileged(tmp_path)
    run_dir = finished_run
    folder = (run_dir / locked).resolve()
    folder.chmod(0)
    stub = tmp_path / "stub"
    try:
        done = run_unprivileged("train.py", f"trainer.resume={run_dir}", "trainer.max_epochs=2",
                                f"hydra.run.dir={stub}", timeout=120)
    finally:
        folder.chmod(0o755)
    assert (done.returncode, done.stderr.strip()) == (
        2, (f"error: {folder}: permission denied, so {run_dir}/checkpoints/last.ckpt cannot be read; make the folder "
           f"readable (chmod u+rx {folder}), then run again"))
    assert not stub.exists()


@pytest.mark.slow
def test_a_compiled_run_resumes_like_the_longer_run_from_plain_weights(make_cfg):
    """hardware.compile=true trains through torch.compile's wrapper; the checkpoints hold the module's own
    state_dict (no `_orig_mod.` prefix), so a resumed run, a prediction or a run without compile can load them."""
    assert_resumed_ends_like_straight(make_cfg, [*TINY, "hardware.compile=true"])
    weights = load_checkpoint(Path(make_cfg(run="short").paths.output_dir) / "checkpoints" / "best.ckpt")["model"]
    assert weights and not any(key.startswith("_orig_mod") for key in weights)
