#!/usr/bin/env bash
# Fixed tiles (FIXED, comma-separated; default 160, the old default) against the memory-sized
# tile (the default now), alternating, on a 320×240 photo and a 1280×720 frame: median wall time,
# peak RSS, and the ratio auto / the best fixed tile.
#
#   scripts/bench_tiles.sh [SAVL_BINARY]      (default target/release/savl; RUNS=3, FIXED=160)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/savl}
RUNS=${RUNS:-3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$TMP" <<'PY'
import sys
import numpy as np
from PIL import Image
rng = np.random.default_rng(7)
for name, (w, h) in {"photo_320x240": (320, 240), "frame_1280x720": (1280, 720)}.items():
    # Smooth content plus noise, like a camera frame (pure noise would be a worst case for PNG).
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 17.0)[..., None] * np.cos(y / 23.0)[..., None] * np.ones(3)
    img = np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(f"{sys.argv[1]}/{name}.png")
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
IFS=, read -r -a FIXED <<< "${FIXED:-160}"
printf "%-16s %-7s %10s %10s\n" picture tile "wall s" "RSS MB"
for pic in "$TMP"/*.png; do
  name=$(basename "$pic" .png)
  modes=("${FIXED[@]}" auto)
  for mode in "${modes[@]}"; do : > "$TMP/$mode.t"; : > "$TMP/$mode.m"; done
  for _ in $(seq "$RUNS"); do
    for mode in "${modes[@]}"; do
      args=(); [ "$mode" = auto ] || args=(--tile "$mode")
      /usr/bin/time -f "%e %M" -o "$TMP/time" "$BIN" upscale "$pic" -o "$TMP/out.png" --force -q "${args[@]}"
      read -r secs kb < "$TMP/time"
      echo "$secs" >> "$TMP/$mode.t"; echo $((kb / 1000)) >> "$TMP/$mode.m"
    done
  done
  best=""; best_t=""
  for mode in "${modes[@]}"; do
    t=$(median < "$TMP/$mode.t")
    printf "%-16s %-7s %10s %10s\n" "$name" "$mode" "$t" "$(median < "$TMP/$mode.m")"
    if [ "$mode" != auto ] && { [ -z "$best_t" ] || python3 -c "import sys; sys.exit(0 if $t < $best_t else 1)"; }; then
      best=$mode; best_t=$t
    fi
  done
  at=$(median < "$TMP/auto.t")
  echo "$name: auto / best fixed (tile $best) wall = $(python3 -c "print(round($at / $best_t, 3))")"
done
