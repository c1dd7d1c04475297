#!/usr/bin/env bash
# Turns the final checkpoints of the two training runs into the shipped models/ files:
#   models/savl-lite-x4.onnx + .safetensors (full SAVL-lite, EMA weights),
#   models/savl-lite-x4-noguide.onnx (the no-guidance ablation, same budget),
#   models/savl-lite-x4.int8.onnx / .f16.onnx (scripts/make_quantized_models.sh),
#   tests/golden/arch_parity_*.f32 (x86 goldens for the cross-architecture test),
#   docs/loss_curves.png.
#
#   scripts/ship_models.sh FULL_RUN_DIR NOGUIDE_RUN_DIR STEP
set -euo pipefail
cd "$(dirname "$0")/.."
FULL=$1; NOGUIDE=$2; STEP=$(printf %07d "$3")
cargo build -q -p savl-train --bin savl-train
T=target/debug/savl-train
cp "$FULL/ckpt-$STEP.safetensors" models/savl-lite-x4.safetensors
$T export models/savl-lite-x4.safetensors -o models/savl-lite-x4.onnx
$T export "$NOGUIDE/ckpt-$STEP.safetensors" -o models/savl-lite-x4-noguide.onnx
SAVL_QUANT_FORM=${SAVL_QUANT_FORM:-integer} scripts/make_quantized_models.sh
SAVL_BLESS=1 cargo test -q -p savl --test arch_parity
python3 scripts/plot_losses.py docs/loss_curves.png full="$FULL" noguide="$NOGUIDE"
