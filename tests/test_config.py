"""The schema rejects wrong types at compose time and out-of-range values before any work."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from conftest import ROOT, compose_config
from dl_core.config import validate
from dl_core.errors import ConfigError


@pytest.mark.parametrize("override, key", [
    ("data.sequence_length=-3", "data.sequence_length"),
    ("data.horizon=0", "data.horizon"),
    ("data.fillna=backwards", "data.fillna"),
    ("data.split.val_fraction=0.9", "data.split.val_fraction + test_fraction"),
    ("model.dropout=1.5", "model.dropout"),
    ("trainer.lr=0", "trainer.lr"),
    ("trainer.batch_size=-1", "trainer.batch_size"),
    ("hardware.precision=fp8", "hardware.precision"),
    ("objective.direction=up", "objective.direction"),
])
def test_out_of_range_values_name_the_key(make_cfg, override, key):
    with pytest.raises(ConfigError) as err:
        validate(make_cfg(override))
    assert str(err.value).startswith(key + ":")


def test_default_config_is_valid(make_cfg):
    cfg = make_cfg()
    validate(cfg)
    assert cfg.data.sequence_length == 30 and cfg.model.hidden_dim == 64 and cfg.trainer.max_epochs == 100


@pytest.mark.parametrize("override", ["data.sequence_length=abc", "model.hidden_dim=wide", "data.unknown_key=1"])
def test_wrong_types_and_unknown_keys_fail_at_compose_time(make_cfg, override):
    with pytest.raises((ConfigCompositionException, ValidationError)) as err:
        make_cfg(override)
    assert override.split("=")[0].split(".")[-1] in str(err.value) + str(err.value.__cause__)


def test_cli_reports_a_bad_value_in_one_line_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "data.sequence_length=-3", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "error: data.sequence_length: must be >= 1 (got -3)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_cli_reports_a_wrong_type_naming_the_key(tmp_path):
    proc = subprocess.run([sys.executable, "train.py", "data.sequence_length=abc", f"hydra.run.dir={tmp_path}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "data.sequence_length" in proc.stderr and "abc" in proc.stderr


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_preset_composes_and_validates(make_cfg, preset):
    cfg = make_cfg(f"experiment={preset}")
    validate(cfg)


# A preset's search space for the preset it tunes (the optuna_base default of data/model otherwise).
TUNES = {"ett_lstm_optuna": ["experiment=ett_lstm"]}


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "hparams_search").glob("*_optuna.yaml")))
def test_every_search_space_names_keys_of_the_config_it_tunes(preset, tmp_path):
    """A typo in a swept key would only surface as a failed trial after the sweep had started."""
    cfg = compose_config([*TUNES.get(preset, []), f"hparams_search={preset}"], tmp_path, with_hydra=True)
    params = cfg.hydra.sweeper.params
    assert params and cfg.hydra.sweeper.study_name == preset
    missing = [key for key in params if OmegaConf.select(cfg, key, default="<missing>") == "<missing>"]
    assert not missing, f"{preset} sweeps keys the config does not have: {missing}"
