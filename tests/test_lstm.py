"""The LSTM forecaster: direct multi-step, multi-target outputs, and instance normalisation."""

from __future__ import annotations

import pytest
import torch

from dl_core.errors import ConfigError
from dl_core.models.lstm import LSTMForecaster


@pytest.mark.parametrize("bidirectional", [False, True])
def test_outputs_every_step_of_every_target(bidirectional):
    torch.manual_seed(0)
    model = LSTMForecaster(n_features=5, n_targets=3, horizon=4, hidden_dim=8, bidirectional=bidirectional)
    assert model(torch.randn(6, 20, 5)).shape == (6, 4, 3)


def test_instance_norm_follows_a_shift_and_scale_of_the_window():
    """With RevIN, a window moved to another level and scale gets the same forecast, moved alike."""
    torch.manual_seed(0)
    model = LSTMForecaster(n_features=3, n_targets=2, horizon=5, hidden_dim=8, instance_norm=True,
                           target_index=[2, 0]).eval()
    x = torch.randn(4, 16, 3)
    shift, scale = torch.tensor([10.0, -3.0, 50.0]), torch.tensor([2.0, 0.5, 4.0])
    moved = model(x * scale + shift)
    expected = model(x) * scale[[2, 0]] + shift[[2, 0]]
    torch.testing.assert_close(moved, expected, rtol=1e-4, atol=1e-4)

    plain = LSTMForecaster(n_features=3, n_targets=2, horizon=5, hidden_dim=8).eval()
    assert not torch.allclose(plain(x + shift), plain(x) + shift[[2, 0]], atol=1e-2)


def test_instance_norm_needs_the_targets_among_the_inputs():
    with pytest.raises(ConfigError, match="data.include_target_in_inputs=true"):
        LSTMForecaster(n_features=3, n_targets=1, instance_norm=True, target_index=None)
