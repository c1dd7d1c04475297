#!/usr/bin/env bash
# Paired wall-clock runs of two `savl` binaries, alternating A and B so that load from other
# processes falls on both alike:
#
#   scripts/bench_pair.sh OLD_SAVL NEW_SAVL [ROUNDS] [-- extra upscale args]
#
# Each round runs `BIN upscale assets/sample.png -o TMP --force -q -j 1` once per binary (the
# embedded model: load, plan, one tile, PNG out). Prints the median seconds of each and B/A.
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-15}
shift $(( $# >= 3 ? 3 : 2 ))
[ "${1:-}" = "--" ] && shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {
  local t0 t1
  t0=$(date +%s.%N)
  "$1" upscale assets/sample.png -o "$tmp/out.png" --force -q -j 1 "${@:2}"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}
"$a" upscale assets/sample.png -o "$tmp/a.png" -q -j 1 "$@"
"$b" upscale assets/sample.png -o "$tmp/b.png" -q -j 1 "$@"
cmp "$tmp/a.png" "$tmp/b.png" && echo "outputs identical"
for _ in $(seq "$rounds"); do
  echo "A $(run "$a" "$@")" >> "$tmp/times"
  echo "B $(run "$b" "$@")" >> "$tmp/times"
done
med() { grep "^$1 " "$tmp/times" | cut -d' ' -f2 | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ma=$(med A) mb=$(med B)
echo "A $a: median ${ma} s over $rounds runs"
echo "B $b: median ${mb} s over $rounds runs"
echo "B/A: $(echo "scale=3; $mb / $ma" | bc)"
