#!/usr/bin/env bash
# Time the savl runtime against onnxruntime on the same ONNX files and thread counts.
#
#   scripts/bench_vs_onnxruntime.sh [MODEL.onnx ...]
#
# Defaults: models/savl-lite-x4.onnx plus the peers in ../shared/peers (srmd_x4 is skipped: it
# takes a 19-channel input, not RGB). Env: ROUNDS (1), and those of scripts/bench_common.sh:
# SIZES (128,256), THREADS (1,2), RUNS (5), PROFILE (release), SAVL_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-1}

python3 -c "import onnxruntime, numpy" 2>/dev/null || python3 -m pip install -q onnxruntime numpy

source scripts/bench_common.sh

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
