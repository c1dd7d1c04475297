#!/usr/bin/env bash
# Builds the artefacts users ship with the `dist` profile and splits their debug info:
#
#   scripts/dist.sh [--target TRIPLE] [--so-only]   # default target: the host
#
# Writes DIR/ship/ with, stripped: `savl` (CLI), `libsavl.so`, `libsavl.a` (debug info removed,
# symbols kept for linking) and `include/savl.h`; beside each binary a `NAME.debug` file
# (`objcopy --only-keep-debug`) that the stripped file names in `.gnu_debuglink`, for
# symbolising crash reports (`gdb`, `addr2line -e NAME.debug ADDR`, `eu-unstrip`).
# Also `pkgconfig/savl.pc` (from capi/savl.pc.in): relocatable (paths relative to the .pc
# file) unless SAVL_PREFIX names the folder the ship contents will be installed to.
# DIR is target/dist for the host, target/TRIPLE/dist otherwise. Prints DIR on stdout last.
# --so-only builds and ships libsavl.so alone (the cheapest build, for CI).
set -euo pipefail
cd "$(dirname "$0")/.."

target=""
so_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --so-only) so_only=1; shift ;;
    *) echo "usage: $0 [--target TRIPLE] [--so-only]" >&2; exit 2 ;;
  esac
done

host=$(rustc -vV | sed -n 's/^host: //p')
if [ -z "$target" ] || [ "$target" = "$host" ]; then
  dir=target/dist
  target_args=()
  tool_prefix=""
else
  dir=target/$target/dist
  target_args=(--target "$target")
  case "$target" in
    aarch64-unknown-linux-gnu) tool_prefix=aarch64-linux-gnu- ;;
    *) tool_prefix="" ;;
  esac
fi
objcopy=${tool_prefix}objcopy
strip=${tool_prefix}strip
command -v "$objcopy" >/dev/null || objcopy=objcopy
command -v "$strip" >/dev/null || strip=strip

# One rustc run per library kind: with `rlib` in the same run (as `cargo build` does for the
# crate types in Cargo.toml) rustc skips link-time optimisation for the cdylib and staticlib.
kinds=(cdylib)
files=(libsavl.so)
if [ "$so_only" = 0 ]; then
  cargo build --profile dist -p savl-cli "${target_args[@]}" --bin savl >&2
  kinds+=(staticlib)
  files+=(savl)
fi
for kind in "${kinds[@]}"; do
  cargo rustc --profile dist -p savl-capi "${target_args[@]}" --lib \
    --crate-type "$kind" >&2
done

ship=$dir/ship
rm -rf "$ship"
mkdir -p "$ship/include"
for f in "${files[@]}"; do
  cp "$dir/$f" "$ship/$f"
  "$objcopy" --only-keep-debug "$ship/$f" "$ship/$f.debug"
  "$strip" --strip-all "$ship/$f"
  (cd "$ship" && "$objcopy" --add-gnu-debuglink="$f.debug" "$f")
done
if [ "$so_only" = 0 ]; then
  "$strip" --strip-debug -o "$ship/libsavl.a" "$dir/libsavl.a"
fi
cp capi/include/savl.h "$ship/include/"
mkdir -p "$ship/pkgconfig"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
sed -e "s|@PREFIX@|${SAVL_PREFIX:-\$\{pcfiledir\}/..}|" -e "s|@VERSION@|$version|" \
  capi/savl.pc.in >"$ship/pkgconfig/savl.pc"
echo "$dir"
