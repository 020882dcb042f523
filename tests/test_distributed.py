"""DDP under a real `torchrun` (gloo, 2 CPU processes) against a single-process run.

Why the metrics match: every rank draws the same seeded permutation and takes an interleaved shard
of it, so step k's global batch on 2 ranks of batch B is exactly a single process's step k with
batch 2B, and DDP's gradient (the mean of the two ranks' means over equal halves) is that batch's
mean gradient. Only the order of float32 additions differs (the all-reduce sums two partial
gradients), so metrics agree to ~1e-9 relative here; we allow 1e-6. Against a single process with
batch B they are NOT expected to match: that takes twice as many, smaller steps. Dropout is off
because each rank draws its own masks, which a single process would draw differently.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from dl_core.engine.distributed import Distributed
from dl_core.runs.pipeline import train
from helpers import ROOT, TINY, run_entry

RTOL = 1e-6
EXACT = [*TINY, "model.dropout=0", "trainer.max_epochs=3"]
NOT_COMPARED = {"train_time_s", "train_samples_per_s"}


def torchrun(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    done = run_entry("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(ROOT / "train.py"),
                     *EXACT, "hardware=ddp", "hardware.device=cpu", "hardware.precision=32", "hardware.threads=1",
                     "trainer.batch_size=32", f"paths.log_dir={tmp_path / 'logs'}", *overrides, cwd=tmp_path,
                     timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def assert_close(ddp: dict, single: dict) -> None:
    for key, value in single.items():
        if isinstance(value, float) and key not in NOT_COMPARED:
            assert ddp[key] == pytest.approx(value, rel=RTOL), key


@pytest.mark.slow
def test_two_ranks_match_one_process_with_the_global_batch_and_resume(make_cfg, tmp_path: Path) -> None:
    train(make_cfg(*EXACT, "trainer.batch_size=64", run="single"))
    single = json.loads((tmp_path / "single" / "metrics.json").read_text())
    single_history = pd.read_csv(tmp_path / "single" / "metrics.csv")

    torchrun(tmp_path, "trainer.max_epochs=2")
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1, "every rank must write into rank 0's run dir"
    run = runs[0]
    assert sorted(p.relative_to(run).as_posix() for p in (tmp_path / "logs").rglob("*.ckpt")) == [
        "checkpoints/best.ckpt", "checkpoints/last.ckpt"]
    assert (run / "ranks" / "rank1" / "train.log").is_file()
    history = pd.read_csv(run / "metrics.csv")
    for column in ("train_loss", "val_loss"):
        assert history[column].tolist() == pytest.approx(single_history[column][:2].tolist(), rel=RTOL)

    # Turn the finished 2-epoch run into a 3-epoch run killed after epoch 2 (its checkpoint is the
    # same but for these two fields) and let both ranks resume it from rank 0's checkpoint.
    state = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    state["finished"] = False
    state["config"]["trainer"]["max_epochs"] = 3
    torch.save(state, run / "checkpoints" / "last.ckpt")
    torchrun(tmp_path, f"trainer.resume={run}")
    resumed = json.loads((run / "metrics.json").read_text())
    assert resumed["epochs"] == 3
    assert_close(resumed, single)
    assert len(list((tmp_path / "logs").rglob("*.ckpt"))) == 2


def test_shards_cover_the_permutation_with_equal_steps_per_rank() -> None:
    perm = torch.randperm(11, generator=torch.Generator().manual_seed(0))
    shards = [Distributed(rank, 3).shard(perm) for rank in range(3)]
    assert {len(shard) for shard in shards} == {4}
    assert set(torch.cat(shards).tolist()) == set(range(11))
    assert torch.equal(torch.stack(shards, 1).flatten()[:11], perm)


def test_ddp_outside_torchrun_is_a_config_error(make_cfg, monkeypatch) -> None:
    from dl_core.errors import ConfigError

    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ConfigError, match="torchrun --nproc_per_node"):
        train(make_cfg(*TINY, "hardware=ddp"))
