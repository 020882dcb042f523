"""California Housing with the FT-Transformer over several seeds, next to the published figure.

    python experiments/california_ft_transformer.py --paper-features --seeds 0 1 2 --workers 3 --readme \\
        -- hardware.threads=1 hardware.precision=32

Each seed is `train.py experiment=california_ft_transformer seed=S <overrides>`, launched through the
dl_core API by experiments/common.py into outputs/experiments/california_ft_transformer/ (a finished
run is reused, a killed one continues from its last checkpoint). Test RMSE / MAE / R² in $100k are
the harness's own evaluation of the best-validation weights (each run's metrics.json), printed per
seed and as mean ± std next to the published figure; with --readme they are written between the
"california_ft_transformer" markers of experiments/README.md. --smoke trains a one-block model for
two epochs into a study of its own, to check the script in a minute.

With --paper-features the runs read the eight features of scikit-learn's version of the data set,
which the paper used (MedInc, HouseAge, AveRooms, AveBedrms, Population, AveOccup, Latitude,
Longitude: per-household averages instead of block totals, no ocean_proximity):
`data=california_housing_households`, which derives them from data/california_housing.csv row by row.
"""

from __future__ import annotations

from common import Run, Spread, launch_all, markdown_table, seed_arguments, spread, write_run_section

STUDY = "california_ft_transformer"
# FT-Transformer, default configuration, single model: Gorishniy et al. 2021, Table 2 (~0.46-0.47).
PUBLISHED_RMSE = (0.46, 0.47)
SMOKE = ["trainer.max_epochs=2", "model.n_blocks=1", "model.d_block=16", "model.attention_n_heads=2"]


def seed_table(runs: dict[int, dict]) -> str:
    rows: list[list[object]] = [
        [seed, f"{m['test_rmse']:.4f}", f"{m['test_mae']:.4f}", f"{m['test_r2']:.4f}",
         f"{m['best_epoch']} / {m['epochs']}", f"{m['train_time_s']:.0f}"] for seed, m in runs.items()]
    rmse = spread(m["test_rmse"] for m in runs.values())
    rows.append(["**mean ± std**", f"**{rmse:.4f}**", f"{spread(m['test_mae'] for m in runs.values()).mean:.4f}",
                 f"{spread(m['test_r2'] for m in runs.values()).mean:.4f}", "", ""])
    low, high = PUBLISHED_RMSE
    rows.append(["published FT-Transformer (default), single model", f"~{low:.2f}–{high:.2f}", "", "", "", ""])
    return markdown_table(["seed", "test RMSE ($100k)", "test MAE", "test R²", "best epoch / epochs",
                           "train time (s)"], rows, right_aligned=True)


def against_published(runs: dict[int, dict]) -> str:
    """Where the mean falls against the published range, in $100k and in seed standard deviations."""
    rmse: Spread = spread(m["test_rmse"] for m in runs.values())
    low, high = PUBLISHED_RMSE
    gap = rmse.mean - high if rmse.mean > high else low - rmse.mean if rmse.mean < low else 0.0
    if gap == 0.0:
        where = "inside"
    else:
        side, end = ("above", "upper") if rmse.mean > high else ("below", "lower")
        bound = high if side == "above" else low
        spreads = f", {gap / rmse.std:.1f} standard deviations" if rmse.n > 1 else ""
        where = f"{gap:.4f} ({100 * gap / bound:.1f} %{spreads}) {side} the {end} end of"
    inside = sum(low <= m["test_rmse"] <= high for m in runs.values())
    per_epoch = [m["train_time_s"] / m["epochs"] for m in runs.values()]
    return (f"Mean test RMSE {rmse:.4f} over {rmse.n} seeds: {where} the published {low:.2f}–{high:.2f}; "
            f"{inside} of {rmse.n} seeds inside that range. Training took {min(per_epoch):.1f}–{max(per_epoch):.1f} s "
            f"per epoch per run.")


def main() -> None:
    parser = seed_arguments(__doc__, "a one-block model for two epochs, in a study of its own (outputs/experiments/)")
    parser.add_argument("--paper-features", action="store_true",
                        help="train on the eight per-household features of scikit-learn's version, as the paper did")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to every run (after --)")
    args = parser.parse_args()
    study, extra = (f"{STUDY}_smoke", SMOKE) if args.smoke else (STUDY, [])
    data = ["data=california_housing_households"] if args.paper_features else []
    runs = [Run(study, ("experiment=california_ft_transformer", f"seed={seed}", "trainer.progress_bar=false",
                        *data, *extra, *args.overrides)) for seed in args.seeds]
    found = dict(zip(args.seeds, launch_all(runs, args.workers), strict=True))
    text = f"{seed_table(found)}\n\n{against_published(found)}"
    print(text)
    if args.readme:
        write_run_section(STUDY, text, args.readme)


if __name__ == "__main__":
    main()
