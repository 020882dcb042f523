"""Use a trained run: `load_run(run_dir).predict(frame)`; `app.create_app` serves it over HTTP."""

from dl_core.serving.load import LoadedRun, load_run

__all__ = ["LoadedRun", "load_run"]
