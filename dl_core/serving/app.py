"""The HTTP service of a loaded run: GET /health, GET /metadata, POST /predict (OpenAPI docs at /docs).

Request rows are validated by the run's own row model, so a wrong type, a non-finite number or a
missing column is a 422 naming the field before any work is done; checks that need the whole
request (history per series) raise `InputError`, answered as a 422 of the same shape, as is a body
that cannot be read as JSON (not UTF-8, nested past the parser's limit, an integer past Python's
digit limit, bad syntax). A 200 body is `{"predictions": [...], "warnings": [...]}`: a warning names
a column whose categories no training row had (read as unknown; `unseen_categories=refuse` makes
it a 422 instead), so a prediction the client cannot trust as usual never comes silently. A 422 body
never echoes the request (only loc, msg and type of at most `MAX_ERRORS` errors), so it stays
small and is always strict JSON. The app holds no state besides the run, so one bad request never
affects the next, and a bug answers a JSON 500 without closing the client's connection.

No `from __future__ import annotations` here: FastAPI reads the request model from the real
annotation of a function defined at runtime.
"""

import json
import logging
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pandas as pd

from dl_core.data.inputs import Unseen, UnseenCategoriesError, refuse_unseen
from dl_core.errors import InputError
from dl_core.serving.load import LoadedRun

MAX_ERRORS, MAX_MESSAGE = 10, 500
MAX_VALUES, MAX_VALUE = 5, 100  # unseen categories a warning lists, and characters of each
LOG = logging.getLogger("uvicorn.error")


def create_app(run: LoadedRun, max_rows: int = 10_000, unseen_categories: str = "encode"):
    """A FastAPI app predicting with `run`; requests may carry 1..max_rows rows; categories training never saw
    are encoded as unknown with a warning (`unseen_categories=encode`) or refused (`refuse`)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
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
        warnings: list[dict[str, Any]] = Field(description="what the client should know of the predictions: "
                                                           "one entry per column with categories training never "
                                                           "saw (type unseen_category), read as unknown")

    app = FastAPI(title="dl_core prediction service", version="1",
                  description=f"{run.task.name} model from run {run.name}")
    app.router.route_class = json_body_route()
    app.add_middleware(AnswerBugsCleanly)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content=error_body(list(err.errors())))

    @app.exception_handler(InputError)
    def invalid_rows(_: Request, err: InputError) -> JSONResponse:
        errors = [{"loc": ["body", "rows", *err.loc], "msg": err.reason, "type": "value_error"}]
        if isinstance(err, UnseenCategoriesError):
            errors = [{**unseen_entry(unseen), "msg": f"{unseen.message()}; send categories the run was trained "
                                                      f"on, or start the server with unseen_categories=encode"}
                      for unseen in err.unseen]
        return JSONResponse(status_code=422, content=error_body(errors))

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return run.metadata()

    def predict(request: predict_request) -> PredictResponse:
        rows = run.schema.frame(request.rows)
        unseen = refuse_unseen(run.preprocessor.unseen_categories(rows), unseen_categories)
        warnings = [{**unseen_entry(u), "msg": u.message(), "rows": u.rows,
                     "values": [_shorten(value, MAX_VALUE) for value in u.values[:MAX_VALUES]]} for u in unseen]
        return PredictResponse(predictions=records(run.predict_checked(rows)), warnings=warnings)

    app.post("/predict", response_model=PredictResponse)(predict)
    return app


def unseen_entry(unseen: Unseen) -> dict[str, Any]:
    """Where a column's unseen categories are: the column, at the first row holding one."""
    return {"loc": ["body", "rows", unseen.first, unseen.column], "type": "unseen_category"}


