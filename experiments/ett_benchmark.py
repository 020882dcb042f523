"""ETT benchmark tables: naive, DLinear, PatchTST and LSTMs on ETTh1/ETTh2 at the standard horizons.

    nohup nice -n 5 python experiments/ett_benchmark.py --workers 2 --readme > outputs/ett_benchmark.log 2>&1 &

Each run is `train.py experiment=ett_<model> data.name=<file> data.features=<mode> data.horizon=<H> seed=<s>
hardware=cpu hardware.threads=1` (the presets in conf/experiment/), launched through the dl_core API by
experiments/common.py: a finished run is reused from outputs/experiments/ett_benchmark/, so an
interrupted study resumes where it stopped, and `--no-train` tabulates what has finished.

Two grids, trained in order of priority:
- long horizons (default): mode M, horizons 96/192/336/720, naive, DLinear, PatchTST and the best LSTM
  (also at look-back 336); `--seeds` at H=96, `--other-seeds` at the longer horizons.
- `--ablation`: horizon 96, modes M and S, the LSTM variants that led to the best LSTM.
The table (validation and test MSE, test MAE on the standardised scale, mean ± std over seeds, epochs
and seconds per epoch) and the comparisons (with the published figures, with DLinear, the model
chosen on validation) are printed, and with --readme written between the "ett_benchmark" markers of
experiments/README.md. --smoke trains one epoch of a model per preset on ETTh1 M H=96 into a study
of its own, to check the script in a few minutes.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import dl_core
from common import README, Run, launch_all, markdown_table, spread, write_section

STUDY = "ett_benchmark"
HORIZONS = [96, 192, 336, 720]
# best_params.yaml of `train.py -m experiment=ett_lstm hparams_search=ett_lstm_optuna` (trial 11 of 12)
TUNED_LSTM = ["model.instance_norm=true", "model.num_layers=1", "model.hidden_dim=67", "model.dropout=0.164",
              "trainer.lr=0.0024", "trainer.batch_size=128", "trainer.max_epochs=20"]
BEST_LSTM = [*TUNED_LSTM, "model.channel_independent=true"]
# name -> (preset, extra overrides, label in the table), in the order the table lists them.
MODELS = {
    "naive": ("ett_naive", [], "naive (repeat last value)"),
    "dlinear": ("ett_dlinear", [], "DLinear (ours)"),
    "patchtst": ("ett_patchtst", [], "PatchTST/42 (ours)"),
    "lstm": ("ett_lstm", [], "LSTM 2x64 (ours)"),
    "lstm_revin": ("ett_lstm", ["model.instance_norm=true"], "LSTM 2x64 + RevIN (ours)"),
    "lstm_tuned": ("ett_lstm", TUNED_LSTM, "LSTM 1x67 + RevIN, tuned (ours)"),
    # The tuned LSTM, each channel its own series (mode M only: in mode S there is one channel).
    "lstm_ci": ("ett_lstm", BEST_LSTM, "LSTM 1x67 + RevIN, tuned, channel-independent (ours)"),
    # The same LSTM reading what DLinear and PatchTST read.
    "lstm_ci_336": ("ett_lstm", [*BEST_LSTM, "data.sequence_length=336"],
                    "LSTM 1x67 + RevIN, tuned, channel-independent, look-back 336 (ours)"),
}
MULTIVARIATE_ONLY = {"lstm_ci", "lstm_ci_336"}
# Training recipes a model's row chooses among on seed 0's validation MSE, per file, mode and horizon (every
# seed of the row then uses the choice): DLinear's preset (lr 0.005, cosine; chosen at ETTh1 H=96) and the
# paper's per-file recipes (lr 0.005 for ETTh1, 0.05 for ETTh2, halved after every epoch) crossed. At
# H=720 the preset's lr left DLinear 16-28 % behind the published figures.
HALVING = ["trainer.scheduler=exponential", "trainer.exponential_gamma=0.5", "trainer.exponential_hold=1"]
RECIPES = {"dlinear": {"lr 0.005, cosine": [], "lr 0.05, cosine": ["trainer.lr=0.05"],
                       "lr 0.005, halved per epoch": HALVING,
                       "lr 0.05, halved per epoch": [*HALVING, "trainer.lr=0.05"]}}
# Trained first at H=96 with every seed (the subject and its yardsticks); SLOW (an epoch of the
# recurrent model over 336 steps costs ~15x DLinear's on one thread) is trained once per file at H=96
# before anything else of it.
CORE = {"naive", "dlinear", "patchtst"}
SLOW = {"lstm_ci_336"}
# Within a priority stage, trained in this order; the table keeps MODELS' order.
LONG_MODELS = ["naive", "dlinear", "patchtst", "lstm_ci", "lstm_ci_336"]
ABLATION_MODELS = ["naive", "dlinear", "lstm", "lstm_revin", "lstm_tuned", "lstm_ci"]
# --smoke: one epoch of one model per preset, on ETTh1 M H=96 with two seeds.
SMOKE = ["trainer.max_epochs=1"]
SMOKE_MODELS = ["naive", "dlinear", "patchtst", "lstm_revin"]
# Test MSE / MAE (look-back, MSE, MAE) on the standardised scale, mode M unless stated, under the same
# protocol except that the published loaders drop the test set's last partial batch (ours counts every
# window). DLinear and "Repeat" (the last value repeated): Zeng et al., "Are Transformers Effective for
# Time Series Forecasting?", AAAI 2023 (arXiv:2205.13504), Table 2, and Table 9 of its appendix
# (univariate, mode S). PatchTST/42 (look-back 336) and PatchTST/64 (look-back 512): Nie et al., "A Time
# Series is Worth 64 Words", ICLR 2023, Table 3.
PUBLISHED = {
    ("ETTh1", "M", 96): {"DLinear (Zeng et al. 2023)": (336, 0.375, 0.399),
                         "PatchTST/42 (Nie et al. 2023)": (336, 0.375, 0.399),
                         "PatchTST/64 (Nie et al. 2023)": (512, 0.370, 0.400),
                         "Repeat (Zeng et al. 2023)": (336, 1.295, 0.713)},
    ("ETTh1", "M", 192): {"DLinear (Zeng et al. 2023)": (336, 0.405, 0.416),
                          "PatchTST/42 (Nie et al. 2023)": (336, 0.414, 0.421),
                          "PatchTST/64 (Nie et al. 2023)": (512, 0.413, 0.429)},
    ("ETTh1", "M", 336): {"DLinear (Zeng et al. 2023)": (336, 0.439, 0.443),
                          "PatchTST/42 (Nie et al. 2023)": (336, 0.431, 0.436),
                          "PatchTST/64 (Nie et al. 2023)": (512, 0.422, 0.440)},
    ("ETTh1", "M", 720): {"DLinear (Zeng et al. 2023)": (336, 0.472, 0.490),
                          "PatchTST/42 (Nie et al. 2023)": (336, 0.449, 0.466),
                          "PatchTST/64 (Nie et al. 2023)": (512, 0.447, 0.468)},
    ("ETTh2", "M", 96): {"DLinear (Zeng et al. 2023)": (336, 0.289, 0.353),
                         "PatchTST/42 (Nie et al. 2023)": (336, 0.274, 0.336),
                         "PatchTST/64 (Nie et al. 2023)": (512, 0.274, 0.337),
                         "Repeat (Zeng et al. 2023)": (336, 0.432, 0.422)},
    ("ETTh2", "M", 192): {"DLinear (Zeng et al. 2023)": (336, 0.383, 0.418),
                          "PatchTST/42 (Nie et al. 2023)": (336, 0.339, 0.379),
                          "PatchTST/64 (Nie et al. 2023)": (512, 0.341, 0.382)},
    ("ETTh2", "M", 336): {"DLinear (Zeng et al. 2023)": (336, 0.448, 0.465),
                          "PatchTST/42 (Nie et al. 2023)": (336, 0.331, 0.380),
                          "PatchTST/64 (Nie et al. 2023)": (512, 0.329, 0.384)},
    ("ETTh2", "M", 720): {"DLinear (Zeng et al. 2023)": (336, 0.605, 0.551),
                          "PatchTST/42 (Nie et al. 2023)": (336, 0.379, 0.422),
                          "PatchTST/64 (Nie et al. 2023)": (512, 0.379, 0.422)},
    ("ETTh1", "S", 96): {"DLinear (Zeng et al. 2023)": (336, 0.056, 0.180)},
    ("ETTh2", "S", 96): {"DLinear (Zeng et al. 2023)": (336, 0.131, 0.279)},
}
# The stretch targets of the issue: test MSE of the model chosen on validation, mode M, H=96.
TARGETS = {"ETTh1": 0.370, "ETTh2": 0.275}
# A table row: (model, data, mode, horizon); a job is a row and a seed.
Row = tuple[str, str, str, int]


def overrides(model: str, data: str, features: str, horizon: int, seed: int) -> list[str]:
    """The run as the table was made: fp32 on the CPU (the presets leave the device to hardware=auto)."""
    preset, extra, _ = MODELS[model]
    return [f"experiment={preset}", f"data.name={data}", f"data.features={features}", f"data.horizon={horizon}",
            f"seed={seed}", "hardware=cpu", "hardware.threads=1", "trainer.progress_bar=false", *extra]


def grid(models: list[str], datasets: list[str], modes: list[str], horizons: list[int], seeds: list[int],
         other_seeds: list[int]) -> list[tuple[Row, int]]:
    """`seeds` at H=96 and `other_seeds` at the longer horizons, in the order `priority` trains them."""
    jobs = []
    for model in models:
        for features in modes:
            if features != "M" and model in MULTIVARIATE_ONLY:
                continue
            for horizon in horizons:
                runs = seeds if horizon == HORIZONS[0] else other_seeds
                runs = runs[:1] if model == "naive" else runs  # the naive forecast is deterministic
                jobs += [((model, data, features, horizon), seed) for seed in runs for data in datasets]
    return sorted(jobs, key=lambda job: priority(job, models, seeds))


def priority(job: tuple[Row, int], models: list[str], seeds: list[int]) -> tuple[int, int]:
    """What a study cut short should hold: the baselines and PatchTST at H=96 over all seeds, then each
    slow model at H=96 once, the other seeds at H=96, the longer horizons; the slowest model's extra
    runs last."""
    (model, _, _, horizon), seed = job
    first, extra = horizon == HORIZONS[0], seed != seeds[0]
    if model in SLOW:
        stage = 1 if first and not extra else 4 if first else 5
    else:
        stage = 0 if first and model in CORE else 1 if first and not extra else 2 if first else 3
    return stage, models.index(model)


def run_of(row: Row, seed: int, recipe: list[str], study: str, extra: list[str]) -> Run:
    return Run(study, (*overrides(*row, seed), *recipe, *extra))


def chosen_recipes(rows: list[Row], seed: int, study: str, extra: list[str], workers: int,
                   train: bool) -> dict[Row, str]:
    """For each row of a model with RECIPES, the recipe whose run with `seed` has the lowest validation MSE
    (each recipe trained first, unless `train` is off: then among those that finished)."""
    candidates = {row: {name: run_of(row, seed, recipe, study, extra) for name, recipe in RECIPES[row[0]].items()}
                  for row in rows if row[0] in RECIPES}
    if train:
        launch_all([run for runs in candidates.values() for run in runs.values()], workers)
    finished = {row: {name: run.metrics()["val_mse_scaled"] for name, run in runs.items() if run.finished}
                for row, runs in candidates.items()}
    return {row: min(val, key=val.get) for row, val in finished.items() if val}


def results(jobs: list[tuple[Row, int]], study: str, extra: list[str], workers: int,
            train: bool) -> tuple[dict[Row, list[dict]], dict[Row, str]]:
    """Each row's metrics.json over its seeds, training the jobs not finished before (or leaving them out),
    and the recipe each row with RECIPES chose on validation."""
    jobs = list(dict.fromkeys(jobs))
    recipes = chosen_recipes(list(dict.fromkeys(row for row, _ in jobs)), min(seed for _, seed in jobs), study,
                             extra, workers, train)
    jobs = [(row, seed) for row, seed in jobs if row[0] not in RECIPES or row in recipes]
    runs = {(row, seed): run_of(row, seed, RECIPES[row[0]][recipes[row]] if row in recipes else [], study, extra)
            for row, seed in jobs}
    if not train:
        runs = {job: run for job, run in runs.items() if run.finished}
    found: dict[Row, list[dict]] = {}
    for (row, _), metrics in zip(runs, launch_all(list(runs.values()), workers), strict=True):
        found.setdefault(row, []).append(metrics)
    return found, recipes


def lookback(row: Row) -> int:
    """The look-back the row's preset sets (composed, not trained)."""
    return int(dl_core.compose(*overrides(*row, seed=0)).data.sequence_length)


