#!/usr/bin/env bash
# Peak memory (RSS) and wall time of `savl upscale` on a 4000×3000 JPEG → 16000×12000 PNG.
#
# Issue 5's budget: ≤ 400 MB peak RSS. The PNG is streamed row by row, so the 576 MB output
# never exists in memory. Usage:
#
#   scripts/bench_memory.sh [extra savl upscale flags, e.g. --threads 4 --precision f32]
#
# Builds release, writes bench-out/big_WxH.jpg with examples/make_test_jpeg.rs, runs the upscale
# under GNU time (`/usr/bin/time -v`, installed with apt-get if missing) and prints the figures.
# BENCH_SIZE=WxH changes the input size (default 4000x3000); BENCH_PROFILE=dev uses the dev
# profile (optimised in this workspace) instead of release, to skip a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${BENCH_OUT:-bench-out}
mkdir -p "$out"

if ! [ -x /usr/bin/time ]; then
  echo "installing GNU time (/usr/bin/time)…" >&2
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq time) >&2
  else
    (sudo apt-get update -qq && sudo apt-get install -y -qq time) >&2
  fi
fi

size=${BENCH_SIZE:-4000x3000}
width=${size%x*}
height=${size#*x}
profile=${BENCH_PROFILE:-release}
case $profile in
  release) dir=target/release ;;
  dev) dir=target/debug ;;
  *) echo "BENCH_PROFILE must be release or dev" >&2; exit 2 ;;
esac
cargo build --profile "$profile" -p savl-cli --bin savl --example make_test_jpeg >&2
bin=$dir/savl
big="$out/big_${width}x${height}.jpg"
[ -f "$big" ] || "$dir/examples/make_test_jpeg" "$big" "$width" "$height"
rm -f "$out/big_x4.png"

/usr/bin/time -v "$bin" upscale "$big" -o "$out/big_x4.png" "$@" 2> "$out/time.txt" || {
  cat "$out/time.txt" >&2
  exit 1
}
rss_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$out/time.txt")
wall=$(awk '/Elapsed \(wall clock\) time/ {print $NF}' "$out/time.txt")
cpu_pct=$(awk -F: '/Percent of CPU this job got/ {gsub(/ /, "", $2); print $2}' "$out/time.txt")
threads=$(nproc)

echo "command:  $bin upscale $big -o $out/big_x4.png $*"
echo "input:    ${width}×${height} JPEG ($(du -h "$big" | cut -f1)), output $((width * 4))×$((height * 4)) PNG ($(du -h "$out/big_x4.png" | cut -f1))"
echo "peak RSS: $((rss_kb / 1024)) MiB ($((rss_kb * 1024 / 1000000)) MB, $rss_kb kB)"
echo "wall:     $wall (CPU $cpu_pct of $threads cores)"
if [ "$((rss_kb * 1024 / 1000000))" -gt 400 ]; then
  echo "over the 400 MB budget" >&2
  exit 2
fi
