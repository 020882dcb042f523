"""The run wing: what makes, resumes and keeps a run, and what the entry points and the Python API share.

- pipeline.py: one training run, config -> data bundle -> estimator -> fit -> evaluation -> artifacts;
  resume.py: continuing a run under its saved config; rundir.py: the run directory, its lock, Hydra's files.
- cli.py: what train.py, predict.py and serve.py share (one-line refusals, exit statuses, Ctrl-C);
  api.py: `compose` and `run` for notebooks and scripts.
- config.py: the top-level schema, the registration of every schema, and `validate`, the one check of an
  entry's config; config_reference.py renders docs/config.md from the schemas.
- reuse.py: a run's run.json and `reuse=true` (a config that finished is not trained again); benchmark.py: a
  suite's table from its run dirs (`python -m dl_core.runs.benchmark render`); __main__.py: `python -m
  dl_core.runs list` and `compare`, the finished runs under a folder, and `ensemble`, which ensemble.py makes:
  finished runs combined into one predictor saved as a run (dl_core/serving/ensemble.py loads it).

The wing imports the core and the sweep wing (a run that is an Optuna trial reports to it); nothing
below imports it (tests/test_layers.py). Named `runs`, not `run`: `dl_core.run` is the API's function.
"""
