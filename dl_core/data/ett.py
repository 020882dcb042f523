"""The ETT benchmark files (Zhou et al., Informer, AAAI 2021): local file or cached, checksummed download.

The literature's feature modes decide which columns go in and which come out, so they are turned
into the generic `target_column`/`feature_columns` of a time-series config here; the windowing,
the split and the scaling are then the generic time-series ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from dl_core.checks import one_line
from dl_core.data.loading import read_table
from dl_core.data.timeseries import TimeSeriesDataConfig
from dl_core.errors import DataError, require

log = logging.getLogger(__name__)

URL = "https://raw.githubusercontent.com/zhouhaoyi/ETDataset/main/ETT-small/{name}.csv"
# SHA-256 of the published files; the ETTm ones are not pinned here, pass data.sha256 to check them.
SHA256 = {
    "ETTh1": "f18de3ad269cef59bb07b5438d79bb3042d3be49bdeecf01c1cd6d29695ee066",
    "ETTh2": "a3dc2c597b9218c7ce1cd55eb77b283fd459a1d09d753063f944967dd6b9218b",
}


def load_ett(cfg: Any) -> pd.DataFrame:
    """The raw ETT frame: `data.path` if given, else the cached (or freshly downloaded) file."""
    if cfg.path is not None:
        return read_table(cfg.path)
    expected = cfg.sha256 or SHA256.get(cfg.name)
    file = Path(cfg.cache_dir).expanduser() / f"{cfg.name}.csv"
    if not file.is_file():
        download(URL.format(name=cfg.name), file)
    verify_checksum(file, expected)
    return read_table(file, key="data.cache_dir")


def download(url: str, file: Path) -> None:
    """Fetch into a temp file beside the target, then rename: an interrupted download leaves no file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(f".{file.name}.{os.getpid()}.part")
    log.info("downloading %s -> %s", url, file)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as handle:
            handle.write(response.read())
        os.replace(tmp, file)
    except OSError as exc:
        raise DataError(f"data.path: could not download {url} ({one_line(exc)}); download it yourself and pass "
                        f"data.path=/path/to/{file.name}") from None
    finally:
        tmp.unlink(missing_ok=True)


def verify_checksum(file: Path, expected: str | None) -> None:
    """Refuse a cached file whose bytes differ from the published ones (a torn or altered download)."""
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    if expected is None:
        log.warning("%s: no checksum known (sha256 %s); pass data.sha256 to pin it", file, digest)
        return
    if digest != expected:
        raise DataError(f"data.sha256: {file} has sha256 {digest}, expected {expected}; delete the file "
                        f"to download it again, or pass data.path to use a local copy as it is")


def with_mode_columns(cfg: DictConfig, frame: pd.DataFrame) -> DictConfig:
    """A copy of the data config whose targets and inputs follow `features` (M, S or MS)."""
    channels = [c for c in frame.columns if c != cfg.timestamp_column]
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(out):
        out.include_target_in_inputs = True
        if cfg.features == "M":
            out.target_column, out.feature_columns = channels, []
        elif cfg.features == "S":
            out.feature_columns = []
        else:
            out.feature_columns = None
    return out


@dataclass
class ETTDataConfig(TimeSeriesDataConfig):
    """The ETT benchmark: `features` picks the literature's mode (M: all channels in and out,
    S: `target_column` only, MS: all channels in, `target_column` out); without `path` the file
    is downloaded into `cache_dir` and checked against its SHA-256.

    Attributes:
        source: `ett`: the file is read (or downloaded) by the ETT loader.
        name: ETTh1, ETTh2 (hourly) or ETTm1, ETTm2 (15 minutes).
        features: M (all 7 channels in and out), S (`target_column` only) or MS (all in, target out).
        cache_dir: where a downloaded file is kept (used when `path` is null).
        sha256: expected checksum of the file; null uses the pinned one for ETTh1/ETTh2.
    """

    source: Literal["ett"] = "ett"
    name: Literal["ETTh1", "ETTh2", "ETTm1", "ETTm2"] = "ETTh1"
    timestamp_column: str | None = "date"
    target_column: Any = "OT"
    features: Literal["M", "S", "MS"] = "M"
    cache_dir: str | None = None
    sha256: str | None = None

    def validate(self, prefix: str) -> None:
        super().validate(prefix)
        require(self.path is not None or self.cache_dir is not None, f"{prefix}.cache_dir",
                f"is needed to download {self.name} when {prefix}.path is null")
