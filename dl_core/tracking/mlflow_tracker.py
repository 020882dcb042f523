"""MLflow tracking: one MLflow run per training run, fed by the engine like the file tracker.

`mlflow` is imported only when a run logs to it. By default the store is local, `<paths.log_dir>/mlflow.db`
(SQLite, MLflow's own default backend) with artifacts in `<paths.log_dir>/mlartifacts`, so the runs of every
multirun share one store and `mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db` shows them;
`logger.tracking_uri` names a server or another store. Runs go to the experiment `logger.project`, runs of
one multirun carry one `group` tag (the study or sweep name), and a resumed training run continues its
MLflow run (its id is kept in the run dir).

A run never waits on the network: a server URI is first checked in a few seconds, and one that does not
answer is replaced by the local store, with one warning line. A store that fails later (a server that
stops answering, a locked database) costs the run its MLflow logging, with one warning, never the run:
the run's files hold everything. The client's retries are cut down while the run logs (unless the
environment sets them), so such a failure costs seconds, not MLflow's minutes of retrying.

With `logger.log_model=true` the run is logged as a model that `mlflow.pyfunc.load_model(...)` predicts
with: a pyfunc wrapper around `dl_core.load_run` (dl_core/tracking/mlflow_model.py) whose artifact is the
run's best checkpoint (and its metrics.json), so it predicts exactly what predict.py predicts on the same
rows. Loading it needs dl_core importable (this repository installed), as predict.py does.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from dl_core.tracking.shared import (
    BEST_CHECKPOINT,
    NewEpochs,
    final_metrics,
    flat_config,
    plot_files,
    run_group,
    run_name,
    unreachable,
)

log = logging.getLogger(__name__)

RUN_ID_FILE = "mlflow_run_id.txt"
LOCAL_STORE = "mlflow.db"
LOCAL_ARTIFACTS = "mlartifacts"
MODEL_NAME = "model"
# While a run logs: a request that gets no answer is tried 3 times, 10 s each, instead of MLflow's 8 times
# with backoff up to minutes, and no progress bars (a run's log is lines). An environment that sets these
# keeps its own.
CLIENT_LIMITS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                 "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
# What the logged model imports besides dl_core (the repository, not on PyPI): pinned to this environment's
# versions, so that MLflow need not load the model in a subprocess to guess them.
REQUIREMENTS = ("torch", "numpy", "pandas", "scikit-learn", "pydantic", "omegaconf", "hydra-core")


class MlflowTracker:
    """Logs each epoch's (or boosting round's) row with the epoch as step; then metrics.json's numbers (the
    best validation loss as `best_val_loss` beside the per-epoch `val_loss`), the plots under `plots/`, and
    with `log_model` the run as a pyfunc model. The first failing call turns the tracker off (one warning)."""

    def __init__(self, client: Any, run_id: str, run_dir: Path, log_model: bool, first_epoch: int = 0):
        self.client, self.run_id, self.run_dir, self.log_model = client, run_id, run_dir, log_model
        self.new_epochs = NewEpochs(first_epoch)
        self.failed = False

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(name, float(value), now, int(row["epoch"])) for row in self.new_epochs(history)
                   for name, value in row.items() if name != "epoch"]
        self.call(self.client.log_batch, self.run_id, metrics=metrics)

    def log_summary(self, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(metrics.get("epochs", 0))
        final = [Metric(name, value, now, step) for name, value in final_metrics(metrics).items()]
        self.call(self.client.log_batch, self.run_id, metrics=final)
        for path in plot_files(self.run_dir):
            self.call(self.client.log_artifact, self.run_id, str(path), "plots")
        if self.log_model and (self.run_dir / BEST_CHECKPOINT).is_file():
            self.call(log_run_model, self.client, self.run_id, self.run_dir)

    def call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Call the store, unless an earlier call failed; a failure warns once and ends this run's MLflow
        logging, never the training."""
        if self.failed:
            return
        try:
            method(*args, **kwargs)
        except store_errors() as err:
            self.failed = True
            log.warning("MLflow: %s failed (%s); this run logs no more to MLflow (its files in %s hold everything)",
                        getattr(method, "__name__", "a call"), first_line(err), self.run_dir)


def log_run_model(client: Any, run_id: str, run_dir: Path) -> None:
    """Log the run as MLflow model `model` of `run_id` (its artifact: the best checkpoint and metrics.json in a
    run directory of their own) and record its URI (`models:/<model id>`) in the run's tag `model_uri`."""
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelStatus
    from mlflow.models import Model

    run = client.get_run(run_id)
    model = client.create_logged_model(run.info.experiment_id, name=MODEL_NAME, source_run_id=run_id)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "run"
        (staged / BEST_CHECKPOINT).parent.mkdir(parents=True)
        shutil.copyfile(run_dir / BEST_CHECKPOINT, staged / BEST_CHECKPOINT)
        if (run_dir / "metrics.json").is_file():
            shutil.copyfile(run_dir / "metrics.json", staged / "metrics.json")
        saved = Path(tmp) / MODEL_NAME
        with without_signature_warning():
            mlflow.pyfunc.save_model(str(saved), python_model=str(Path(__file__).with_name("mlflow_model.py")),
                                     artifacts={"run": str(staged)}, pip_requirements=requirements(),
                                     mlflow_model=Model(run_id=run_id, model_id=model.model_id))
        client.log_model_artifacts(model.model_id, str(saved))
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.set_tag(run_id, "model_uri", f"models:/{model.model_id}")