def mean_of(runs: list[dict], key: str) -> float:
    return spread(m[key] for m in runs).mean


def table(found: dict[Row, list[dict]], recipes: dict[Row, str]) -> str:
    rows = []
    order = {model: i for i, model in enumerate(MODELS)}
    settings = sorted({row[1:] for row in found}, key=lambda s: (s[0], s[1] != "M", s[2]))
    for data, features, horizon in settings:
        for model in sorted({row[0] for row in found if row[1:] == (data, features, horizon)}, key=order.get):
            runs = found[(model, data, features, horizon)]
            trained = model != "naive"
            epochs = f"{mean_of(runs, 'epochs'):.1f} ({mean_of(runs, 'best_epoch'):.1f})" if trained else "–"
            per_epoch = f"{spread(m['train_time_s'] / m['epochs'] for m in runs).mean:.0f}" if trained else "–"
            recipe = recipes.get((model, data, features, horizon))
            label = f"{MODELS[model][2]}, {recipe}" if recipe else MODELS[model][2]
            rows.append([data, features, horizon, label, lookback((model, data, features, horizon)),
                         len(runs), f"{spread(m['val_mse_scaled'] for m in runs):.3f}",
                         f"{spread(m['test_mse_scaled'] for m in runs):.3f}",
                         f"{spread(m['test_mae_scaled'] for m in runs):.3f}", epochs, per_epoch])
        for source, (length, mse, mae) in PUBLISHED.get((data, features, horizon), {}).items():
            rows.append([data, features, horizon, f"{source}, published", length, "–", "–", f"{mse:.3f}",
                         f"{mae:.3f}", "–", "–"])
    return markdown_table(["data", "mode", "H", "model", "look-back", "seeds", "val MSE", "test MSE", "test MAE",
                           "epochs (best)", "s/epoch"], rows)


