"""Schemas of `conf/predict.yaml` and `conf/serve.yaml`: the entry configs of predict.py and serve.py.

Each is the top level of its config, so its `validate` names keys from the top (`prefix` is empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dl_core.errors import require

RUN_DIR_HINT = "is required: pass run_dir=outputs/train/runs/<timestamp>"
UnseenPolicy = Literal["encode", "refuse"]


@dataclass
class PredictDataConfig:
    """The rows to predict on.

    Attributes:
        path: CSV or parquet file with the run's input columns.
    """

    path: str | None = None


@dataclass
class PredictConfig:
    """predict.py: a trained run directory and a file of new rows.

    Attributes:
        run_dir: the trained run (its checkpoints/best.ckpt is used).
        data: the rows to predict on (see `data.path`).
        output: where to write predictions, a .csv or .parquet file (inside a run directory only under its
            `predictions/`); null writes `<run_dir>/predictions/<file stem>-<8 hex digits of the file's absolute
            path>.csv`, one file per input file.
        id_columns: columns of `data.path` copied, as written there, to the front of each prediction row from
            the input row it predicts (for a forecast: the row of its target; empty beyond a series' last
            row), e.g. id_columns=[order_id].
        evaluate: also score the predictions against the file's target column(s) with the run's own metrics
            (metrics.json's, named without the split: `rmse`, `accuracy`, ...), written beside the predictions
            as `<output stem>.metrics.json`; a file without the target column(s) is refused.
        threads: CPU threads for torch; null keeps torch's default.
        unseen_categories: a category no training row had is read as unknown (the index a missing category
            gets); `encode` predicts and logs one warning line per such column, with its count of rows and a
            few of the values (`'ROME' (training has 'rome')` for a near miss); `refuse` refuses the file in
            one line naming the columns and values.
    """

    run_dir: str | None = None
    data: PredictDataConfig = field(default_factory=PredictDataConfig)
    output: str | None = None
    id_columns: list[str] = field(default_factory=list)
    evaluate: bool = False
    threads: int | None = None
    unseen_categories: UnseenPolicy = "encode"

    def validate(self, prefix: str) -> None:
        require(bool(self.run_dir), "run_dir", RUN_DIR_HINT)
        require(bool(self.data.path), "data.path", "is required: pass data.path=/path/to/new_rows.csv")
        require(self.threads is None or self.threads >= 1, "threads", f"must be >= 1 or null (got {self.threads})")


@dataclass
class ServeConfig:
    """serve.py: a trained run directory behind an HTTP address.

    Attributes:
        run_dir: the trained run (its checkpoints/best.ckpt is used).
        host: address to listen on; 0.0.0.0 listens on every interface.
        port: port to listen on.
        max_rows: most rows accepted in one request; larger requests get 422.
        threads: CPU threads for torch; null keeps torch's default.
        unseen_categories: a category no training row had is read as unknown (the index a missing category
            gets); `encode` predicts and lists each such column in the response's `warnings`, with its count
            of rows and a few of the values; `refuse` answers 422 naming the columns and values.
    """

    run_dir: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_rows: int = 10000
    threads: int | None = None
    unseen_categories: UnseenPolicy = "encode"

    def validate(self, prefix: str) -> None:
        require(bool(self.run_dir), "run_dir", RUN_DIR_HINT)
        require(0 <= self.port <= 65535, "port", f"must be in 0..65535 (got {self.port}), e.g. port=8000")
        require(self.max_rows >= 1, "max_rows", f"must be >= 1 (got {self.max_rows})")
        require(self.threads is None or self.threads >= 1, "threads", f"must be >= 1 or null (got {self.threads})")


SCHEMAS = {"predict_schema": PredictConfig, "serve_schema": ServeConfig}
