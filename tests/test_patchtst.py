"""PatchTST: the model's math (patches, channel independence, RevIN, the shared output head with quantile and
distribution outputs), its ETT preset and schedule, and the paths every model must travel: resume, predict.py,
serve.py, an Optuna sweep, DDP under torchrun and W&B, each with tiny sizes on real parts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.nn import functional as F

import dl_core
from dl_core.data import build_bundle
from dl_core.data.synthetic import generate_series
from dl_core.errors import ConfigError
from dl_core.models.build import build_model
from dl_core.models.heads import ForecastHead
from dl_core.models.outputs import MIN_SCALE
from dl_core.models.patchtst import PatchTST, PatchTSTConfig
from dl_core.runs.pipeline import train
from dl_core.serving import load_run
from helpers import ROOT, entry_env, served_forecast, serving
from wandb_reader import offline_runs, read_summary

# Two synthetic series, look-back 24 cut into (24 - 8) / 4 + 2 = 6 patches, one small encoder layer.
TINY_PATCHTST = [
    "model=patchtst",
    "data.generator.length=400",
    "data.sequence_length=24",
    "data.horizon=2",
    "model.patch_length=8",
    "model.stride=4",
    "model.d_model=8",
    "model.n_heads=2",
    "model.n_layers=1",
    "model.d_ff=16",
    "trainer=tiny",
    "trainer.batch_size=64",
    "trainer.lr=3e-3",
    "hardware=cpu1",
]


def patchtst(sequence_length: int = 32, horizon: int = 5, target_index: list[int] | None = None,
             **hyperparameters) -> PatchTST:
    """The model with the schema's defaults for every hyperparameter not given (small sizes by default)."""
    settings = {"d_model": 8, "n_heads": 2, "n_layers": 2, "d_ff": 16, "patch_length": 8, "stride": 4,
                **hyperparameters}
    config = {k: v for k, v in vars(PatchTSTConfig(**settings)).items() if k != "_target_"}
    return PatchTST(sequence_length, horizon, [0, 1, 2] if target_index is None else target_index, **config)


@pytest.mark.parametrize(("length", "patch", "stride", "expected"), [(336, 16, 8, 42), (512, 16, 8, 64),
                                                                      (32, 8, 4, 8), (30, 8, 8, 4), (5, 8, 4, 1)])
def test_patch_count_is_the_papers_and_the_end_is_padded_with_the_last_value(length, patch, stride, expected):
    model = patchtst(sequence_length=length, patch_length=patch, stride=stride, target_index=[0])
    series = torch.arange(length, dtype=torch.float32).view(1, length, 1)
    patches = model.patches(series)
    assert model.n_patches == expected == patches.shape[2]
    padded = torch.cat([series.flatten(), torch.full((stride,), float(length - 1))])
    for i in range(expected):
        assert torch.equal(patches[0, 0, i], padded[i * stride:i * stride + patch])
    assert patches[0, 0, -1, -1] == length - 1


def test_forecasts_every_target_channel_and_only_those():
    torch.manual_seed(0)
    x = torch.randn(4, 32, 5)
    everything = patchtst(target_index=[0, 1, 2, 3, 4]).eval()
    assert everything(x).shape == (4, 5, 5)
    one = patchtst(target_index=[3]).eval()
    one.load_state_dict(everything.state_dict() | {"target_index": torch.tensor([3])})
    assert one(x).shape == (4, 5, 1)
    torch.testing.assert_close(one(x), everything(x)[..., 3:4])


def test_a_channels_forecast_depends_on_its_own_past_alone():
    torch.manual_seed(0)
    model = patchtst(target_index=[0, 2, 3]).eval()
    x = torch.randn(2, 32, 4)
    changed = x.clone()
    changed[..., 2] += torch.randn(2, 32)  # target channel 2 (output 1)
    changed[..., 1] += 5.0                 # not a target: never read
    diff = (model(changed) - model(x)).abs().amax(dim=(0, 1))
    assert diff[1] > 1e-3 and diff[0] == 0 and diff[2] == 0


def test_instance_norm_moves_the_forecast_with_the_level_and_scale_of_the_window():
    torch.manual_seed(0)
    model = patchtst(target_index=[0, 1, 2]).eval()
    x = torch.randn(3, 32, 3)
    shift, scale = torch.tensor([10.0, -3.0, 50.0]), torch.tensor([2.0, 0.5, 4.0])
    torch.testing.assert_close(model(x + shift), model(x) + shift, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model(x * scale + shift), model(x) * scale + shift, rtol=1e-4, atol=1e-4)

    plain = patchtst(target_index=[0, 1, 2], instance_norm=False).eval()
    assert not torch.allclose(plain(x + shift), plain(x) + shift, atol=1e-2)


