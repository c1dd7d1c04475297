#!/usr/bin/env bash
# Trains the shipped `lite` model and its `noguide` ablation one after the other on one CUDA GPU,
# in a fixed wall-clock budget, with the same flags, batch, crops and data order (same seed).
#
# Made for the device machine of this workplace (x86-64, CUDA 13 libraries from its PyTorch
# wheels, no Rust toolchain), but it runs on any Linux box with an NVIDIA GPU:
#
#   CUDA_COMPUTE_CAP=90 cargo build -p savl-train --features cuda   # needs nvcc (models/MODELS.md)
#   SAVL_TRAIN_BIN=target/debug/savl-train DATA=../shared/data/train BUDGET_S=450 BATCH=24 \
#     scripts/gpu_train.sh
#
# Both runs start from scratch, or resume from FULL_CKPT and NOGUIDE_CKPT (checkpoints at one
# step; a warm restart of the cosine schedule to FROM+N steps).
#
# It first runs a short calibration (each model for CALIB steps, thrown away), then picks the
# number of steps that fits BUDGET_S at the measured pace, so the cosine schedule ends inside the
# budget.
# Results: $OUT_DIR/gpu-runs.tar (both runs' last checkpoint, train.csv and model.onnx) and the logs.
set -euo pipefail

BIN=${SAVL_TRAIN_BIN:-.devbin/savl-train}
DATA=${DATA:-.devdata/train}
FULL_CKPT=${FULL_CKPT:-}
NOGUIDE_CKPT=${NOGUIDE_CKPT:-}
BUDGET_S=${BUDGET_S:-450}
BATCH=${BATCH:-24}
CALIB=${CALIB:-40}
THREADS=${THREADS:-$(($(nproc) / 2))}
OUT_DIR=${OUT:-${OUT_DIR:-gpu-out}}
WORK=${WORK:-/tmp/savl-gpu}
mkdir -p "$OUT_DIR" "$WORK"

if [ ! -x "$BIN" ] && [ -f "$BIN.xz" ]; then
    python3 -c "import lzma,shutil,sys;shutil.copyfileobj(lzma.open(sys.argv[1]),open(sys.argv[2],'wb'))" "$BIN.xz" "$WORK/savl-train"
    chmod +x "$WORK/savl-train"
    BIN=$WORK/savl-train
fi
# The CUDA libraries the binary links (cudarc's dynamic linking): wherever the machine keeps them.
nvdir=$(python3 -c "import nvidia, os; print(list(nvidia.__path__)[0])" 2>/dev/null || true)
libdirs=$({ find $nvdir /usr/local/nvidia /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64 \
    -maxdepth 3 \( -name 'libcublas.so.13' -o -name 'libcurand.so.10' -o -name 'libnvrtc.so.13' \
    -o -name 'libcudart.so.13' -o -name 'libcuda.so.1' \) -printf '%h\n' 2>/dev/null || true; } | sort -u | tr '\n' ':')
export LD_LIBRARY_PATH="${libdirs}${LD_LIBRARY_PATH:-}"
if ldd "$BIN" | grep 'not found'; then
    echo "gpu_train: $BIN misses the libraries above" >&2
    exit 1
fi
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv || true

F=(--data "$DATA" --preset lite --batch "$BATCH" --lr-crop 48 --seed 1 --lr 1e-3 --warmup 200
    --kl-warmup 300 --ema 0.999 --no-usm --quiet ${DEVICE_FLAG---cuda})
FULL=(--ablation full --likelihood laplace --rec-weight 0.1)
NOGUIDE=(--ablation noguide)

# prepare DIR CKPT: an empty run folder, or one that resumes from CKPT.
RESUME=()
prepare() {
    rm -rf "$1" && mkdir -p "$1"
    if [ -n "$2" ]; then cp "$2" "$1/last.safetensors"; fi
}
# The checkpoints' step, from the safetensors header.
step_of() {
    python3 -c "import json,struct,sys;f=open(sys.argv[1],'rb');n=struct.unpack('<Q',f.read(8))[0];print(json.loads(f.read(n))['__metadata__']['step'])" "$1"
}
from=0
if [ -n "$FULL_CKPT" ]; then
    from=$(step_of "$FULL_CKPT")
    RESUME=(--resume)
    if [ "$(step_of "$NOGUIDE_CKPT")" != "$from" ]; then
        echo "gpu_train: $FULL_CKPT and $NOGUIDE_CKPT are at different steps" >&2
        exit 1
    fi
