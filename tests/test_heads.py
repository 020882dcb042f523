"""The shared output heads: one module gives the LSTM, DLinear and PatchTST point, quantile or distribution outputs,
instance normalisation rescales each kind right, the deep table models output a quantile per level (and their
point outputs as before), and the settings are checked by key."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import dl_core
from dl_core.data import build_bundle
from dl_core.errors import ConfigError
from dl_core.models.build import build_model
from dl_core.models.dlinear import DLinear, DLinearConfig
from dl_core.models.ft_transformer import FTTransformerConfig
from dl_core.models.heads import ForecastHead, ForecastOutputConfig, output_kind
from dl_core.models.lstm import LSTMConfig, LSTMForecaster
from dl_core.models.mlp import MLPConfig
from dl_core.models.outputs import POINT, NormalOutput, QuantileOutput, StudentTOutput
from dl_core.models.patchtst import PatchTST, PatchTSTConfig
from dl_core.models.resnet import ResNetConfig
from dl_core.models.tabr import TabRConfig
from helpers import TINY_TABULAR

KINDS = {"point": {}, "quantiles": {"quantiles": [0.9, 0.1, 0.5]}, "normal": {"distribution": "normal"},
         "student_t": {"distribution": "student_t", "quantiles": [0.05, 0.5, 0.95]}}


def lstm(n_features: int, n_targets: int, horizon: int, target_index: list[int] | None = None,
         **settings) -> LSTMForecaster:
    hyper = {k: v for k, v in vars(LSTMConfig(hidden_dim=8, **settings)).items() if k != "_target_"}
    return LSTMForecaster(n_features, n_targets, horizon, target_index, **hyper)


def dlinear(**settings) -> DLinear:
    hyper = {k: v for k, v in vars(DLinearConfig(kernel_size=5, **settings)).items() if k != "_target_"}
    return DLinear(sequence_length=16, horizon=4, n_features=3, target_index=[2, 0], **hyper)


def patchtst(**settings) -> PatchTST:
    hyper = {k: v for k, v in vars(PatchTSTConfig(patch_length=4, stride=4, d_model=8, n_heads=2, n_layers=1,
                                                  d_ff=16, **settings)).items() if k != "_target_"}
    return PatchTST(sequence_length=16, horizon=4, target_index=[2, 0], **hyper)


def test_the_settings_choose_the_kind():
    assert output_kind(None, None) is POINT
    quantiles = output_kind([0.9, 0.1, 0.5], None)
    assert isinstance(quantiles, QuantileOutput) and quantiles.levels == (0.1, 0.5, 0.9)
    normal = output_kind(None, "normal")
    assert isinstance(normal, NormalOutput) and normal.levels == (0.1, 0.5, 0.9)
    assert output_kind([0.05, 0.5, 0.95], "student_t").levels == (0.05, 0.5, 0.95)


@pytest.mark.parametrize(("levels", "message"), [
    ([0.1, 0.9], "must include 0.5"),
    ([0.0, 0.5], "strictly between 0 and 1"),
    ([0.5, 0.5], "lists a level twice"),
    ([0.9, 0.1, 0.5], "levels must be ascending"),
])
@pytest.mark.parametrize("schema", [ForecastOutputConfig, MLPConfig, ResNetConfig, FTTransformerConfig, TabRConfig])
def test_quantile_levels_are_checked_by_key(levels, message, schema):
    """Forecasters and table models check `quantiles` alike: a level the run would report otherwise than as
    written (sorted, deduplicated) is refused, not guessed."""
    with pytest.raises(ConfigError, match=rf"model.quantiles: .*{message}"):
        schema(quantiles=levels).validate("model")


def test_a_point_head_is_the_linear_layer_it_replaces():
    """Point models keep their parameters (`head.weight`, `head.bias`) and their outputs."""
    torch.manual_seed(0)
    head = ForecastHead(6, 4, 2, POINT)
    torch.manual_seed(0)
    linear = nn.Linear(6, 8)
    features = torch.randn(3, 6)
    torch.testing.assert_close(head(features), linear(features).view(3, 4, 2))
    assert set(head.state_dict()) == {"weight", "bias"}


@pytest.mark.parametrize("name", list(KINDS))
@pytest.mark.parametrize("build", ["lstm", "lstm_ci", "dlinear", "patchtst"])
def test_every_model_outputs_the_kind_its_head_declares(name, build):
    torch.manual_seed(0)
    settings = KINDS[name]
    model = {"lstm": lambda: lstm(3, 2, 4, [2, 0], **settings),
             "lstm_ci": lambda: lstm(3, 2, 4, [2, 0], channel_independent=True, **settings),
             "dlinear": lambda: dlinear(**settings),
             "patchtst": lambda: patchtst(**settings)}[build]()
    out = model(torch.randn(5, 16, 3))
    kind = model.output_kind
    assert out.shape == ((5, 4, 2) if kind.is_point else (5, 4, 2, kind.n_params))
    assert torch.isfinite(kind.loss(out, torch.randn(5, 4, 2)))
    if isinstance(kind, NormalOutput | StudentTOutput):
        assert (out[..., 1] > 0).all()


@pytest.mark.parametrize("name", ["quantiles", "normal", "student_t"])
@pytest.mark.parametrize("build", ["lstm", "patchtst"])
def test_instance_norm_moves_every_kind_with_the_window(name, build):
    """With RevIN, a window moved to another level and scale gets the same forecast distribution, moved
    alike: every quantile shifts and stretches; a distribution's scale stretches and its shape stays."""
    torch.manual_seed(0)
    model = {"lstm": lambda: lstm(3, 2, 5, [2, 0], instance_norm=True, **KINDS[name]),
             "patchtst": lambda: patchtst(**KINDS[name])}[build]().eval()
    x = torch.randn(4, 16, 3)
    shift, scale = torch.tensor([10.0, -3.0, 50.0]), torch.tensor([2.0, 0.5, 4.0])
    kind = model.output_kind
    moved = kind.quantiles(model(x * scale + shift).detach().numpy())
    stretch, move = scale[[2, 0]].numpy()[:, None], shift[[2, 0]].numpy()[:, None]
    expected = kind.quantiles(model(x).detach().numpy()) * stretch + move
    torch.testing.assert_close(torch.from_numpy(moved), torch.from_numpy(expected), rtol=1e-4, atol=1e-3)


