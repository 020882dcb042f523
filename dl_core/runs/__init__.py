"""The run wing: what makes, resumes and keeps a run, and what the entry points and the Python API share.

- pipeline.py: one training run, config -> data bundle -> estimator -> fit -> evaluation -> artifacts;
  resume.py: continuing a run under its saved config; rundir.py: the run directory, its lock, Hydra's files.
- cli.py: what train.py, predict.py and serve.py share (one-line refusals, exit statuses, Ctrl-C);
  api.py: `compose` and `run` for notebooks and scripts.
- config.py: the top-level schema, the registration of every schema, and `validate`, the one check of an
  entry's config; config_reference.py renders docs/config.md from the schemas.

The wing imports the core and the sweep wing (a run that is an Optuna trial reports to it); nothing
below imports it (tests/test_layers.py). Named `runs`, not `run`: `dl_core.run` is the API's function.
"""