def test_the_affine_part_is_learnable_and_an_identity_at_first():
    torch.manual_seed(0)
    affine = patchtst(affine=True).eval()
    plain = patchtst(affine=False).eval()
    plain.load_state_dict({k: v for k, v in affine.state_dict().items() if not k.startswith("revin.")})
    x = torch.randn(2, 32, 3)
    torch.testing.assert_close(affine(x), plain(x), rtol=1e-5, atol=1e-5)
    assert {name for name, _ in affine.named_parameters() if name.startswith("revin.")} == {"revin.weight",
                                                                                             "revin.bias"}


@pytest.mark.parametrize("kind", [{}, {"quantiles": [0.1, 0.5, 0.9]}, {"distribution": "normal"}])
def test_the_head_is_the_shared_output_head_and_the_last_map(kind):
    """The flatten head ends in a `ForecastHead` over the N x D encoding. With RevIN, a head that outputs zeros
    forecasts each channel's look-back mean as every quantile or as the location, and a scale of the
    window's std (softplus(0) + MIN_SCALE of it): nothing after the head but de-normalisation by kind acts."""
    torch.manual_seed(0)
    model = patchtst(**kind).eval()
    head = model.head[-1]
    assert isinstance(head, ForecastHead) and head.kind is model.output_kind
    assert head.in_features == model.n_patches * 8 and head.out_features == 5 * model.output_kind.n_params
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    x = torch.randn(2, 32, 3)
    out = model(x)
    mean = x.mean(dim=1, keepdim=True).expand(-1, 5, -1)
    if model.output_kind.is_point:
        torch.testing.assert_close(out, mean)
    elif "quantiles" in kind:
        torch.testing.assert_close(out, mean.unsqueeze(-1).expand(-1, -1, -1, 3))
    else:
        std = (x.var(dim=1, keepdim=True, unbiased=False) + 1e-5).sqrt().expand(-1, 5, -1)
        torch.testing.assert_close(out[..., 0], mean)
        torch.testing.assert_close(out[..., 1], std * (F.softplus(torch.tensor(0.0)) + MIN_SCALE))


def test_a_flipping_affine_map_keeps_the_distributions_scale_positive():
    """RevIN's learnable weight may turn negative (the normalised series flipped): the forecast distribution
    is then mirrored back, its location by the signed map and its scale by the map's size, never negative."""
    torch.manual_seed(0)
    model = patchtst(affine=True, distribution="student_t").eval()
    with torch.no_grad():
        model.revin.weight.copy_(torch.tensor([-2.0, 0.5, -1.0]))
    out = model(torch.randn(4, 32, 3))
    assert (out[..., 1] > 0).all()
    assert torch.isfinite(model.output_kind.loss(out, torch.randn(4, 5, 3)))


def test_a_patch_longer_than_the_padded_look_back_is_refused():
    with pytest.raises(ConfigError, match=r"^model.patch_length: .*data.sequence_length=10"):
        patchtst(sequence_length=10, patch_length=16, stride=4)


@pytest.mark.parametrize(("override", "key"), [("model.n_heads=3", "model.n_heads"),
                                               ("model.head_dropout=1.0", "model.head_dropout"),
                                               ("model.stride=0", "model.stride"),
                                               ("model.quantiles=[0.1,0.9]", "model.quantiles")])