# Each table model that predicts quantiles, and the name of its last linear layer in its state dict.
TABLE_HEADS = {"mlp": "backbone.output", "resnet": "backbone.output.linear", "ft_transformer": "backbone.output.linear",
               "tabr": "head.2"}


@pytest.mark.parametrize("model", list(TABLE_HEADS))
def test_a_table_model_outputs_a_quantile_per_level_and_its_point_outputs_as_before(model, tmp_path):
    """With `quantiles` the last layer outputs one value per level, (batch, 1, levels); without, the model is the
    one it was: the same parameters under the same names (a checkpoint from before loads) and (batch, 1) outputs
    that are exactly that layer's."""
    overrides = [f"model={model}", *(o for o in TINY_TABULAR if not o.startswith("model"))]
    cfg = dl_core.compose(*overrides, run_dir=tmp_path)
    bundle = build_bundle(cfg.data)
    x = bundle.splits["val"].inputs(torch.arange(5))
    torch.manual_seed(0)
    point = build_model(cfg.model, bundle.spec).eval()
    quantiles = build_model(dl_core.compose(*overrides, "model.quantiles=[0.1,0.5,0.9]", run_dir=tmp_path).model,
                            bundle.spec).eval()
    layers = {name: dict(net.named_modules())[TABLE_HEADS[model]] for name, net in [("point", point),
                                                                                     ("quantiles", quantiles)]}
    assert layers["point"].out_features == 1 and layers["quantiles"].out_features == 3
    assert set(point.state_dict()) == set(quantiles.state_dict())
    assert point.output_kind is POINT and quantiles.output_kind.levels == (0.1, 0.5, 0.9)
    seen = {}
    for name, layer in layers.items():
        layer.register_forward_hook(lambda _, __, out, name=name: seen.__setitem__(name, out))
    assert point(*x).shape == (5, 1) and quantiles(*x).shape == (5, 1, 3)
    torch.testing.assert_close(point(*x), seen["point"], rtol=0, atol=0)  # the last layer's values, as they are
    torch.testing.assert_close(quantiles(*x), seen["quantiles"][:, None, :], rtol=0, atol=0)
