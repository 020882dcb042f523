"""The LSTM forecaster: direct multi-step, multi-target outputs, instance normalisation, channel independence."""

from __future__ import annotations

import pytest
import torch

from dl_core.data import build_bundle
from dl_core.errors import ConfigError
from dl_core.models.build import build_model
from dl_core.models.lstm import LSTMConfig, LSTMForecaster


def lstm(n_features: int, n_targets: int, horizon: int = 1, target_index: list[int] | None = None,
         **hyperparameters) -> LSTMForecaster:
    """The model with the schema's defaults for every hyperparameter not given, but without RevIN where no target is
    among the inputs (RevIN, the default, needs them)."""
    hyperparameters.setdefault("instance_norm", target_index is not None)
    settings = {k: v for k, v in vars(LSTMConfig(**hyperparameters)).items() if k != "_target_"}
    return LSTMForecaster(n_features, n_targets, horizon, target_index, **settings)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_outputs_every_step_of_every_target(bidirectional):
    torch.manual_seed(0)
    model = lstm(n_features=5, n_targets=3, horizon=4, hidden_dim=8, bidirectional=bidirectional)
    assert model(torch.randn(6, 20, 5)).shape == (6, 4, 3)


def test_instance_norm_follows_a_shift_and_scale_of_the_window():
    """With RevIN, a window moved to another level and scale gets the same forecast, moved alike."""
    torch.manual_seed(0)
    model = lstm(n_features=3, n_targets=2, horizon=5, hidden_dim=8, instance_norm=True,
                           target_index=[2, 0]).eval()
    x = torch.randn(4, 16, 3)
    shift, scale = torch.tensor([10.0, -3.0, 50.0]), torch.tensor([2.0, 0.5, 4.0])
    moved = model(x * scale + shift)
    expected = model(x) * scale[[2, 0]] + shift[[2, 0]]
    torch.testing.assert_close(moved, expected, rtol=1e-4, atol=1e-4)

    plain = lstm(n_features=3, n_targets=2, horizon=5, hidden_dim=8, instance_norm=False).eval()
    assert not torch.allclose(plain(x + shift), plain(x) + shift[[2, 0]], atol=1e-2)


def test_instance_norm_is_the_default_and_needs_the_targets_among_the_inputs(make_cfg):
    assert LSTMConfig().instance_norm
    with pytest.raises(ConfigError, match=r"^model\.instance_norm: .*set data\.include_target_in_inputs=true, or "
                                          r"model\.instance_norm=false$"):
        lstm(n_features=3, n_targets=1, instance_norm=True, target_index=None)
    cfg = make_cfg("data.include_target_in_inputs=false", "data.generator.length=200")
    with pytest.raises(ConfigError, match=r"^model\.instance_norm: "):
        build_model(cfg.model, build_bundle(cfg.data).spec)


def test_channel_independent_forecasts_each_target_from_its_own_past_with_shared_weights():
    torch.manual_seed(0)
    model = lstm(n_features=4, n_targets=3, horizon=5, hidden_dim=8, channel_independent=True,
                           target_index=[0, 1, 3]).eval()
    x = torch.randn(2, 16, 4)
    out = model(x)
    assert out.shape == (2, 5, 3)

    disturbed = x.clone()
    disturbed[:, :, 1] += torch.randn(2, 16)  # target 1's own past
    disturbed[:, :, 2] += 100.0  # an input that is not a target
    changed = model(disturbed)
    torch.testing.assert_close(changed[:, :, [0, 2]], out[:, :, [0, 2]])
    assert not torch.allclose(changed[:, :, 1], out[:, :, 1])

    swapped = model(x[:, :, [3, 1, 2, 0]])  # targets 0 and 2 trade places: so do their forecasts
    torch.testing.assert_close(swapped, out[:, :, [2, 1, 0]])


def test_channel_independence_needs_the_targets_among_the_inputs():
    with pytest.raises(ConfigError, match=r"channel_independent.*data\.include_target_in_inputs=true"):
        lstm(n_features=3, n_targets=1, channel_independent=True, target_index=None)
