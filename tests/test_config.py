"""The schema rejects wrong types at compose time and out-of-range values before any work."""

from __future__ import annotations

import dataclasses
import subprocess

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

import dl_core
from dl_core.engine.hardware import resolve_hardware
from dl_core.errors import ConfigError
from dl_core.runs.cli import composition_error
from dl_core.runs.config import validate
from helpers import ROOT, run_entry


@pytest.mark.parametrize(("override", "key"), [
    ("data.sequence_length=-3", "data.sequence_length"),
    ("data.horizon=0", "data.horizon"),
    ("data.split.val_fraction=0.9", "data.split.val_fraction + test_fraction"),
    ("model.dropout=1.5", "model.dropout"),
    ("trainer.lr=0", "trainer.lr"),
    ("trainer.batch_size=-1", "trainer.batch_size"),
    ("trainer.plateau_factor=1.5", "trainer.plateau_factor"),
    ("trainer.exponential_gamma=0", "trainer.exponential_gamma"),
    ("trainer.exponential_hold=0", "trainer.exponential_hold"),
])
def test_out_of_range_values_name_the_key(make_cfg, override, key):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(override))
    assert str(err.value).startswith(key + ":")


# Choices are types: refused while the config is composed, naming the full key and what it may be.
@pytest.mark.parametrize(("overrides", "expected"), [
    (["data.fillna=backwards"], ("data.fillna: Invalid value 'backwards', expected one of ['ffill', 'bfill', "
                                "'interpolate', 'zero', 'drop']")),
    (["hardware.precision=fp8"], ("hardware.precision: Invalid value 'fp8', expected one of [32, 'bf16-mixed', "
                                 "'16-mixed', 'auto']")),
    (["objective.direction=up"], "objective.direction: Invalid value 'up', expected one of ['minimize', 'maximize']"),
    (["trainer.scheduler=step"], ("trainer.scheduler: Invalid value 'step', expected one of ['none', 'cosine', "
                                 "'plateau', 'exponential']")),
    (["trainer.batch_size=big"], ("trainer.batch_size: Value 'big' of type 'str' is incompatible with type hint "
                                 "'Union[int, Literal[auto]]'")),
    (["data=ett", "data.features=X"], "data.features: Invalid value 'X', expected one of ['M', 'S', 'MS']"),
    (["data=synthetic_tabular", "data.task=ranking"], ("data.task: Invalid value 'ranking', expected one of "
                                                      "['regression', 'classification']")),
    (["logger=wandb", "logger.mode=sometimes"], ("logger.mode: Invalid value 'sometimes', expected one of ['auto', "
                                                "'online', 'offline', 'disabled']")),
])
def test_a_choice_outside_its_type_is_refused_at_compose_time_naming_the_key_and_the_choices(make_cfg, overrides,
                                                                                             expected):
    with pytest.raises(ConfigCompositionException) as err:
        make_cfg(*overrides)
    assert composition_error(err.value) == expected


@pytest.mark.parametrize(("override", "resume"), [("trainer.resume=true", True), ("trainer.resume=False", False),
                                              ("trainer.resume=/runs/a", "/runs/a")])
def test_precision_32_and_resume_keep_their_command_line_types(make_cfg, override, resume):
    """Hydra reads `32` as an int and `true` as a bool; both are what the schema takes, no string matching."""
    cfg = make_cfg("hardware=auto", "hardware.precision=32", override)
    validate(cfg)
    assert cfg.trainer.resume == resume and type(cfg.trainer.resume) is type(resume)
    assert resolve_hardware(cfg.hardware).precision == "32"


def test_default_config_is_valid(make_cfg):
    cfg = make_cfg()
    validate(cfg)
    assert cfg.data.sequence_length == 30 and cfg.model.hidden_dim == 64 and cfg.trainer.max_epochs == 100


@pytest.mark.parametrize("override", ["data.sequence_length=abc", "model.hidden_dim=wide", "data.unknown_key=1"])
def test_wrong_types_and_unknown_keys_fail_at_compose_time(make_cfg, override):
    with pytest.raises((ConfigCompositionException, ValidationError)) as err:
        make_cfg(override)
    assert override.split("=")[0].split(".")[-1] in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize(("override", "key"), [
    ("+trainer.foo=1", "trainer.foo"),  # the form Hydra's own error suggests for a new key
    ("++trainer.foo=1", "trainer.foo"),
    ("+sede=3", "sede"),  # the top level has a schema too
    ("+logger.foo=1", "logger.foo"),  # logger=none
    ("+paths.foo=1", "paths.foo"),
    ("+data.generator.bar=2", "data.generator.bar"),
])
def test_unknown_keys_are_refused_however_they_are_written(make_cfg, override, key):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(override))
    assert str(err.value).startswith(f"{key}: not a config key")


def test_an_unknown_key_close_to_a_real_one_is_pointed_at_it(make_cfg):
    with pytest.raises(ConfigError, match=r"^trainer.max_epoch: not a config key; did you mean trainer.max_epochs\?"):
        validate(make_cfg("+trainer.max_epoch=3"))


