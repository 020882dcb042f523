"""California Housing: every table model of the harness over several seeds, beside the published figures.

    nice -n 5 python experiments/california_tabular.py --seeds 0 1 2 --readme -- hardware=cpu hardware.threads=1

Each run is `train.py experiment=california_<model> seed=S <overrides>`, launched through the dl_core
API by experiments/common.py into outputs/experiments/california_tabular/ (a finished run is reused,
a killed one continues from its last checkpoint, so the script can be stopped and started again).
Test RMSE in $100k is the harness's own evaluation of the best-validation model (each run's
metrics.json); the table shows mean ± std over the seeds, the training time and the learned
parameters (leaf values and splits for the trees) beside the published single-model figure (mean of
15 seeds on the papers' split, from the authors' result files). With --readme it is written between
the "california_tabular" markers of experiments/README.md. --models picks rows; --feature-sets adds a
second table of those models on each feature set, `data=california_housing` (the raw columns) and
`data=california_housing_households` (scikit-learn's eight per-household features, which the papers used),
with validation and test RMSE: the evidence a preset's feature set was chosen on; --finished-only
tabulates what has finished without training anything; --smoke trains each model for a moment into
a study of its own, to check the script.
"""

from __future__ import annotations

from common import Run, launch_all, markdown_table, seed_arguments, spread, write_run_section

STUDY = "california_tabular"
# model -> (label, published test RMSE and which configuration it is): Gorishniy et al. 2021 (FT-T default),
# 2024 (TabR paper: GBDT default and tuned), 2025 (TabM paper), as ANCHORS.md lists them.
MODELS = {
    "mlp": ("MLP", "0.4990 (tuned)"),
    "resnet": ("ResNet", "–"),
    "ft_transformer": ("FT-Transformer (default)", "0.4688 (default)"),
    "tabm": ("TabM", "0.4414 (tuned); TabM-mini + piecewise-linear 0.4275 (tuned)"),
    "catboost": ("CatBoost", "0.4334 (default) / 0.4294 (tuned)"),
    "xgboost": ("XGBoost", "0.4707 (default) / 0.4327 (tuned)"),
    "lightgbm": ("LightGBM", "0.4352 (tuned)"),
}
SMOKE = {"mlp": ["trainer.max_epochs=1"], "resnet": ["trainer.max_epochs=1"],
         "ft_transformer": ["trainer.max_epochs=1", "model.n_blocks=1", "model.d_block=16",
                            "model.attention_n_heads=2"],
         "tabm": ["trainer.max_epochs=1", "model.k=4", "model.d_block=32"],
         "catboost": ["model.n_estimators=20"], "xgboost": ["model.n_estimators=20"],
         "lightgbm": ["model.n_estimators=20"]}
# data option -> what the feature-set table calls it
FEATURE_SETS = {"california_housing": "raw columns + ocean_proximity",
                "california_housing_households": "per-household (scikit-learn's eight)"}


def runs_of(model: str, seeds: list[int], smoke: bool, overrides: list[str]) -> list[Run]:
    study = f"{STUDY}_smoke" if smoke else STUDY
    extra = SMOKE[model] if smoke else []
    return [Run(study, (f"experiment=california_{model}", f"seed={seed}", "trainer.progress_bar=false", *extra,
                        *overrides)) for seed in seeds]


def row(model: str, metrics: list[dict]) -> list[object]:
    label, published = MODELS[model]
    rmse = spread(m["test_rmse"] for m in metrics)
    seconds = spread(m["train_time_s"] for m in metrics)
    epochs = spread(m["epochs"] for m in metrics)
    return [label, rmse.n, f"{rmse:.4f}", f"{spread(m['val_rmse'] for m in metrics).mean:.4f}",
            f"{seconds.mean:.0f}", f"{epochs.mean:.0f}", f"{spread(m['n_parameters'] for m in metrics).mean:,.0f}",
            published]


def table(found: dict[str, list[dict]]) -> str:
    header = ["model", "seeds", "test RMSE ($100k), mean ± std", "val RMSE", "train time (s)", "epochs / rounds",
              "parameters", "published (papers' split, 15 seeds)"]
    return markdown_table(header, [row(model, metrics) for model, metrics in found.items() if metrics])


def feature_set_table(found: dict[str, dict[str, list[dict]]]) -> str:
    """Per model, each feature set's validation and test RMSE; the lower validation RMSE is the choice."""
    rows = []
    for model, by_set in found.items():
        val = {name: spread(m["val_rmse"] for m in metrics).mean for name, metrics in by_set.items() if metrics}
        for name, metrics in by_set.items():
            if metrics:
                chosen = "**chosen**" if len(val) == len(FEATURE_SETS) and val[name] == min(val.values()) else ""
                rows.append([MODELS[model][0], f"`data={name}`: {FEATURE_SETS[name]}", len(metrics),
                             f"{val[name]:.4f}", f"{spread(m['test_rmse'] for m in metrics):.4f}", chosen])
    return markdown_table(["model", "features", "seeds", "val RMSE", "test RMSE, mean ± std", "on validation"], rows)


def main() -> None:
    parser = seed_arguments(__doc__, "each model for a moment, in a study of its own")
    parser.add_argument("--models", nargs="*", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--feature-sets", nargs="*", choices=list(MODELS), default=[],
                        help="also these models on each feature set (data=...), in a second table")
    parser.add_argument("--finished-only", action="store_true",
                        help="tabulate the runs that finished, train none (a row shows how many seeds it has)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to every run (after --)")
    args = parser.parse_args()
    def collect(models: list[str], overrides: list[str]) -> dict[str, list[dict]]:
        found = {}
        for model in models:
            runs = runs_of(model, args.seeds, args.smoke, overrides)
            found[model] = ([run.metrics() for run in runs if run.finished] if args.finished_only
                            else launch_all(runs, args.workers))
        return found

    tables = [table(collect(args.models, args.overrides))] if args.models else []
    if args.feature_sets:
        found = {model: {name: collect([model], [f"data={name}", *args.overrides])[model] for name in FEATURE_SETS}
                 for model in args.feature_sets}
        tables.append(f"Feature sets (`--feature-sets`), chosen on validation RMSE:\n\n{feature_set_table(found)}")
    text = "\n\n".join(tables)
    print(text)
    if args.readme:
        write_run_section(STUDY, text, args.readme)


if __name__ == "__main__":
    main()