def test_bad_settings_are_one_line_naming_the_key(make_cfg, override, key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        dl_core.run(make_cfg(*TINY_PATCHTST, override))


def test_the_ett_preset_is_patchtst_42_with_the_papers_etth_recipe(tmp_path):
    cfg = dl_core.compose("experiment=ett_patchtst", run_dir=tmp_path)
    model = build_model(cfg.model, {"sequence_length": 336, "horizon": 96, "target_index": list(range(7))})
    assert model.n_patches == 42
    assert OmegaConf.to_container(cfg.model) | {"_target_": None} == {
        "_target_": None, "patch_length": 16, "stride": 8, "d_model": 16, "n_heads": 4, "n_layers": 3, "d_ff": 128,
        "dropout": 0.3, "head_dropout": 0.0, "instance_norm": True, "affine": False, "quantiles": None,
        "distribution": None}
    assert (cfg.trainer.batch_size, cfg.trainer.lr, cfg.trainer.max_epochs) == (128, 1e-4, 100)
    assert (cfg.trainer.scheduler, cfg.trainer.exponential_hold, cfg.trainer.exponential_gamma) == ("exponential", 4,
                                                                                                  0.9)
    assert cfg.hardware.device == "auto"  # presets never pin the device


def test_modes_s_and_ms_read_the_target_channel_alone(tmp_path):
    """On ETTh1, mode MS (7 channels in, OT out) and mode S (OT in and out) give the same forecast of OT
    from the same weights: the other six channels are never read."""
    forecasts = []
    for features in ("MS", "S"):
        cfg = dl_core.compose("experiment=ett_patchtst", f"data.features={features}", "data.horizon=24",
                              run_dir=tmp_path)
        bundle = build_bundle(cfg.data)
        torch.manual_seed(0)
        model = build_model(cfg.model, bundle.spec).eval()
        (x,) = bundle.splits["test"].inputs(torch.arange(4))
        assert x.shape[-1] == {"MS": 7, "S": 1}[features]
        forecasts.append(model(x))
    assert forecasts[0].shape == (4, 24, 1)
    torch.testing.assert_close(forecasts[0], forecasts[1])


def test_exponential_schedule_holds_then_decays_and_resumes_exactly(make_cfg, tmp_path):
    """The ETTh schedule (lr held for `hold` epochs, then x gamma per epoch); a run killed after epoch 2 and
    resumed ends exactly where a straight 4-epoch run does (schedule, BatchNorm statistics, RNG)."""
    schedule = ["trainer.scheduler=exponential", "trainer.exponential_hold=2", "trainer.exponential_gamma=0.5",
                "trainer.max_epochs=4", "trainer.patience=10"]
    train(make_cfg(*TINY_PATCHTST, *schedule, run="straight"))
    lrs = pd.read_csv(tmp_path / "straight" / "metrics.csv")["lr"].tolist()
    assert lrs == pytest.approx([3e-3, 3e-3, 1.5e-3, 7.5e-4])

    # A finished 2-epoch run, turned into a 4-epoch run killed after epoch 2 (its checkpoint is the same
    # but for these two fields), as tests/test_distributed.py does.
    train(make_cfg(*TINY_PATCHTST, *schedule, "trainer.max_epochs=2", run="resumed"))
    last = tmp_path / "resumed" / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=False)
    state["finished"] = False
    state["config"]["trainer"]["max_epochs"] = 4
    torch.save(state, last)
    train(make_cfg(*TINY_PATCHTST, *schedule, "trainer.resume=true", run="resumed"))
    straight, resumed = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("straight", "resumed"))
    assert resumed["epochs"] == 4
    for key in ("val_loss", "test_mse", "test_mae"):
        assert resumed[key] == straight[key], key


# One xdist worker runs the whole module, so that `run_dir` is trained once.
pytestmark = pytest.mark.xdist_group("test_patchtst")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("patchtst") / "run"
    train(dl_core.compose(*TINY_PATCHTST, run_dir=path))
    return path


def test_trains_and_beats_its_first_epoch(run_dir: Path):
    val = pd.read_csv(run_dir / "metrics.csv")["val_loss"].tolist()
    assert len(val) == 3 and min(val[1:]) < val[0]


@pytest.mark.parametrize(("output", "columns"), [("model.quantiles=[0.1,0.5,0.9]", ["q0.1", "q0.5", "q0.9"]),
                                                 ("model.distribution=student_t", ["q0.1", "q0.5", "q0.9"])])
def test_a_probabilistic_patchtst_trains_and_reports_its_intervals(make_cfg, tmp_path, output, columns):
    """Quantiles (pinball loss) or a Student-t (likelihood) through the shared head train on tiny data, and the
    run reports what probabilistic runs report: CRPS, pinball loss, 80 % coverage and width, and the
    median's MSE as its point error, with one column per quantile in the predictions."""
    train(make_cfg(*TINY_PATCHTST, output, run="probabilistic"))
    run = tmp_path / "probabilistic"
    val = pd.read_csv(run / "metrics.csv")["val_loss"].tolist()
    assert len(val) == 3 and min(val[1:]) < val[0]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_crps", "test_crps_scaled", "test_pinball", "test_coverage_80", "test_width_80", "test_mse"):
        assert np.isfinite(metrics[key]), key
    assert 0.0 <= metrics["test_coverage_80"] <= 1.0 and metrics["test_width_80"] > 0
    predictions = pd.read_csv(run / "predictions_test.csv")
    assert [c for c in predictions.columns if c.startswith("q")] == columns
    np.testing.assert_array_equal(predictions["predicted"], predictions["q0.5"])
    assert (predictions["q0.1"] <= predictions["q0.5"]).all() and (predictions["q0.5"] <= predictions["q0.9"]).all()