def group_options() -> list[tuple[str, str]]:
    return [(group.name, option.stem) for group in sorted((ROOT / "conf").iterdir())
            if group.is_dir() and group.name not in ("hydra", "experiment", "benchmark", "hparams_search")
            for option in sorted(group.glob("*.yaml"))]


@pytest.mark.parametrize(("group", "option"), group_options())
def test_every_group_option_composes_under_a_schema(make_cfg, group, option):
    """The unknown-key check can only check a node that has a schema (logger=none and paths had none)."""
    cfg = make_cfg(f"{group}={option}")
    assert dataclasses.is_dataclass(OmegaConf.get_type(cfg[group])), f"conf/{group}/{option}.yaml has no schema"


def test_the_top_level_has_a_schema(make_cfg):
    assert OmegaConf.get_type(make_cfg()).__name__ == "TrainConfig"


def assert_refused_in_one_line(proc: subprocess.CompletedProcess[str], *expected: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert all(text in lines[0] for text in expected), lines[0]


# Each of these trained and ignored the key (+), or ended in Hydra's multi-line report with status 1.
@pytest.mark.parametrize(("override", "expected"), [
    ("+trainer.foo=1", ["trainer.foo: not a config key"]),
    ("+sede=3", ["sede: not a config key", "did you mean seed?"]),
    ("data=nope", ["data/nope", "options: california_housing", "synthetic"]),
    ("trainer.lr=[", ["trainer.lr=[: cannot parse this override"]),
    ("data.sequence_length=abc", ["data.sequence_length:", "abc"]),
    ("data.sequence_length=-3", ["data.sequence_length: must be >= 1 (got -3)"]),
    ("hardware.precision=fp8", ["hardware.precision: Invalid value 'fp8'", "'bf16-mixed'"]),
    ("logger=[wandb,mlfow]", ["Could not load 'logger/mlfow'"]),
    ("logger.tracking_uri=http://127.0.0.1:5000", ["logger.tracking_uri: is for MLflow", "logger=[wandb,mlflow]"]),
    # numpy's seed range: these were a ValueError traceback from seeding, after the run dir was made.
    ("seed=-1", ["seed: must be in [0, 4294967295] (got -1)"]),
    (f"seed={2**40}", [f"seed: must be in [0, 4294967295] (got {2**40})"]),
])
def test_a_refused_config_is_one_line_status_2_and_leaves_no_run_dir(tmp_path, override, expected):
    run_dir = tmp_path / "run"
    proc = run_entry("train.py", override, f"hydra.run.dir={run_dir}")
    assert_refused_in_one_line(proc, *expected)
    assert not run_dir.exists(), sorted(p.name for p in run_dir.iterdir())


def test_a_refused_run_dir_that_holds_anything_else_is_kept(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    assert_refused_in_one_line(run_entry("train.py", "data.sequence_length=-3", f"hydra.run.dir={run_dir}"))
    assert (run_dir / "checkpoints").is_dir() and not (run_dir / ".hydra").exists()  # no record of a refused run


@pytest.mark.parametrize(("script", "args", "expected"), [
    ("predict.py", ["+foo=1", "run_dir=x", "data.path=y.csv"], "foo: not a config key"),
    ("serve.py", ["port=abc"], "port: Value 'abc'"),
])
def test_predict_and_serve_refuse_a_config_the_same_way(script, args, expected):
    assert_refused_in_one_line(run_entry(script, *args), expected)


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes_and_validates(make_cfg, preset):
    cfg = make_cfg(f"experiment={preset}")
    validate(cfg)


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_presets_leave_the_device_to_the_hardware_group(make_cfg, preset):
    """A preset pinning hardware=cpu made the benchmark run on the CPU of a GPU machine, silently."""
    assert make_cfg(f"experiment={preset}").hardware == make_cfg().hardware
    assert make_cfg(f"experiment={preset}", "hardware=gpu").hardware.device == "cuda"


# A preset's search space for the preset it tunes (the optuna_base default of data/model otherwise).
TUNES = {"ett_lstm_optuna": ["experiment=ett_lstm"], "ett_patchtst_optuna": ["experiment=ett_patchtst"]}


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "hparams_search").glob("*_optuna.yaml")))
def test_every_search_space_names_keys_of_the_config_it_tunes(preset, tmp_path):
    """A typo in a swept key would only surface as a failed trial after the sweep had started."""
    cfg = dl_core.compose(*TUNES.get(preset, []), f"hparams_search={preset}", run_dir=tmp_path, with_hydra=True)
    params = cfg.hydra.sweeper.params
    assert params and cfg.hydra.sweeper.study_name == preset
    missing = [key for key in params if OmegaConf.select(cfg, key, default="<missing>") == "<missing>"]
    assert not missing, f"{preset} sweeps keys the config does not have: {missing}"