def comparisons(found: dict[Row, list[dict]]) -> str:
    """What the table is for: ours against the published figures, each LSTM against DLinear, and the
    model that validation picks."""

    def mean_mse(model: str, setting: tuple[str, str, int]) -> float | None:
        runs = found.get((model, *setting))
        return mean_of(runs, "test_mse_scaled") if runs else None

    lines = []
    for setting in sorted({row[1:] for row in found}, key=lambda s: (s[0], s[1] != "M", s[2])):
        data, features, horizon = setting
        label = f"{data} {features} H={horizon}"
        for model, source in (("dlinear", "DLinear (Zeng et al. 2023)"), ("patchtst", "PatchTST/42 (Nie et al. 2023)")):
            ours, published = mean_mse(model, setting), PUBLISHED.get(setting, {}).get(source)
            if ours is not None and published is not None:
                lines.append(f"- {label}: {MODELS[model][2]} test MSE {ours:.3f} vs published {published[1]:.3f} "
                             f"({100 * (ours / published[1] - 1):+.1f}%)")
        dlinear = mean_mse("dlinear", setting)
        for model in [name for name in MODELS if name.startswith(("lstm", "patchtst"))]:
            other = mean_mse(model, setting)
            if dlinear is not None and other is not None:
                verdict = "beats" if other < dlinear else "does not beat"
                lines.append(f"- {label}: {MODELS[model][2]} {verdict} DLinear: MSE {other:.3f} vs {dlinear:.3f} "
                             f"({100 * (other / dlinear - 1):+.1f}%)")
        candidates = {model: runs for (model, *rest), runs in found.items()
                      if tuple(rest) == setting and model != "naive"}
        if len(candidates) > 1:
            chosen = min(candidates, key=lambda model: mean_of(candidates[model], "val_mse_scaled"))
            test = mean_of(candidates[chosen], "test_mse_scaled")
            target = TARGETS.get(data) if (features, horizon) == ("M", HORIZONS[0]) else None
            verdict = "" if target is None else \
                f"; stretch target <= {target:.3f}: {'met' if test <= target else 'not met'}"
            lines.append(f"- {label}: lowest validation MSE of {len(candidates)} models: {MODELS[chosen][2]}, "
                         f"test MSE {test:.3f}{verdict}")
    return "\n".join(lines)


