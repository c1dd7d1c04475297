# Sourced by the scripts that run the savl binary (bench_video.sh, video_flicker.sh).

# Prints the savl binary to use, as an absolute path: $1 if given, else target/release/savl if
# built, else target/debug/savl (relative paths from the current folder, the repository root).
savl_bin() {
  local bin=${1:-}
  if [ -z "$bin" ]; then
    bin=target/release/savl
    [ -x "$bin" ] || bin=target/debug/savl
  fi
  realpath "$bin"
}
