"""The MLflow model of a training run, in MLflow's "models from code" form: `log_run_model` logs this file,
and MLflow runs it when it loads the model (`mlflow.pyfunc.load_model(...)`), so nothing is pickled.

The model's artifact `run` is a run directory holding the run's best checkpoint (and its metrics.json),
loaded by `dl_core.load_run`: `predict` takes the rows predict.py takes, as a DataFrame, and returns the
table predict.py writes. Loading it needs dl_core importable (this repository installed), as predict.py does.
"""

from typing import Any

import mlflow.models
import mlflow.pyfunc
import pandas as pd


class RunModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from dl_core.serving.load import load_run

        self.run = load_run(context.artifacts["run"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.run.predict(model_input)


mlflow.models.set_model(RunModel())
