#!/usr/bin/env bash
# PatchTST and the LSTM on one CUDA GPU, fp32 against bf16-mixed, from one invocation:
#  1. the engine's training throughput against its floor (experiments/bench_throughput.py --device cuda):
#     ETTh1, batch 128, samples/s of each variant;
#  2. whole training runs, fp32 and bf16-mixed side by side (experiments/compare_runs.py): PatchTST/42 as
#     `experiment=ett_patchtst` (ETTh1, H=96, early stopping) and the table's best LSTM (ett_benchmark.py's
#     BEST_LSTM: 1x67 + RevIN, tuned, channel-independent): accuracy, epochs and samples/s.
# Finished runs are reused from outputs/experiments/compare_runs/ (DL_CORE_EXPERIMENT_RUNS moves it).
#     bash experiments/gpu_timing.sh            # PYTHON=... for another interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python}
precisions=(hardware.precision=32 hardware.precision=bf16-mixed)

"$python" experiments/bench_throughput.py --device cuda --cases lstm patchtst --batch-sizes 128 \
    --precisions 32 bf16-mixed --train-samples 8192 --val-samples 2048 --repeats 3
"$python" experiments/compare_runs.py --seeds 0 --max-epochs 100 --variants "${precisions[@]}" -- \
    experiment=ett_patchtst hardware=gpu trainer.progress_bar=false
"$python" experiments/compare_runs.py --seeds 0 --max-epochs 20 --variants "${precisions[@]}" -- \
    experiment=ett_lstm model.instance_norm=true model.num_layers=1 model.hidden_dim=67 model.dropout=0.164 \
    trainer.lr=0.0024 trainer.batch_size=128 model.channel_independent=true hardware=gpu trainer.progress_bar=false