def error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """FastAPI's 422 shape without `input` and `ctx`, whole-request errors (e.g. too many rows) first; a
    JSON syntax error's message says what the parser found (FastAPI keeps that in `ctx`).

    Messages are cut at `MAX_MESSAGE` characters: some quote the bad value (a pandas date error does).
    """
    ordered = sorted(errors, key=lambda error: len(error["loc"]))[:MAX_ERRORS]
    detail = [{"loc": [part if isinstance(part, int) else str(part) for part in error["loc"]],
               "msg": _shorten(_message(error)), "type": str(error["type"])} for error in ordered]
    return {"detail": detail, "error_count": len(errors)}


def _message(error: dict[str, Any]) -> str:
    reason = error.get("ctx", {}).get("error") if error["type"] == "json_invalid" else None
    return f"{error['msg']}: {reason}" if reason else str(error["msg"])


def _shorten(message: str, width: int = MAX_MESSAGE) -> str:
    return message if len(message) <= width else f"{message[:width]}... ({len(message)} characters)"


def json_body_route() -> type:
    """FastAPI's route class, reading request bodies so that every body that is not JSON gets the 422 of a
    JSON syntax error: FastAPI answers its own 400 (`There was an error parsing the body`) when the parser
    raises anything but a `JSONDecodeError`, i.e. for a body that is not UTF-8 (as RFC 8259 requires), for
    one nested past the parser's recursion limit and for an integer past Python's digit limit. The documented
    way to change how a route reads requests is a custom route class and request class (FastAPI's "Custom
    Request and APIRoute class")."""
    from fastapi.routing import APIRoute
    from starlette.requests import Request

    class JSONBodyRequest(Request):
        async def json(self) -> Any:
            try:
                return await super().json()
            except UnicodeDecodeError as err:
                raise json.JSONDecodeError(f"not UTF-8 text (byte {err.object[err.start]:#04x} at position "
                                           f"{err.start}); send JSON encoded as UTF-8", "", err.start) from None
            except RecursionError:
                raise json.JSONDecodeError("nested too deeply for the JSON parser; send rows as a list of flat "
                                           "objects", "", 0) from None
            except json.JSONDecodeError:
                raise
            except ValueError:  # the one other ValueError of json.loads: an int past Python's digit limit
                raise json.JSONDecodeError(f"an integer of more than {sys.get_int_max_str_digits()} digits, "
                                           f"more than any number the model can use; send numbers of ordinary "
                                           f"size", "", 0) from None

    class JSONBodyRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Awaitable[Any]]:
            handler = super().get_route_handler()

            async def read_json_bodies_strictly(request: Request) -> Any:
                return await handler(JSONBodyRequest(request.scope, request.receive))

            return read_json_bodies_strictly

    return JSONBodyRoute


class AnswerBugsCleanly:
    """ASGI middleware: an unexpected error becomes a JSON 500, logged with its traceback, and stops here.

    Starlette's outermost middleware answers 500 but re-raises, and uvicorn then closes the
    keep-alive connection, so the client's next request fails as well.
    """

    def __init__(self, app: Callable[..., Awaitable[None]]):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Awaitable[Any]],
                       send: Callable[..., Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            if started:
                raise
            LOG.exception("%s %s failed", scope["method"], scope["path"])
            body = json.dumps({"detail": "internal server error; the traceback is in the server log"}).encode()
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: timestamps as ISO strings, floats exact, and null for what strict JSON
    cannot carry: a missing value, or a number time extrapolation pushed past the float range."""
    columns = {name: (col.map(pd.Timestamp.isoformat) if pd.api.types.is_datetime64_any_dtype(col) else col)
               for name, col in frame.items()}
    out = pd.DataFrame(columns).astype(object).to_dict("records")
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in out]


def serve(cfg: Any) -> None:
    """Load `cfg.run_dir` and serve it with uvicorn until interrupted (what `serve.py` runs, once the entry point
    has checked the config)."""
    import torch
    import uvicorn

    from dl_core.serving.load import load_run

    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    uvicorn.run(create_app(load_run(cfg.run_dir), cfg.max_rows, cfg.unseen_categories), host=cfg.host,
                port=cfg.port)
