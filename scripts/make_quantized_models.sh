#!/usr/bin/env bash
# Regenerates models/savl-lite-x4.int8.onnx and models/savl-lite-x4.f16.onnx from the current
# f32 model, and their accuracy report (quantize/report-latest.txt).
#
#   scripts/make_quantized_models.sh [F32_MODEL] [CALIB_DIR] [EVAL_HR_DIR...]
#
# Defaults: models/savl-lite-x4.onnx, ../shared/data/train (calibration photographs,
# downscaled ×1/4 and cropped), ../shared/data/eval/set5 and set14 (HR; LR by bicubic ×1/4).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/savl-lite-x4.onnx}
CALIB=${2:-../shared/data/train}
shift $(( $# > 2 ? 2 : $# )) || true
EVAL=("$@")
[[ ${#EVAL[@]} -eq 0 ]] && EVAL=(../shared/data/eval/set5 ../shared/data/eval/set14)
BASE=${MODEL%.onnx}
INT8=$BASE.int8.onnx
F16=$BASE.f16.onnx
REPORT=quantize/report-latest.txt
METHOD=${SAVL_QUANT_METHOD:-mse}
POLICY=${SAVL_QUANT_POLICY:-auto}
FORM=${SAVL_QUANT_FORM:-qlinear}   # integer: ConvInteger + float rescale (faster in tract, see quantize/REPORT.md)

cargo build -q -p savl-quantize --bin savl-quantize
BIN=target/debug/savl-quantize
{
    echo "# savl-quantize report, $(date -u +%Y-%m-%dT%H:%MZ), f32 model $MODEL (sha256 $(sha256sum "$MODEL" | cut -c1-16))"
    echo
    echo "\$ savl-quantize int8 $MODEL --calib $CALIB --method $METHOD --policy $POLICY --form $FORM -o $INT8"
    "$BIN" int8 "$MODEL" --calib "$CALIB" --method "$METHOD" --policy "$POLICY" --form "$FORM" -o "$INT8"
    echo
    echo "\$ savl-quantize fp16 $MODEL -o $F16"
    "$BIN" fp16 "$MODEL" -o "$F16"
    for d in "${EVAL[@]}"; do
        echo
        echo "\$ savl-quantize report $MODEL $INT8 --hr $d"
        "$BIN" report "$MODEL" "$INT8" --hr "$d"
    done
    # f16 runs tract's software f16 kernel on x86 (~70x slower): centre crops of 48x48 LR.
    for d in "${EVAL[@]}"; do
        echo
        echo "\$ savl-quantize report $MODEL $F16 --hr $d --max-lr 48"
        "$BIN" report "$MODEL" "$F16" --hr "$d" --max-lr 48
    done
    echo
    echo "\$ cargo run -p savl-quantize --example bench_int8 -- $MODEL $INT8 128 7"
    cargo run -q -p savl-quantize --example bench_int8 -- "$MODEL" "$INT8" 128 7
    echo
    echo "\$ ls -l $MODEL $INT8 $F16"
    ls -l "$MODEL" "$INT8" "$F16" | awk '{print $5, $9}'
} 2>&1 | tee "$REPORT"
echo "wrote $INT8 $F16 $REPORT"
if grep -q "OVER BUDGET" "$REPORT"; then
    grep "OVER BUDGET" "$REPORT" >&2
    echo "error: a quantized file is over its accuracy budget (see $REPORT)" >&2
    exit 1
fi
