#!/usr/bin/env bash
# Time the savl runtime against onnxruntime on the same ONNX files and thread counts.
#
#   scripts/bench_vs_onnxruntime.sh [MODEL.onnx ...]
#
# Defaults: models/savl-lite-x4.onnx plus the peers in ../shared/peers (srmd_x4 is skipped: it
# takes a 19-channel input, not RGB). Env: SIZES (128,256), THREADS (1,2), RUNS (5),
# ROUNDS (1), PROFILE (release; `dev` builds faster and runs tract at the same opt-level 3).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-128,256}
THREADS=${THREADS:-1,2}
RUNS=${RUNS:-5}
ROUNDS=${ROUNDS:-1}
PROFILE=${PROFILE:-release}

python3 -c "import onnxruntime, numpy" 2>/dev/null || python3 -m pip install -q onnxruntime numpy

if [ "$PROFILE" = release ]; then
  cargo build --release -p savl --example bench_runtime
  BIN=target/release/examples/bench_runtime
else
  cargo build -p savl --example bench_runtime
  BIN=target/debug/examples/bench_runtime
fi

if [ "$#" -gt 0 ]; then
  MODELS=("$@")
else
  MODELS=()
  [ -f models/savl-lite-x4.onnx ] && MODELS+=(models/savl-lite-x4.onnx)
  PEERS=${PEERS:-../shared/peers}
  [ -d "$PEERS" ] || PEERS=../shared/peers
  for m in spanx4_ch48 spanx4_ch52 realesr-animevideov3-x4 realesr-general-x4v3; do
    [ -f "$PEERS/$m.onnx" ] && MODELS+=("$PEERS/$m.onnx")
  done
fi

nproc | xargs echo "cores:"
python3 scripts/bench_vs_onnxruntime.py --savl-bin "$BIN" --models "${MODELS[@]}" \
  --sizes "$SIZES" --threads "$THREADS" --runs "$RUNS" --rounds "$ROUNDS"
