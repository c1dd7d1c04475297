#!/usr/bin/env bash
# Regenerates the evaluation tables of docs/EVAL.md (fragments in docs/eval/) and docs/compare.png.
#
#   scripts/eval_all.sh peers                 # bicubic + the ONNX peers (independent of savl)
#   scripts/eval_all.sh savl models/savl-lite-x4.onnx models/savl-lite-x4-noguide.onnx
#                                             # savl f32/int8/f16 (FULL, FULL.int8/.f16 if present)
#                                             # and the noguide ablation; probes; compare.png
#   F16=0 scripts/eval_all.sh savl …          # without the f16 rows (≈ 1 min per image on x86)
#
# Both then merge the tables into docs/EVAL.md (scripts/merge_eval.py); the prose is by hand.
# Run from the repository root with ../shared beside it. Heavy: `nice -n 10`, one thread per model.
set -euo pipefail
BIN=${BIN:-target/debug/savl-train}
OUT=docs/eval
mkdir -p "$OUT"
E=../shared/data/eval
run() { echo "+ $*" >&2; nice -n 10 "$BIN" "$@"; }
case "${1:-}" in
peers)
  for d in hetero homo bicubic; do
    rm -f "$OUT/peers-$d.md"
    run eval --set $E/set5,$E/set14 --degrade $d --seed 0 \
      --methods bicubic,span48,anime,general,srmd --srmd-sigma 0,10 --out-md "$OUT/peers-$d.md"
  done
  rm -f "$OUT/peers-real_lq.md"
  run eval --no-reference --set $E/real_lq --methods bicubic,span48,anime,general \
    --per-image --out-md "$OUT/peers-real_lq.md"
  ;;
savl)
  FULL=$2; NOGUIDE=$3
  base=${FULL%.onnx}
  models="savl=$FULL"
  [ -f "$base.int8.onnx" ] && models="$models,savl-int8=$base.int8.onnx"
  f16=0
  if [ "${F16:-1}" != 0 ] && [ -f "$base.f16.onnx" ]; then
    models="$models,savl-f16=$base.f16.onnx" f16=1
  fi
  models="$models,noguide=$NOGUIDE"
  for d in hetero homo bicubic; do
    rm -f "$OUT/savl-$d.md"
    run eval --set $E/set5,$E/set14 --degrade $d --seed 0 --methods models \
      --model "$models" --out-md "$OUT/savl-$d.md"
    # f16 is scored on the first 2 images only (x86 software kernel): f32 on the same 2.
    if [ $f16 = 1 ]; then
      run eval --set $E/set5,$E/set14 --degrade $d --seed 0 --methods models --limit 2 \
        --model "savl=$FULL" --out-md "$OUT/savl-$d.md"
    fi
  done
  rm -f "$OUT/savl-real_lq.md"
  run eval --no-reference --set $E/real_lq --methods models --model "savl=$FULL,noguide=$NOGUIDE" \
    --per-image --out-md "$OUT/savl-real_lq.md"
  rm -f "$OUT/probe.md"
  run probe --models "full=$FULL,deterministic=models/ablations/savl-lite-x4-deterministic.onnx,club=models/ablations/savl-lite-x4-club.onnx,noguide=$NOGUIDE" \
    --set $E/set14 --seed 0 --threads 2 --out-md "$OUT/probe.md"
  run compare --images $E/set14/baboon.png,$E/set14/comic.png,$E/set5/butterfly.png,$E/set14/zebra.png \
    --degrade hetero --seed 0 --size 96 --zoom 2 \
    --model "savl=$FULL,noguide=$NOGUIDE" --methods bicubic,models,span48,general,srmd --srmd-sigma 10 \
    -o docs/compare.png
  run compare --real --images $E/real_lq/0014.jpg,$E/real_lq/ADE_val_00000114.jpg \
    --size 128 --zoom 1 \
    --model "savl=$FULL,noguide=$NOGUIDE" --methods models,span48,general \
    -o docs/compare-real.png
  ;;
*) echo "usage: $0 peers | savl FULL.onnx NOGUIDE.onnx" >&2; exit 2 ;;
esac
python3 scripts/merge_eval.py
