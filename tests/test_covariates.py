"""Known-future and static covariates: derived and encoded on the training rows, gathered by index beside the
windows, refused by name when wrong, declared by the models, and read by the LSTM's encoder and decoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import dl_core
from dl_core.data import build_bundle
from dl_core.data.covariates import CovariateEncoder
from dl_core.data.synthetic import generate_series
from dl_core.errors import ConfigError, DataError
from dl_core.models.lstm import LSTMConfig, LSTMForecaster
from dl_core.runs.pipeline import train

COVARIATES = ["data=synthetic_covariates", "data.generator.length=300", "data.generator.n_series=3",
              "data.sequence_length=12", "data.horizon=4"]


def test_calendar_features_are_the_sine_and_cosine_of_their_cycle():
    rows = pd.DataFrame({"time": pd.to_datetime(["2024-03-02 06:00", "2024-03-04 18:00"])})  # Sat 6h, Mon 18h
    values = CovariateEncoder([], ["hour", "dayofweek"], [], "time").future_values(rows)
    hour, day = 2 * np.pi * np.array([6, 18]) / 24, 2 * np.pi * np.array([5, 0]) / 7
    np.testing.assert_allclose(values, np.stack([np.sin(hour), np.cos(hour), np.sin(day), np.cos(day)], 1), atol=1e-6)


def test_future_covariates_are_gathered_by_index_over_look_back_and_horizon(make_cfg):
    """Windows stay views: one (rows x n_future) tensor, and each window's slice is its own rows' values."""
    cfg = make_cfg(*COVARIATES)
    bundle = build_bundle(cfg.data)
    raw = generate_series(3, 300, 2, 0.3, 0, calendar_effect=2.0, event_effect=3.0, static_effect=2.0)
    assert bundle.spec["n_future"] == 1 + 2 * 2 and bundle.spec["n_static"] == 0
    regions = sorted(raw.groupby("series_id")["region"].first().unique())
    assert bundle.spec["static_cardinalities"] == [len(regions) + 1]
    split = bundle.splits["test"]
    assert split.covariates.future.shape == (len(raw), 5)  # rows, not windows x steps
    idx = torch.arange(len(split))
    _, future, static, codes = split.inputs(idx)
    assert future.shape == (len(split), 12 + 4, 5) and static is None and codes.shape == (len(split), 1)
    event = bundle.preprocessor.covariates.future_scaler
    for i in (0, len(split) - 1):
        start = int(split.starts[i])
        rows = raw.iloc[start:start + 16]  # one series' rows are contiguous and sorted in the raw frame
        np.testing.assert_allclose(future[i, :, 0].numpy() * event.scale_[0] + event.mean_[0], rows["event"], atol=1e-5)
        hours = 2 * np.pi * rows["timestamp"].dt.hour.to_numpy() / 24
        np.testing.assert_allclose(future[i, :, 1].numpy(), np.sin(hours), atol=1e-5)
        assert int(codes[i, 0]) == regions.index(rows["region"].iloc[0]) + 1


def test_a_static_column_that_varies_within_a_series_is_refused_by_name(make_cfg, tmp_path):
    frame = generate_series(2, 100, 1, 0.3, 0).assign(store=lambda f: np.where(f.index % 50 == 0, "big", "small"))
    path = tmp_path / "series.csv"
    frame.to_csv(path, index=False)
    cfg = make_cfg("data=csv_timeseries", f"data.path={path}", "data.target_column=target",
                   "data.timestamp_column=timestamp", "data.entity_columns=[series_id]", "data.static_columns=[store]",
                   "data.sequence_length=8")
    with pytest.raises(DataError, match=r"data.static_columns: column 'store' varies within series 's0' "
                                        r"\('big', 'small'\)"):
        build_bundle(cfg.data)


@pytest.mark.parametrize(("overrides", "message"), [
    (["data.future_covariates=[target]"], "data.future_covariates: 'target' is also in data.target_column"),
    (["data.future_covariates=[event]", "data.static_columns=[event]"],
     "data.static_columns: 'event' is also in data.future_covariates"),
    (["data.timestamp_column=null", "data.calendar_features=[hour]"],
     "data.calendar_features: derive from dates, so set data.timestamp_column"),
    (["data.entity_columns=[]", "data.static_columns=[region]"], "data.static_columns: are constants of each series"),
])
def test_a_covariate_setting_that_cannot_work_is_refused_by_key(make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        dl_core.run(make_cfg("hardware=cpu", *overrides))


@pytest.mark.parametrize(("model", "overrides", "kind"), [
    ("dlinear", ["data.future_covariates=[event]"], "known-future"),
    ("naive", ["data.calendar_features=[hour]"], "known-future"),
    ("dlinear", ["data.static_columns=[region]"], "static"),
    ("patchtst", ["data.calendar_features=[hour]"], "known-future"),
    ("patchtst", ["data.static_columns=[region]"], "static"),
])
def test_a_model_asked_for_covariates_it_does_not_take_refuses_naming_itself_and_the_kind(make_cfg, model, overrides,
                                                                                          kind):
    cfg = make_cfg("data=synthetic_covariates", "data.future_covariates=[]", "data.calendar_features=[]",
                   "data.static_columns=[]", f"model={model}", "hardware=cpu", *overrides)
    with pytest.raises(ConfigError) as caught:
        train(cfg)
    message = str(caught.value)
    class_name = {"dlinear": "DLinear", "naive": "NaiveForecaster", "patchtst": "PatchTST"}[model]
    assert message.startswith(f"model={class_name} does not take {kind} covariates") and "\n" not in message


def covariate_lstm(**settings) -> LSTMForecaster:
    hyper = {k: v for k, v in vars(LSTMConfig(hidden_dim=8, num_layers=1, dropout=0.0, **settings)).items()
             if k != "_target_"}
    return LSTMForecaster(3, 1, 4, [2], n_future=2, n_static=1, static_cardinalities=[3], **hyper).eval()


def test_the_decoder_reads_each_horizon_steps_covariates_in_time_order():
    """A known-future value at horizon step 3 moves the forecast from step 3 on, never before it."""
    torch.manual_seed(0)
    model = covariate_lstm()
    x, future = torch.randn(2, 10, 3), torch.randn(2, 14, 2)
    static, codes = torch.randn(2, 1), torch.tensor([[1], [2]])
    base = model(x, future, static, codes)
    changed = future.clone()
    changed[:, 10 + 2] += 3.0
    moved = model(x, changed, static, codes)
    torch.testing.assert_close(moved[:, :2], base[:, :2])
    assert not torch.allclose(moved[:, 2:], base[:, 2:])
    assert not torch.allclose(model(x, future, static + 1.0, codes), base)
    assert not torch.allclose(model(x, future, static, torch.tensor([[0], [0]])), base)


def test_a_bidirectional_encoder_cannot_start_the_decoder():
    with pytest.raises(ConfigError, match=r"model\.bidirectional: the decoder over future covariates"):
        covariate_lstm(bidirectional=True)


def test_static_columns_are_scaled_or_indexed_on_the_training_series_and_a_new_category_gets_its_own_index():
    train_rows = pd.DataFrame({"size": [2.0, 2.0, 4.0, 4.0], "kind": ["b", "b", "a", "a"]})
    encoder = CovariateEncoder([], [], ["size", "kind"], None).fit(train_rows, np.array(["s0", "s0", "s1", "s1"]))
    assert encoder.spec() == {"n_future": 0, "n_static": 1, "static_cardinalities": [3]}
    new = pd.DataFrame({"size": [2.0, 6.0, 6.0], "kind": ["a", "c", "c"]})
    covariates = encoder.tensors(new, np.array([0, 1, 3]))
    np.testing.assert_allclose(covariates.static.numpy().ravel(), [-1.0, 3.0])  # (x - 3) / 1
    assert covariates.codes.numpy().ravel().tolist() == [1, 0]  # "a" is the first known; "c" was never seen
    np.testing.assert_array_equal(covariates.entity.numpy(), [0, 1, 1])


def test_a_static_category_no_training_series_had_is_found_with_its_near_miss():
    """`"store_type": "huge"` was embedded as UNSEEN without a word; predict.py and the server now say so."""
    train_rows = pd.DataFrame({"size": [2.0, 2.0, 4.0, 4.0], "kind": ["big", "big", "small", "small"]})
    encoder = CovariateEncoder([], [], ["size", "kind"], None).fit(train_rows, np.array(["s0", "s0", "s1", "s1"]))
    new = pd.DataFrame({"size": [2.0] * 5, "kind": ["small", "huge", "huge", "Big", "big"]})
    (unseen,) = encoder.unseen(new)
    assert (unseen.column, unseen.rows, unseen.values, unseen.similar, unseen.first) == (
        "kind", 3, ["huge", "Big"], {"Big": "big"}, 1)
    assert encoder.unseen(train_rows) == []
