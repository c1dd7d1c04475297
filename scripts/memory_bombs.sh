#!/usr/bin/env bash
# Peak RSS of `savl upscale` on every file of the bomb corpus (scripts/make_bombs.py): each must
# stay at or under the budget (default 400 MB) and end with status 0 or 1, never a crash.
#   scripts/memory_bombs.sh [SAVL_BINARY] [BUDGET_MB]
# A run still going after SECS seconds (default 120) is stopped with SIGINT (status 130): the
# output is streamed, so memory has reached its steady state by then (decoded input, one band of
# output rows, the model's working set). Needs GNU time (/usr/bin/time) and python3. Prints one
# line per file and a summary; exits 1 if any file is over budget or crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/savl}
budget_mb=${2:-400}
dir=target/bombs
[ -x "$bin" ] || { echo "no $bin: cargo build --release -p savl-cli" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }
[ -d "$dir" ] || python3 scripts/make_bombs.py "$dir" >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bad=0
printf '%-34s %8s %6s  %s\n' file "peak MB" status message
for f in "$dir"/*; do
  name=$(basename "$f")
  set +e
  /usr/bin/time -f 'PEAK_KB=%M' -o "$out/time" timeout --preserve-status -s INT "${SECS:-120}" \
    "$bin" upscale "$f" --out-dir "$out" --force -q 2>"$out/err" >/dev/null
  st=$?
  set -e
  kb=$(sed -n 's/^PEAK_KB=//p' "$out/time" | tail -1)
  mb=$(( kb * 1024 / 1000000 ))
  msg=$(head -c 90 "$out/err" | tr '\n' ' ')
  verdict=""
  if [ "$mb" -gt "$budget_mb" ]; then verdict=" OVER BUDGET"; bad=1; fi
  if [ "$st" -gt 2 ] && [ "$st" != 130 ]; then verdict="$verdict CRASHED"; bad=1; fi
  if [ "$st" = 130 ]; then msg="(stopped after ${SECS:-120} s) $msg"; fi
  printf '%-34s %8d %6d  %s%s\n' "$name" "$mb" "$st" "$msg" "$verdict"
  rm -f "$out"/*_x4.png "$out"/.*.tmp
done
if [ "$bad" = 0 ]; then echo "all within ${budget_mb} MB, no crash"; else echo "FAILED"; fi
exit "$bad"
