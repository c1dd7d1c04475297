# Sourced by the runtime-comparison scripts (bench_vs_onnxruntime.sh, bench_vs_ncnn.sh): the
# shared environment defaults and the savl side's binary.
#
# Env: SIZES (128,256), THREADS (1,2), RUNS (5), ROUNDS (the caller's default), PROFILE
# (release; `dev` builds faster and runs tract at the same opt-level 3), SAVL_BIN (a
# bench_runtime binary to use instead of building one). Sets BIN to the bench_runtime binary.
SIZES=${SIZES:-128,256}
THREADS=${THREADS:-1,2}
RUNS=${RUNS:-5}
PROFILE=${PROFILE:-release}

if [ -n "${SAVL_BIN:-}" ]; then
  BIN=$SAVL_BIN
elif [ "$PROFILE" = release ]; then
  cargo build --release -p savl --example bench_runtime
  BIN=target/release/examples/bench_runtime
else
  cargo build -p savl --example bench_runtime
  BIN=target/debug/examples/bench_runtime
fi
