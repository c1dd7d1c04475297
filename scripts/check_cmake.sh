#!/usr/bin/env bash
# Builds examples/c/camera_nv12.c with CMake both ways README ("pkg-config and CMake") shows:
# through pkg-config's savl.pc, and as an imported static library; runs each and checks that
# the two outputs are identical. Uses the libsavl.a the test build made
# (target/debug/examples/libsavl_static.a) laid out like scripts/dist.sh's ship folder.
#
#   scripts/check_cmake.sh            (after `cargo test --workspace`)
set -euo pipefail
cd "$(dirname "$0")/.."
LIB=${LIB:-target/debug/examples/libsavl_static.a}
[ -f "$LIB" ] || { echo "no $LIB: run cargo test --workspace first" >&2; exit 1; }
command -v cmake >/dev/null || { echo "cmake not installed (apt install cmake)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ship=$TMP/ship
mkdir -p "$ship/include" "$ship/pkgconfig"
cp "$LIB" "$ship/libsavl.a"
cp capi/include/savl.h "$ship/include/"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# The same substitution scripts/dist.sh makes for a relocatable .pc file.
sed -e 's|^prefix=@PREFIX@|prefix=${pcfiledir}/..|' -e "s|@VERSION@|$version|" \
  capi/savl.pc.in > "$ship/pkgconfig/savl.pc"
src=$PWD/examples/c/camera_nv12.c

mkdir -p "$TMP/pc" "$TMP/imported"
# 1. pkg-config (the README's first snippet); static, as `pkg-config --static` would link.
cat > "$TMP/pc/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(savl_pc C)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SAVL REQUIRED IMPORTED_TARGET savl)
add_executable(camera_nv12 $src)
target_link_libraries(camera_nv12 PRIVATE PkgConfig::SAVL \${SAVL_STATIC_LDFLAGS})
CMAKE
# 2. imported static library (the README's second snippet).
cat > "$TMP/imported/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.16)
project(savl_imported C)
set(SAVL_DIR "$ship")
add_library(savl STATIC IMPORTED)
set_target_properties(savl PROPERTIES
  IMPORTED_LOCATION "\${SAVL_DIR}/libsavl.a"
  INTERFACE_INCLUDE_DIRECTORIES "\${SAVL_DIR}/include"
  INTERFACE_LINK_LIBRARIES "pthread;dl;m")
add_executable(camera_nv12 $src)
target_link_libraries(camera_nv12 PRIVATE savl)
CMAKE
for v in pc imported; do
  PKG_CONFIG_PATH=$ship/pkgconfig cmake -S "$TMP/$v" -B "$TMP/$v/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$TMP/$v/build" >/dev/null
  "$TMP/$v/build/camera_nv12" 32 24 2 "$TMP/$v.nv12" > "$TMP/$v.log"
  echo "$v: built with CMake, ran: $(grep -c '^frame' "$TMP/$v.log") frames, $(stat -c %s "$TMP/$v.nv12") bytes"
done
cmp "$TMP/pc.nv12" "$TMP/imported.nv12"
echo "CMake via pkg-config and via an imported target: identical outputs"
