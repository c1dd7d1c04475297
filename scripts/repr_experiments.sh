#!/usr/bin/env bash
# The representation and guidance experiments of models/MODELS.md ("Degradation awareness"):
# stage 0 (estimator + decoder alone) with the self and the twin LM lane, probed at checkpoints;
# fine-tunes of the shipped checkpoint with its own guidance, with the oracle's ground-truth
# maps, and with the twin stage-0 estimator frozen (stage B); then the candle evaluation of
# every checkpoint on hetero / homo / bicubic LR of Set5 and Set14.
# Usage: scripts/repr_experiments.sh [stage0|finetune|twin|eval]...  (default: all, in order)
# Runs go to runs/ (not in git); one rayon thread per run, niced.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${T:-target/release/savl-train}
[ -x "$T" ] || cargo build --release -p savl-train
S0_STEPS=${S0_STEPS:-1200}
FT_STEPS=${FT_STEPS:-500}
S0_CKPT=${S0_CKPT:-runs/s0-twin/ckpt-0000800.safetensors}
BASE="--data ../shared/data/train --preset lite --lr-crop 48 --seed 1 --no-usm --ema 0.99 --quiet --batch 16"
run() { RAYON_NUM_THREADS=1 nice -n 5 "$T" train $BASE "$@"; }

stage0() {
  for tg in self twin; do
    run --stage 0 --lm-target "$tg" --likelihood laplace --rec-weight 0.1 --kl-warmup 300 \
      --lr 1e-3 --warmup 50 --steps "$S0_STEPS" --checkpoint-every 200 \
      --probe-set ../shared/data/eval/set14 --probe-every 2 --out "runs/s0-$tg" &
  done
  wait
}

finetune() {
  FT="--clean-prob 0.3 --init-from models/savl-lite-x4.safetensors --steps $FT_STEPS --lr 3e-4 --warmup 20 --kl-warmup 0 --checkpoint-every 100"
  run $FT --ablation full --likelihood laplace --rec-weight 0.1 --out runs/ft-full &
  run $FT --ablation oracle --out runs/ft-oracle &
  wait
}

twin() {
  run --clean-prob 0.3 --init-from models/savl-lite-x4.safetensors --init-estimator-from "$S0_CKPT" \
    --stage b --steps "$FT_STEPS" --lr 3e-4 --warmup 20 --checkpoint-every 100 \
    --ablation full --likelihood laplace --rec-weight 0.1 --out runs/ft-twin-b
}

evaluate() {
  step=$(printf %07d "${EVAL_STEP:-$FT_STEPS}")
  C="shipped=models/savl-lite-x4.safetensors,ft-full=runs/ft-full/ckpt-$step.safetensors,ft-oracle=runs/ft-oracle/ckpt-$step.safetensors"
  [ -f "runs/ft-twin-b/ckpt-$step.safetensors" ] && C="$C,ft-twin-b=runs/ft-twin-b/ckpt-$step.safetensors"
  for d in hetero homo bicubic; do
    "$T" eval --set ../shared/data/eval/set5,../shared/data/eval/set14 --degrade "$d" --seed 0 \
      --methods bicubic,checkpoints --checkpoint "$C" --out-md docs/eval/guidance.md
  done
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(stage0 finetune twin eval)
for s in "${steps[@]}"; do
  case "$s" in
    stage0) stage0 ;;
    finetune) finetune ;;
    twin) twin ;;
    eval) evaluate ;;
    *) echo "unknown step $s" >&2; exit 2 ;;
  esac
done