@contextmanager
def without_signature_warning() -> Iterator[None]:
    """Without MLflow's warning that the model has no signature: it has none on purpose. It takes the rows
    predict.py takes and checks them against the run's inputs itself (the same checks, the same errors), where
    a signature would have MLflow convert them first."""

    def no_signature(record: logging.LogRecord) -> bool:
        return "signature" not in record.getMessage()

    logger = logging.getLogger("mlflow.pyfunc")
    logger.addFilter(no_signature)
    try:
        yield
    finally:
        logger.removeFilter(no_signature)


def requirements() -> list[str]:
    found = []
    for name in REQUIREMENTS:
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return found


@contextmanager
def mlflow_run(cfg: DictConfig, run_dir: Path) -> Iterator[MlflowTracker | NullTracker]:
    """Start (or, for a resumed run dir, continue) the MLflow run; end it FINISHED, FAILED or KILLED however the
    block ends. A store that cannot be used at all leaves the run without MLflow, with one warning."""
    with client_limits():
        try:
            tracker = start(cfg, run_dir)
        except store_errors() as err:
            log.warning("MLflow: cannot log to %s (%s); training without MLflow (its files in %s hold everything)",
                        cfg.logger.tracking_uri or "the local store", first_line(err), run_dir)
            yield NullTracker()
            return
        try:
            yield tracker
        except KeyboardInterrupt:
            tracker.call(tracker.client.set_terminated, tracker.run_id, "KILLED")
            raise
        except BaseException:
            tracker.call(tracker.client.set_terminated, tracker.run_id, "FAILED")
            raise
        tracker.call(tracker.client.set_terminated, tracker.run_id, "FINISHED")


class NullTracker:
    """The tracker of a run whose MLflow store could not be used: it logs nothing."""

    def log_epoch(self, history: list[dict[str, float]]) -> None:
        return

    def log_summary(self, metrics: dict[str, Any]) -> None:
        return


def start(cfg: DictConfig, run_dir: Path) -> MlflowTracker:
    """The client, the experiment (made on first use) and the run: a new one with its name, group, tags, the
    resolved config as params and as config.yaml, or the run of a resumed run dir (a new one when the store
    does not hold it, e.g. after falling back to the local store)."""
    from mlflow import MlflowClient
    from mlflow.entities import Param
    from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH

    uri, artifacts = reachable_store(cfg)
    client = MlflowClient(uri)
    id_file = run_dir / RUN_ID_FILE
    run_id = id_file.read_text().strip() if id_file.exists() else None
    if run_id is not None and run_exists(client, run_id):
        client.update_run(run_id, status="RUNNING")
        # A resume trains again the epochs after its checkpoint that the process before it logged (with
        # trainer.checkpoint_every > 1), to the same numbers: each epoch is logged once.
        logged = max((point.step for point in client.get_metric_history(run_id, "val_loss")), default=0)
        return MlflowTracker(client, run_id, run_dir, cfg.logger.log_model, first_epoch=logged + 1)
    tags = dict.fromkeys(cfg.logger.tags, "true")
    group = run_group(cfg)
    if group:
        tags["group"] = group
    run = client.create_run(experiment(client, cfg.logger.project, artifacts), run_name=run_name(cfg, run_dir),
                            tags=tags)
    run_id = run.info.run_id
    id_file.write_text(run_id + "\n")
    params = [Param(key, str(value)) for key, value in flat_config(cfg).items()]
    for first in range(0, len(params), MAX_PARAMS_TAGS_PER_BATCH):
        client.log_batch(run_id, params=params[first:first + MAX_PARAMS_TAGS_PER_BATCH])
    client.log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return MlflowTracker(client, run_id, run_dir, cfg.logger.log_model)


def tracking_store(cfg: DictConfig) -> tuple[str, str | None]:
    """The tracking URI and, for the local store, where its new experiments keep their artifacts (None: the
    store decides, as a server does)."""
    if cfg.logger.tracking_uri:
        return str(cfg.logger.tracking_uri), None
    return local_store(cfg)


def local_store(cfg: DictConfig) -> tuple[str, str]:
    """`<paths.log_dir>/mlflow.db` and `<paths.log_dir>/mlartifacts`, shared by every run under paths.log_dir."""
    root = Path(cfg.paths.log_dir).expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / LOCAL_STORE}", str(root / LOCAL_ARTIFACTS)


def reachable_store(cfg: DictConfig) -> tuple[str, str | None]:
    """`tracking_store`, unless it is a server that does not answer within a few seconds: then the local
    store, with one warning."""
    uri, artifacts = tracking_store(cfg)
    if not uri.startswith(("http://", "https://")):
        return uri, artifacts
    problem = unreachable(uri)
    if problem is None:
        return uri, artifacts
    local, artifacts = local_store(cfg)
    log.warning("MLflow server %s unreachable (%s): logging to the local store %s instead", uri, problem, local)
    return local, artifacts


def experiment(client: Any, name: str, artifacts: str | None) -> str:
    """The id of experiment `name`, created on first use. The jobs of a parallel multirun may create it at
    the same moment: the one that loses the race finds the winner's."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except MlflowException:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def run_exists(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_run(run_id)
    except MlflowException:
        return False
    return True


def store_errors() -> tuple[type[BaseException], ...]:
    """What a store that cannot be used raises: MLflow's errors (the REST client's after its retries), the
    database's, the file system's."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    return MlflowException, SQLAlchemyError, OSError


@contextmanager
def client_limits() -> Iterator[None]:
    """`CLIENT_LIMITS` in the environment while the block runs, where the environment does not set them."""
    added = {key: value for key, value in CLIENT_LIMITS.items() if key not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
