#!/usr/bin/env bash
# Builds `savl-train` with the `cuda` feature on a machine without a CUDA toolkit or GPU driver,
# from pip wheels alone (how the H100 run in models/MODELS.md was built):
#
#   scripts/build_cuda_trainer.sh [OUT_BINARY]      # default: target-cuda/savl-train.xz
#
# - nvcc, its headers and the CUDA 13.0 libraries come from NVIDIA's pip wheels, installed into
#   CUDA_PIP (default ../cuda-pip);
# - libcuda.so (the driver) is not in any wheel, so the link uses a stub with the driver API's
#   symbols (soname libcuda.so.1); the machine that runs the binary supplies the real driver;
# - candle-kernels compiles its PTX and its quantized-matmul kernels for CUDA_COMPUTE_CAP (default
#   90: H100/H200), about 10 minutes on 2 cores;
# - the stripped binary is xz-compressed (≈ 14 MB) for the trip to the GPU machine, where
#   scripts/gpu_train.sh unpacks it and finds the CUDA libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_BIN=${1:-target-cuda/savl-train.xz}
CUDA_PIP=${CUDA_PIP:-$(cd .. && pwd)/cuda-pip}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
TARGET_DIR=${CARGO_TARGET_DIR:-target-cuda}

if [ ! -x "$CUDA_PIP/nvidia/cu13/bin/nvcc" ]; then
    python3 -m pip install -q --target "$CUDA_PIP" --no-deps \
        "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-runtime==13.0.*" \
        "nvidia-cuda-crt==13.0.*" "nvidia-cuda-nvrtc==13.0.*" "nvidia-cuda-cccl==13.0.*" \
        "nvidia-cublas==13.0.*" "nvidia-curand==10.4.*"
fi
export CUDA_HOME=$CUDA_PIP/nvidia/cu13
export PATH=$CUDA_HOME/bin:$PATH
lib=$CUDA_HOME/lib
for l in cublas cublasLt cudart curand nvrtc; do
    f=$(cd "$lib" && ls lib$l.so.* | grep -v alt | head -n 1)
    ln -sf "$f" "$lib/lib$l.so"
done
if [ ! -f "$lib/libcuda.so" ]; then
    # Every driver entry point cudarc may call, as an empty function: enough to link.
    stub=$(mktemp --suffix .c)
    src=$(cargo metadata --format-version 1 --features savl-train/cuda | python3 -c "
import json, sys
for p in json.load(sys.stdin)['packages']:
    if p['name'] == 'cudarc':
        print(p['manifest_path'].rsplit('/', 1)[0]); break")
    grep -o 'load::<_F>("[A-Za-z0-9_]*")' "$src/src/driver/sys/mod.rs" | sed 's/.*("\(.*\)")/\1/' |
        sort -u | sed 's/.*/void &(void) {}/' >"$stub"
    gcc -shared -fPIC -o "$lib/libcuda.so" -Wl,-soname,libcuda.so.1 "$stub"
    rm "$stub"
fi

cargo build -p savl-train --features cuda --target-dir "$TARGET_DIR"
mkdir -p "$(dirname "$OUT_BIN")"
strip -o "${OUT_BIN%.xz}" "$TARGET_DIR/debug/savl-train"
xz -6 -T2 -f "${OUT_BIN%.xz}"
ls -l "$OUT_BIN"
