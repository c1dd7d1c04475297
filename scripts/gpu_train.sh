#!/usr/bin/env bash
# Trains the shipped `lite` model and its `noguide` ablation side by side on one CUDA GPU, for a
# fixed wall-clock budget, with the same flags, batch, crops and data order (same seed).
#
# Made for the device machine of this workplace (x86-64, CUDA 13 libraries from its PyTorch
# wheels, no Rust toolchain), but it runs on any Linux box with an NVIDIA GPU:
#
#   cargo build -p savl-train --features cuda     # nvcc 13 (pip: nvidia-cuda-nvcc), CUDA_COMPUTE_CAP=90
#   SAVL_TRAIN_BIN=target/debug/savl-train DATA=../shared/data/train BUDGET_S=450 scripts/gpu_train.sh
#
# Both runs start from scratch, or resume from FULL_CKPT and NOGUIDE_CKPT (checkpoints at one
# step; a warm restart of the cosine schedule to FROM+N steps).
#
# It first runs a short calibration (both models at once, CALIB steps, thrown away), then picks the
# number of steps that fits BUDGET_S at the measured pace, so the cosine schedule ends inside the
# budget.
# Results: $OUT_DIR/gpu-runs.tar (both runs' last checkpoint, train.csv and model.onnx) and the logs.
set -euo pipefail

BIN=${SAVL_TRAIN_BIN:-.devbin/savl-train}
DATA=${DATA:-.devdata/train}
FULL_CKPT=${FULL_CKPT:-}
NOGUIDE_CKPT=${NOGUIDE_CKPT:-}
BUDGET_S=${BUDGET_S:-450}
BATCH=${BATCH:-64}
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

# Calibration: both runs at once for CALIB steps.
calibrate() {
    prepare "$WORK/cal-full" "$FULL_CKPT"
    prepare "$WORK/cal-noguide" "$NOGUIDE_CKPT"
    RAYON_NUM_THREADS=$THREADS "$BIN" train "${F[@]}" "${FULL[@]}" --steps $((from + CALIB)) \
        --checkpoint-every 100000 "${RESUME[@]}" --out "$WORK/cal-full" >"$OUT_DIR/calib-full.log" 2>&1 &
    local p1=$!
    RAYON_NUM_THREADS=$THREADS "$BIN" train "${F[@]}" "${NOGUIDE[@]}" --steps $((from + CALIB)) \
        --checkpoint-every 100000 "${RESUME[@]}" --out "$WORK/cal-noguide" >"$OUT_DIR/calib-noguide.log" 2>&1 &
    local p2=$! ok=0
    wait $p1 || { ok=1; head -n 3 "$OUT_DIR/calib-full.log"; }
    wait $p2 || { ok=1; head -n 3 "$OUT_DIR/calib-noguide.log"; }
    return $ok
}
t0=$(date +%s.%N)
if ! calibrate; then
    # Stream-ordered allocation (memory pools) can fail in virtual machines that report it
    # supported; cudarc then falls back to plain cuMemAlloc with this switch (patched cudarc).
    echo "gpu_train: calibration failed; again with CUDARC_NO_ASYNC_ALLOC=1"
    export CUDARC_NO_ASYNC_ALLOC=1
    t0=$(date +%s.%N)
    calibrate || exit 1
fi
t1=$(date +%s.%N)
tail -n 1 "$OUT_DIR/calib-full.log" "$OUT_DIR/calib-noguide.log"
# Pace: the slower run's median wall time per step (compute + data wait) over the last half.
pace=$(python3 - "$WORK/cal-full/train.csv" "$WORK/cal-noguide/train.csv" <<'EOF'
import csv, statistics, sys
worst = 0.0
for p in sys.argv[1:]:
    rows = list(csv.DictReader(open(p)))[-max(5, len(list(open(p))) // 2):]
    worst = max(worst, statistics.median(float(r["step_s"]) + float(r["wait_s"]) for r in rows))
print(f"{worst:.4f}")
EOF
)
overhead=$(python3 -c "print(max(0.0, $t1 - $t0 - $CALIB * $pace))")
steps=$(python3 -c "print(int(($BUDGET_S - $overhead - 20) / $pace))")
echo "calibration: ${pace}s per step with both runs, ${overhead}s start-up; training $steps steps"

prepare "$WORK/full" "$FULL_CKPT"
prepare "$WORK/noguide" "$NOGUIDE_CKPT"
every=$(((steps + 3) / 4))
# A run that overruns its budget is stopped (its last checkpoint still comes back).
RAYON_NUM_THREADS=$THREADS timeout $((BUDGET_S + 40)) "$BIN" train "${F[@]}" "${FULL[@]}" --steps $((from + steps)) \
    --checkpoint-every "$every" "${RESUME[@]}" --out "$WORK/full" >"$OUT_DIR/full.log" 2>&1 &
p1=$!
RAYON_NUM_THREADS=$THREADS timeout $((BUDGET_S + 40)) "$BIN" train "${F[@]}" "${NOGUIDE[@]}" --steps $((from + steps)) \
    --checkpoint-every "$every" "${RESUME[@]}" --out "$WORK/noguide" >"$OUT_DIR/noguide.log" 2>&1 &
p2=$!
# A line of progress a minute, from the logs, until both runs end.
(n=0
while kill -0 $p1 2>/dev/null || kill -0 $p2 2>/dev/null; do
    sleep 5
    n=$((n + 5))
    if [ $((n % 60)) = 0 ]; then
        for r in full noguide; do echo "$r: $(tail -n 1 "$WORK/$r/train.csv" 2>/dev/null)"; done
    fi
done) &
ticker=$!
s1=0 s2=0
wait $p1 || s1=$?
wait $p2 || s2=$?
wait $ticker || true
tail -n 2 "$OUT_DIR/full.log" "$OUT_DIR/noguide.log"
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv || true
(cd "$WORK" && tar cf "$OUT_DIR/gpu-runs.tar" --ignore-failed-read \
    full/last.safetensors full/train.csv full/model.onnx \
    noguide/last.safetensors noguide/train.csv noguide/model.onnx)
echo "full exit $s1, noguide exit $s2; wall $(python3 -c "import time;print(round(time.time()-$t0))")s"
[ "$s1" = 0 ] && [ "$s2" = 0 ]