def cost(found: dict[Row, list[dict]]) -> str:
    """What the table took to train: the runs' own training seconds, summed, and as wall time two at a time."""
    runs = [m for metrics in found.values() for m in metrics]
    hours = sum(m["train_time_s"] for m in runs) / 3600
    return (f"Training time of the {len(runs)} runs above (each run's `train_time_s`, one CPU thread each): "
            f"{hours:.1f} h in all, about {hours / 2:.1f} h of wall time at `--workers 2` on the 2-core machine "
            f"that made them (other jobs shared it, so s/epoch varies between rows).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["ETTh1", "ETTh2"])
    parser.add_argument("--horizons", nargs="+", type=int, default=HORIZONS)
    parser.add_argument("--models", nargs="+", choices=list(MODELS),
                        help=f"default: {' '.join(LONG_MODELS)} (with --ablation also the LSTM variants)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="seeds at H=96")
    parser.add_argument("--other-seeds", nargs="+", type=int, default=[0], help="seeds at the longer horizons")
    parser.add_argument("--ablation", action="store_true",
                        help="also the H=96 LSTM variants in modes M and S (after the long-horizon grid)")
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once (one thread each)")
    parser.add_argument("--no-train", action="store_true", help="tabulate the finished runs only")
    parser.add_argument("--smoke", action="store_true",
                        help="one epoch per run, ETTh1 M H=96, seeds 0 1, in a study of its own (outputs/experiments/)")
    parser.add_argument("--readme", type=Path, nargs="?", const=README,
                        help="write the section into this file (default: experiments/README.md)")
    args = parser.parse_args()
    study, extra = (f"{STUDY}_smoke", SMOKE) if args.smoke else (STUDY, [])
    if args.smoke:
        args.datasets, args.horizons, args.seeds = ["ETTh1"], [HORIZONS[0]], [0, 1]
    jobs = grid(args.models or (SMOKE_MODELS if args.smoke else LONG_MODELS), args.datasets, ["M"], args.horizons,
                args.seeds, args.other_seeds)
    if args.ablation:
        jobs += grid(args.models or ABLATION_MODELS, args.datasets, ["M", "S"], [HORIZONS[0]], args.seeds, [])
    found, recipes = results(jobs, study, extra, args.workers, train=not args.no_train)
    text = f"{table(found, recipes)}\n\n{comparisons(found)}\n\n{cost(found)}"
    print(text)
    if args.readme:
        shown = [arg for arg in sys.argv[1:] if arg != "--no-train"]
        command = shlex.join(["python", "experiments/ett_benchmark.py", *shown])
        write_section(STUDY, f"{text}\n\nRegenerate (finished runs are reused from outputs/experiments/{study}/, "
                             f"`--no-train` tabulates only those): `{command}`", args.readme)


if __name__ == "__main__":
    main()