@pytest.mark.slow
def test_predict_py_the_server_and_the_reloaded_run_agree(run_dir: Path, tmp_path: Path):
    raw = generate_series(2, 400, 2, 0.3, 0)
    at_training = pd.read_csv(run_dir / "predictions_test.csv", parse_dates=["timestamp"])
    reloaded = load_run(run_dir).predict(raw)
    keys = ["timestamp", "entity", "step", "target"]
    both = at_training.merge(reloaded, on=keys, suffixes=("_training", "_reloaded"))
    assert len(both) == len(at_training) > 0
    np.testing.assert_allclose(both["predicted_reloaded"], both["predicted_training"], rtol=1e-5, atol=1e-7)

    rows = raw.groupby("series_id").head(40)
    rows.to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "out.csv"
    done = subprocess.run([sys.executable, str(ROOT / "predict.py"), f"run_dir={run_dir}",
                           f"data.path={tmp_path / 'new.csv'}", f"output={out}", "threads=1"],
                          env=entry_env(), cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    from_file = pd.read_csv(out, parse_dates=["timestamp"])
    assert len(from_file) == 2 * (40 - 24 - 2 + 1 + 1) * 2  # complete windows + the forecast, 2 steps each
    with serving(run_dir) as client:
        assert client.get("/metadata").json()["model"]["class"] == "PatchTST"
        frame = rows.assign(timestamp=rows["timestamp"].astype(str))
        response = client.post("/predict", json={"rows": frame.to_dict("records")})
    served = served_forecast(response)
    pd.testing.assert_frame_equal(served, from_file, check_exact=True, check_dtype=False)


@pytest.mark.slow
def test_wandb_offline_run_records_the_patchtst_config_and_metrics(make_cfg, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = make_cfg(*TINY_PATCHTST, "trainer.max_epochs=2", "logger=wandb")
    objective = train(cfg)
    (offline,) = offline_runs(Path(cfg.paths.output_dir))
    run = read_summary(offline)
    assert run["state"] == "finished"
    assert run["config"]["model"]["patch_length"] == 8 and run["config"]["model"]["d_model"] == 8
    assert run["step"] == 3  # two epochs, then the plots and the predictions table one step after the last
    assert run["summary"]["val_loss"] == pytest.approx(objective)


@pytest.mark.slow
def test_an_optuna_sweep_of_patchtst_completes_its_trials(tmp_path):
    sweep_dir = tmp_path / "sweep"
    done = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "hparams_search=ett_patchtst_optuna",
                           f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.n_trials=2",
                           *(o for o in TINY_PATCHTST if not o.startswith("trainer.lr=")), "trainer.max_epochs=1"],
                          cwd=tmp_path, env=entry_env(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    trials = pd.read_csv(sweep_dir / "trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE"]
    assert trials["val_loss"].notna().all() and trials["params_trainer.lr"].nunique() == 2
    # The sizes TINY_PATCHTST fixes (width, look-back) leave the space; the learning rate and dropout remain.
    assert {column for column in trials.columns if column.startswith("params_")} == {"params_model.dropout",
                                                                                   "params_trainer.lr"}


@pytest.mark.slow
def test_two_ddp_ranks_train_patchtst_and_the_checkpoint_predicts_what_training_did(tmp_path):
    """BatchNorm keeps per-rank batch statistics (no SyncBatchNorm), so a 2-rank run is not one process with
    the global batch; what must hold is one run dir, one checkpoint pair, and weights that reload as trained."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(ROOT / "train.py"), *TINY_PATCHTST, "trainer.max_epochs=2", "hardware=ddp",
               "hardware.device=cpu", "hardware.precision=32", "hardware.threads=1", "trainer.batch_size=32",
               f"paths.log_dir={tmp_path / 'logs'}"]
    done = subprocess.run(command, env=entry_env(), cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert sorted(p.name for p in (tmp_path / "logs").rglob("*.ckpt")) == ["best.ckpt", "last.ckpt"]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    at_training = pd.read_csv(run / "predictions_test.csv", parse_dates=["timestamp"])
    reloaded = load_run(run).predict(generate_series(2, 400, 2, 0.3, 0))
    both = at_training.merge(reloaded, on=["timestamp", "entity", "step", "target"], suffixes=("_t", "_r"))
    assert len(both) == len(at_training) > 0
    np.testing.assert_allclose(both["predicted_r"], both["predicted_t"], rtol=1e-5, atol=1e-7)
