#!/usr/bin/env bash
# Everything this project measures on one CUDA GPU, from one invocation (time on a GPU is short). Parts, in order:
#   auto       what hardware=auto chooses on this GPU for PatchTST/42 (experiment=ett_patchtst) and the ETT
#              table's best LSTM, with what it timed (metrics.json's hardware_probe): one epoch each.
#   capture    whole runs of both without and with step capture (hardware.compile=true
#              hardware.compile_mode=reduce-overhead: CUDA graphs), fp32: accuracy, samples/s over the run
#              (compiling included) and of the last epoch (steady state), from experiments/compare_runs.py.
#   packed     16 seeds of experiment=ett_patchtst (fp32) as one multirun, all 16 at once on the GPU (joblib
#              launcher, n_jobs=16: each run gets 1/16 of the GPU's memory and of the CPU's threads) against one
#              after another (basic launcher): wall time end to end and test MSE per seed
#              (experiments/packed_seeds.py).
#   precision  the earlier measurement (experiments/README.md, "On a GPU"): fp32 against bf16-mixed, the engine
#              against its floor and whole runs.
#     bash experiments/gpu_timing.sh                     # auto capture packed: about 8 minutes on an H200
#     bash experiments/gpu_timing.sh packed              # one part; PYTHON=... for another interpreter
# EPOCHS (default 10) caps the epochs of the capture and packed runs, to fit the GPU's time.
# Finished compare_runs runs are reused from outputs/experiments/compare_runs/ (DL_CORE_EXPERIMENT_RUNS moves it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python=${PYTHON:-python}
epochs=${EPOCHS:-10}
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(auto capture packed)
patchtst=(experiment=ett_patchtst hardware=gpu trainer.progress_bar=false)
lstm=(experiment=ett_lstm model.instance_norm=true model.num_layers=1 model.hidden_dim=67 model.dropout=0.164
      trainer.lr=0.0024 trainer.batch_size=128 model.channel_independent=true hardware=gpu trainer.progress_bar=false)
out=${OUT:-$(mktemp -d)}

for part in "${parts[@]}"; do
  echo "== $part"
  case $part in
    auto)
      for model in patchtst lstm; do
        declare -n args=$model
        "$python" train.py "${args[@]}" trainer.max_epochs=1 hardware.probe_cache=null "hydra.run.dir=$out/auto_$model"
        "$python" -c "import json, sys; m = json.load(open(sys.argv[1])); print(sys.argv[2], json.dumps(
            {k: m.get(k) for k in ('precision', 'threads', 'hardware_probe', 'train_samples_per_s')}, indent=1))" \
            "$out/auto_$model/metrics.json" "$model"
      done ;;
    capture)
      variants=(hardware.compile=false "hardware.compile=true hardware.compile_mode=reduce-overhead")
      "$python" experiments/compare_runs.py --seeds 0 --max-epochs "$epochs" --variants "${variants[@]}" -- \
          "${patchtst[@]}" hardware.precision=32
      "$python" experiments/compare_runs.py --seeds 0 --max-epochs "$epochs" --variants "${variants[@]}" -- \
          "${lstm[@]}" hardware.precision=32 ;;
    packed)
      "$python" experiments/packed_seeds.py --seeds 16 --rtol 1e-3 --out "$out/packed" -- \
          experiment=ett_patchtst hardware=gpu hardware.precision=32 "trainer.max_epochs=$epochs" ;;
    precision)
      precisions=(hardware.precision=32 hardware.precision=bf16-mixed)
      "$python" experiments/bench_throughput.py --device cuda --cases lstm patchtst --batch-sizes 128 \
          --precisions 32 bf16-mixed --train-samples 8192 --val-samples 2048 --repeats 3
      "$python" experiments/compare_runs.py --seeds 0 --max-epochs 100 --variants "${precisions[@]}" -- "${patchtst[@]}"
      "$python" experiments/compare_runs.py --seeds 0 --max-epochs 20 --variants "${precisions[@]}" -- "${lstm[@]}" ;;
    *)
      echo "unknown part $part: auto, capture, packed or precision" >&2
      exit 2 ;;
  esac
done
