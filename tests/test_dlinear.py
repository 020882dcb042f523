"""DLinear: shapes in every mode, an exact trend/seasonal decomposition, and training end to end."""

from __future__ import annotations

import json

import pytest
import torch

from dl_core.errors import ConfigError
from dl_core.models.dlinear import DLinear, MovingAverage
from dl_core.runs.pipeline import train


@pytest.mark.parametrize("individual", [False, True])
def test_output_shape_and_target_selection(individual):
    torch.manual_seed(0)
    model = DLinear(sequence_length=32, horizon=8, n_features=5, target_index=[0, 1, 2, 3, 4], kernel_size=25,
                    individual=individual, quantiles=None, distribution=None)
    x = torch.randn(4, 32, 5)
    full = model(x)
    assert full.shape == (4, 8, 5)
    model.register_buffer("target_index", torch.tensor([3]))
    assert torch.equal(model(x), full[..., 3:4])


def test_channels_are_forecast_independently():
    torch.manual_seed(0)
    model = DLinear(sequence_length=16, horizon=4, n_features=3, target_index=[0, 1, 2], kernel_size=25,
                    individual=False, quantiles=None, distribution=None)
    x = torch.randn(2, 16, 3)
    changed = x.clone()
    changed[..., 1] += 5.0
    diff = (model(changed) - model(x)).abs().amax(dim=(0, 1))
    assert diff[1] > 0 and diff[0] == 0 and diff[2] == 0


def test_moving_average_keeps_length_and_follows_a_ramp():
    ramp = torch.arange(20, dtype=torch.float32).view(1, 1, 20)
    trend = MovingAverage(5)(ramp)
    assert trend.shape == ramp.shape
    assert torch.allclose(trend[..., 2:-2], ramp[..., 2:-2])
    assert torch.allclose(MovingAverage(5)(torch.full((1, 2, 9), 3.0)), torch.full((1, 2, 9), 3.0))


def test_dlinear_trains_and_beats_its_own_first_epoch(make_cfg, tmp_path):
    cfg = make_cfg("model=dlinear", "data.generator.length=400", "data.sequence_length=24", "data.horizon=4",
                   "trainer.max_epochs=4", "trainer.batch_size=64", "trainer.lr=0.01", "hardware=cpu1")
    train(cfg)
    history = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_parameters"] == 2 * (24 * 4 + 4)
    val = [float(line.split(",")[2]) for line in history[1:]]
    assert min(val[1:]) < val[0]


def test_target_must_be_an_input(make_cfg):
    cfg = make_cfg("model=dlinear", "data.include_target_in_inputs=false", *["data.generator.length=200"],
                   "hardware=cpu")
    with pytest.raises(ConfigError, match=r"data\.include_target_in_inputs=true"):
        train(cfg)
