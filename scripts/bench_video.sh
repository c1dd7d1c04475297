#!/usr/bin/env bash
# Throughput of `savl video` against the hand-made raw pipe it wraps, on the same clip, with the
# same model, encoder and settings, alternating the two so that load from other processes falls
# on both alike:
#
#   scripts/bench_video.sh [SAVL] [FRAMES] [ROUNDS] [-- extra model flags]
#
# SAVL defaults to target/release/savl (else target/debug/savl). The clip is FRAMES (default
# 24) frames of ffmpeg's testsrc2 at 320x180, 24 fps, h264 with an AAC sine track; the output is
# 1280x720 libx264 -crf 18 yuv420p, with the embedded model.
#   video: savl video clip.mp4 out.mp4      (probe, decode, upscale, encode, mux the audio)
#   raw:   ffmpeg … -f rawvideo - | savl upscale --raw 320x180 | ffmpeg -f rawvideo … raw.mp4
# Prints each round, then each arm's median wall seconds (frames/s) and CPU seconds (user +
# system of savl and its ffmpeg children) over ROUNDS (default 3), and video/raw: the wrapper's
# cost. Wall time on a loaded machine is noisy; the CPU ratio is the steadier figure there.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/savl_bin.sh
bin=$(savl_bin "${1:-}")
frames=${2:-24} rounds=${3:-3}
shift $(( $# >= 3 ? 3 : $# ))
[ "${1:-}" = "--" ] && shift
for tool in ffmpeg ffprobe bc /usr/bin/time; do
  command -v "$tool" >/dev/null || { echo "bench_video.sh: $tool is not on PATH" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ffmpeg -nostdin -v error -f lavfi -i "testsrc2=size=320x180:rate=24" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -frames:v "$frames" -shortest \
  -c:v libx264 -pix_fmt yuv420p -c:a aac "$tmp/clip.mp4"
# Wall and CPU seconds (user + system, the process and all its children: ffmpeg included).
timed() {
  /usr/bin/time -f "%e %U %S" -o "$tmp/t" "$@"
  awk '{ printf "%s %.2f", $1, $2 + $3 }' "$tmp/t"
}
video() {
  timed "$bin" video -q "$tmp/clip.mp4" "$tmp/video.mp4" --force "$@"
}
raw() {
  timed bash -c 'set -o pipefail
    ffmpeg -nostdin -v error -i "$1/clip.mp4" -map 0:V:0 -vsync passthrough \
        -f rawvideo -pix_fmt rgb24 - \
      | "$2" upscale -q --raw 320x180 "${@:3}" \
      | ffmpeg -nostdin -v error -y -f rawvideo -pix_fmt rgb24 -s 1280x720 -framerate 24 -i - \
        -c:v libx264 -crf 18 -pix_fmt yuv420p "$1/raw.mp4"' _ "$tmp" "$bin" "$@"
}
for r in $(seq "$rounds"); do
  v=$(video "$@") w=$(raw "$@")
  echo "video $v" >> "$tmp/times"
  echo "raw $w" >> "$tmp/times"
  echo "round $r: video ${v% *} s wall, ${v#* } s cpu; raw ${w% *} s wall, ${w#* } s cpu"
done
# Same frames either way (the encoder is deterministic for the same input).
n=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames \
  -of csv=p=0 "$tmp/video.mp4")
[ "$n" = "$frames" ] || { echo "bench_video.sh: savl video wrote $n frames, not $frames" >&2; exit 1; }
a=$(ffmpeg -nostdin -v error -i "$tmp/video.mp4" -map 0:v -f framemd5 - | grep -v '^#' | md5sum)
b=$(ffmpeg -nostdin -v error -i "$tmp/raw.mp4" -map 0:v -f framemd5 - | grep -v '^#' | md5sum)
if [ "$a" = "$b" ]; then echo "decoded frames of both arms identical"; else echo "WARNING: the arms' frames differ"; fi
med() { grep "^$1 " "$tmp/times" | cut -d' ' -f"$2" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
mv=$(med video 2) mr=$(med raw 2) cv=$(med video 3) cr=$(med raw 3)
echo "clip: $frames frames 320x180 -> 1280x720, $rounds rounds, $("$bin" --version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "video: median ${mv} s wall ($(echo "scale=2; $frames / $mv" | bc) frames/s), ${cv} s cpu"
echo "raw:   median ${mr} s wall ($(echo "scale=2; $frames / $mr" | bc) frames/s), ${cr} s cpu"
echo "video/raw: $(echo "scale=3; $mv / $mr" | bc) wall, $(echo "scale=3; $cv / $cr" | bc) cpu"
