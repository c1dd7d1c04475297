#!/usr/bin/env bash
# Validates the ONNX files savl ships and writes: onnx.checker, the I/O contract, and
# onnxruntime's output against tract's (via `savl-quantize run`), for f32, int8 and f16 files.
# Always checks a small generated model and its int8/f16 versions; also checks
# models/savl-lite-x4{,.int8,.f16}.onnx when present. Exit status non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import onnx, onnxruntime, numpy" 2>/dev/null; then
    "$PY" -m pip install --quiet onnxruntime numpy onnx
fi
cargo build -q -p savl-quantize --bin savl-quantize
BIN=target/debug/savl-quantize
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$BIN" testmodel -o "$TMP/small.onnx" --images "$TMP/calib"
"$BIN" int8 "$TMP/small.onnx" --calib "$TMP/calib" --downscale 1 --crop 32 -o "$TMP/small.int8.onnx" >/dev/null
"$BIN" fp16 "$TMP/small.onnx" -o "$TMP/small.f16.onnx" >/dev/null
"$BIN" fp16 "$TMP/small.onnx" --io-f16 -o "$TMP/small.f16io.onnx" >/dev/null
files=("$TMP/small.onnx" "$TMP/small.int8.onnx" "$TMP/small.f16.onnx" "$TMP/small.f16io.onnx")
for f in models/savl-lite-x4.onnx models/savl-lite-x4.int8.onnx models/savl-lite-x4.f16.onnx; do
    [[ -f "$f" ]] && files+=("$f")
done
"$PY" scripts/check_onnx.py "$BIN" "${files[@]}"
