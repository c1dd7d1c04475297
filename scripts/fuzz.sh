#!/usr/bin/env bash
# Coverage-guided fuzzing of savl with AFL++ through afl.rs (stable Rust): the targets of the
# savl-fuzz crate (fuzz/, feature `afl`) built by `cargo afl build`, seeded from fuzz/corpus/<target>/.
#   scripts/fuzz.sh [TARGET...]          default: decode_image load_model raw_frames capi_args
#   MINUTES=10 scripts/fuzz.sh           minutes per target (one target at a time)
# Needs cargo-afl (`cargo install cargo-afl`, which also builds AFL++). Findings go to
# fuzz/out/<target>/default/{crashes,hangs}; a line of statistics per target is printed.
# Inputs that crash or hang: replay with `$CARGO_TARGET_DIR/release/<target> < FILE` (default target/).
# An allocation over the 1 GB address-space limit (-m 1024) aborts and counts as a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${MINUTES:-10}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(decode_image load_model raw_frames capi_args)
command -v cargo-afl >/dev/null || { echo "needs cargo-afl: cargo install cargo-afl" >&2; exit 2; }
cargo afl build --release -p savl-fuzz --features afl --bins
bin_dir=${CARGO_TARGET_DIR:-target}/release
mkdir -p fuzz/out
for t in "${targets[@]}"; do
  out=fuzz/out/$t
  rm -rf "$out"
  AFL_SKIP_CPUFREQ=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 \
    cargo afl fuzz -i "fuzz/corpus/$t" -o "$out" -V $((minutes * 60)) -m 1024 -t 5000 \
    "$bin_dir/$t" > "$out.log" 2>&1 || { echo "$t: afl-fuzz failed, see $out.log"; continue; }
  printf '%s: ' "$t"
  awk -F' *: *' '/^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|edges_found|total_edges) / {printf "%s=%s ", $1, $2}' \
    "$out/default/fuzzer_stats"
  echo
done