fi
echo "checkpoints at step $from; batch $BATCH; $THREADS data threads per run; budget ${BUDGET_S}s"

# The two runs go one after the other, so each one's pace is measured alone and the two share no
# GPU or data threads. (An optimiser bug, fixed since, grew device memory every step until
# CUDA_ERROR_OUT_OF_MEMORY; the retries below are what is left of that hunt.)
#
# one NAME STEPS EVERY LIMIT: trains NAME (full or noguide; cal-* for the calibration) into
# $WORK/NAME for STEPS steps within LIMIT seconds; a failed attempt is retried twice, resuming
# from the last checkpoint when one was written.
one() {
    local name=$1 steps=$2 every=$3 limit=$4 dir=$WORK/$1 ckpt=$NOGUIDE_CKPT
    local args=("${NOGUIDE[@]}") res=("${RESUME[@]}")
    case $name in *full) ckpt=$FULL_CKPT args=("${FULL[@]}") ;; esac
    prepare "$dir" "$ckpt"
    local tries=3
    case $name in cal-*) tries=1 ;; esac
    for attempt in $(seq "$tries"); do
        if RAYON_NUM_THREADS=$THREADS timeout "$limit" "$BIN" train "${F[@]}" "${args[@]}" \
            --steps $((from + steps)) --checkpoint-every "$every" "${res[@]}" --out "$dir" \
            >>"$OUT_DIR/$name.log" 2>&1; then
            return 0
        fi
        echo "gpu_train: $name attempt $attempt failed: $(grep -m1 error "$OUT_DIR/$name.log" || true)"
        if [ -f "$dir/last.safetensors" ]; then res=(--resume); fi
        sleep 3
    done
    return 1
}
# pace CSV: median wall time per step (compute + data wait) over the last half of the rows.
pace() {
    python3 -c "
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
rows = rows[len(rows) // 2:]
print(f'{statistics.median(float(r[\"step_s\"]) + float(r[\"wait_s\"]) for r in rows):.4f}')
" "$1"
}

t0=$(date +%s.%N)
one cal-full "$CALIB" 100000 120 || exit 1
one cal-noguide "$CALIB" 100000 120 || exit 1
t1=$(date +%s.%N)
tail -n 1 "$OUT_DIR/cal-full.log" "$OUT_DIR/cal-noguide.log"
pf=$(pace "$WORK/cal-full/train.csv")
pn=$(pace "$WORK/cal-noguide/train.csv")
startup=$(python3 -c "print(max(2.0, ($t1 - $t0 - $CALIB * ($pf + $pn)) / 2))")
steps=$(python3 -c "print(int(($BUDGET_S - 2 * $startup - 20) / ($pf + $pn)))")
echo "calibration: full ${pf}s, noguide ${pn}s per step, ${startup}s start-up per run; $steps steps each"

every=$(((steps + 3) / 4))
lim_full=$(python3 -c "print(int($startup + $steps * $pf * 1.25 + 30))")
s1=0 s2=0
one full "$steps" "$every" "$lim_full" || s1=$?
echo "full: $(tail -n 1 "$WORK/full/train.csv")"
left=$(python3 -c "import time; print(max(30, int($BUDGET_S + 30 - (time.time() - $t1))))")
one noguide "$steps" "$every" "$left" || s2=$?
echo "noguide: $(tail -n 1 "$WORK/noguide/train.csv")"
tail -n 2 "$OUT_DIR/full.log" "$OUT_DIR/noguide.log"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv || true
(cd "$WORK" && tar cf "$OUT_DIR/gpu-runs.tar" --ignore-failed-read \
    full/last.safetensors full/train.csv full/model.onnx \
    noguide/last.safetensors noguide/train.csv noguide/model.onnx)
echo "full exit $s1, noguide exit $s2; wall $(python3 -c "import time;print(round(time.time()-$t0))")s"
[ "$s1" = 0 ] && [ "$s2" = 0 ]
