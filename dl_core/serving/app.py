"""The HTTP service of a loaded run: GET /health, GET /metadata, POST /predict (OpenAPI docs at /docs).

Request rows are validated by the run's own row model, so a wrong type or a missing column is a
422 naming the field before any work is done; checks that need the whole request (history per
series) raise `InputError`, answered as a 422 of the same shape. The app holds no state besides
the run, so one bad request never affects the next.

No `from __future__ import annotations` here: FastAPI reads the request model from the real
annotation of a function defined at runtime.
"""

import math
from typing import Any

import pandas as pd

from dl_core.serving.inputs import InputError
from dl_core.serving.load import LoadedRun


def create_app(run: LoadedRun, max_rows: int = 10_000):
    """A FastAPI app predicting with `run`; requests may carry 1..max_rows rows."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, Field, create_model

    row_model = run.schema.row_model
    predict_request = create_model(
        "PredictRequest",
        rows=(list[row_model], Field(min_length=1, max_length=max_rows,
                                     description="feature rows (tabular) or history rows per series (time series)")),
    )

    class PredictResponse(BaseModel):
        predictions: list[dict[str, Any]]

    app = FastAPI(title="dl_core prediction service", version="1",
                  description=f"{run.task} model from {run.run_dir}")

    @app.exception_handler(InputError)
    def invalid_rows(_: Request, err: InputError) -> JSONResponse:
        detail = [{"loc": ["body", "rows", *err.loc], "msg": err.reason, "type": "value_error"}]
        return JSONResponse(status_code=422, content={"detail": detail})

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return run.metadata()

    def predict(request: predict_request) -> PredictResponse:
        frame = run.predict_checked(run.schema.frame(request.rows))
        return PredictResponse(predictions=records(frame))

    app.post("/predict", response_model=PredictResponse)(predict)
    return app


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: timestamps as ISO strings, missing values as null, floats exact."""
    columns = {name: (col.map(pd.Timestamp.isoformat) if pd.api.types.is_datetime64_any_dtype(col) else col)
               for name, col in frame.items()}
    out = pd.DataFrame(columns).astype(object).to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in out]


def serve(cfg: Any) -> None:
    """Load `cfg.run_dir` and serve it with uvicorn until interrupted (what `serve.py` runs)."""
    import torch
    import uvicorn
    from omegaconf import OmegaConf

    from dl_core.serving.load import load_run

    OmegaConf.to_object(cfg).validate()
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    uvicorn.run(create_app(load_run(cfg.run_dir), cfg.max_rows), host=cfg.host, port=cfg.port)
