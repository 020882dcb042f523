"""The ETT protocol on the real ETTh1 file: split borders, look-back into earlier rows, train-only scaling."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.errors import ConfigCompositionException

from dl_core.data import build_bundle
from dl_core.errors import ConfigError, DataError
from dl_core.runs.cli import composition_error
from dl_core.runs.config import validate
from helpers import DATA

ETTH1 = DATA / "ETTh1.csv"
CHANNELS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
L, H = 336, 96


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(ETTH1)


def test_standard_split_sizes_and_borders(make_cfg, raw):
    bundle = build_bundle(make_cfg("data=ett", f"data.path={ETTH1}").data)
    splits = bundle.splits
    # Informer/DLinear borders: train targets [0, 8640), val [8640, 11520), test [11520, 14400).
    assert len(splits["train"]) == 8640 - L - H + 1 == 8209
    assert len(splits["val"]) == len(splits["test"]) == 2880 - H + 1 == 2785
    assert splits["val"].starts[0].item() == 8640 - L
    assert splits["test"].starts[0].item() == 8640 + 2880 - L
    assert splits["train"].target_rows().max() == 8639
    assert splits["val"].target_rows().min() == 8640 and splits["val"].target_rows().max() == 11519
    assert splits["test"].target_rows().min() == 11520 and splits["test"].target_rows().max() == 14399
    assert bundle.spec["n_features"] == bundle.spec["n_targets"] == 7


def test_scaler_fit_on_the_twelve_training_months_only(make_cfg, raw):
    bundle = build_bundle(make_cfg("data=ett", f"data.path={ETTH1}").data)
    train_rows = raw[CHANNELS].to_numpy()[:8640]
    scaler = bundle.task.target_scaler
    np.testing.assert_allclose(scaler.mean_, train_rows.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(scaler.scale_, train_rows.std(axis=0), rtol=1e-10)
    # The first validation window looks back at the 336 training rows just before month 13.
    inputs, target = bundle.splits["val"].batch(np.array([0]))
    expected = (raw[CHANNELS].to_numpy()[8640 - L:8640] - scaler.mean_) / scaler.scale_
    np.testing.assert_allclose(inputs[0][0].numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(target[0, 0].numpy(), (raw[CHANNELS].to_numpy()[8640] - scaler.mean_) / scaler.scale_,
                               rtol=1e-5, atol=1e-5)


def test_univariate_and_ms_modes(make_cfg):
    single = build_bundle(make_cfg("data=ett", f"data.path={ETTH1}", "data.features=S").data)
    assert single.preprocessor.feature_columns == single.preprocessor.target_columns == ["OT"]
    mixed = build_bundle(make_cfg("data=ett", f"data.path={ETTH1}", "data.features=MS").data)
    assert mixed.preprocessor.target_columns == ["OT"] and mixed.spec["n_features"] == 7
    assert mixed.spec["target_index"] == [6]


def test_cached_file_is_checked_against_the_published_sha256(make_cfg, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copy(ETTH1, cache / "ETTh1.csv")
    cfg = make_cfg("data=ett", "data.path=null", f"data.cache_dir={cache}")
    assert build_bundle(cfg.data).splits["train"].x.shape[0] == 17420  # every row of the cached file
    with open(cache / "ETTh1.csv", "a") as handle:
        handle.write("2018-06-26 20:00:00,1,1,1,1,1,1,1\n")
    with pytest.raises(DataError, match=r"data\.sha256: .* has sha256"):
        build_bundle(cfg.data)
    pinned = hashlib.sha256((cache / "ETTh1.csv").read_bytes()).hexdigest()
    assert build_bundle(make_cfg("data=ett", "data.path=null", f"data.cache_dir={cache}",
                                 f"data.sha256={pinned}").data)


def test_row_split_needs_all_counts_and_enough_rows(make_cfg):
    with pytest.raises(ConfigError, match=r"data\.split\.train_rows/val_rows/test_rows"):
        validate(make_cfg("data=ett", f"data.path={ETTH1}", "data.split.test_rows=null"))
    with pytest.raises(DataError, match="train_rows \\+ val_rows \\+ test_rows = 20000"):
        build_bundle(make_cfg("data=ett", f"data.path={ETTH1}", "data.split.train_rows=14240").data)
    with pytest.raises(ConfigCompositionException) as err:
        make_cfg("data=ett", "data.name=ETTh3")
    assert composition_error(err.value).startswith("data.name: Invalid value 'ETTh3', expected one of ['ETTh1',")


def test_fifteen_minute_files_use_the_same_months(make_cfg):
    cfg = make_cfg("data=ettm")
    assert cfg.data.name == "ETTm1"
    assert (cfg.data.split.train_rows, cfg.data.split.val_rows, cfg.data.split.test_rows) == (34560, 11520, 11520)


def test_shipped_files_match_the_checksums_in_data_readme_and_the_loader():
    """The repository's data/ holds the published bytes: the README, the loader's pins and the files agree."""
    from dl_core.data.ett import SHA256

    readme = (DATA / "README.md").read_text()
    for name in ("ETTh1.csv", "ETTh2.csv", "california_housing.csv"):
        digest = hashlib.sha256((DATA / name).read_bytes()).hexdigest()
        assert f"`{name}`" in readme and digest in readme, name
    assert SHA256["ETTh1"] == hashlib.sha256(ETTH1.read_bytes()).hexdigest()
    assert SHA256["ETTh2"] == hashlib.sha256((DATA / "ETTh2.csv").read_bytes()).hexdigest()


def test_presets_read_the_repository_data_and_nothing_beside_it(make_cfg):
    for overrides in (["data=ett"], ["experiment=ett_dlinear", "data.name=ETTh2"], ["experiment=ett_lstm"],
                      ["experiment=california_ft_transformer"]):
        path = Path(make_cfg(*overrides).data.path).resolve()
        assert path.is_file() and path.parent == DATA.resolve(), overrides


@contextmanager
def http_files(directory: Path) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving `directory`; yields its base URL."""
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_fifteen_minute_file_downloads_once_with_its_checksum(make_cfg, tmp_path, monkeypatch):
    """data=ettm is not shipped: it downloads into the cache, is checked, and is read from the cache next time."""
    import dl_core.data.ett as ett

    published = tmp_path / "published"
    published.mkdir()
    raw = pd.read_csv(ETTH1).head(400)
    raw.to_csv(published / "ETTm1.csv", index=False)
    digest = hashlib.sha256((published / "ETTm1.csv").read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    with http_files(published) as base:
        monkeypatch.setattr(ett, "URL", base + "/{name}.csv")
        cfg = make_cfg("data=ettm", f"data.cache_dir={cache}", f"data.sha256={digest}")
        assert cfg.data.path is None
        assert len(ett.load_ett(cfg.data)) == 400
    assert (cache / "ETTm1.csv").read_bytes() == (published / "ETTm1.csv").read_bytes()
    assert len(ett.load_ett(cfg.data)) == 400  # the server is gone: read from the cache


def test_offline_download_names_the_url_and_the_local_path_fix(make_cfg, tmp_path, monkeypatch):
    import dl_core.data.ett as ett

    with socket.socket() as probe:  # a port nothing listens on: the connection is refused at once
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/{{name}}.csv"
    monkeypatch.setattr(ett, "URL", url)
    cfg = make_cfg("data=ettm", f"data.cache_dir={tmp_path / 'cache'}")
    with pytest.raises(DataError, match=r"could not download http://127\.0\.0\.1:\d+/ETTm1\.csv .*data\.path="):
        ett.load_ett(cfg.data)
    local = tmp_path / "ETTm1.csv"
    pd.read_csv(ETTH1).head(300).to_csv(local, index=False)
    assert len(ett.load_ett(make_cfg("data=ettm", f"data.path={local}").data)) == 300
