#!/usr/bin/env bash
# Flicker of `savl video` on a static scene: the mean frame-to-frame luma difference of the input
# and of the output, on a still picture with fresh sensor-like noise in every frame, and on the
# same picture without noise (where a per-frame-deterministic upscaler must give exactly 0):
#
#   scripts/video_flicker.sh [SAVL] [FRAMES] [-- extra model flags]
#
# SAVL defaults to target/release/savl (else target/debug/savl); FRAMES to 12. The clip: one
# frame of ffmpeg's testsrc2 at 160x90, held still, with ffmpeg's temporal noise
# (noise=alls=12:allf=t) added per frame; ffv1 (lossless) in and out, yuv444p, so no codec adds
# or hides differences. The figure: the mean over frames t >= 1 of mean |Y(t) - Y(t-1)| in 8-bit
# luma levels (tblend difference, signalstats YAVG), input (160x90) and output (640x360).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/savl_bin.sh
bin=$(savl_bin "${1:-}")
frames=${2:-12}
shift $(( $# >= 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ff() { ffmpeg -nostdin -hide_banner -v error "$@"; }
ff -f lavfi -i "testsrc2=size=160x90:rate=12" -frames:v 1 "$tmp/still.png"
ff -loop 1 -framerate 12 -i "$tmp/still.png" -vf "noise=alls=12:allf=t" -frames:v "$frames" \
  -c:v ffv1 -pix_fmt yuv444p "$tmp/noisy.mkv"
ff -loop 1 -framerate 12 -i "$tmp/still.png" -frames:v "$frames" -c:v ffv1 -pix_fmt yuv444p \
  "$tmp/clean.mkv"
# Mean over frame pairs of the mean absolute luma difference.
flicker() {
  ff -i "$1" -vf "tblend=all_mode=difference,signalstats,metadata=print:key=lavfi.signalstats.YAVG:file=-" \
    -f null - | awk -F= '/YAVG/ { s += $2; n++ } END { printf "%.3f", s / n }'
}
for clip in noisy clean; do
  "$bin" video -q "$tmp/$clip.mkv" "$tmp/${clip}_x4.mkv" --codec ffv1 "$@"
  fi=$(flicker "$tmp/$clip.mkv")
  fo=$(flicker "$tmp/${clip}_x4.mkv")
  echo "$clip static clip, $frames frames: frame-to-frame |dY| input ${fi}, output ${fo} (levels)"
done
