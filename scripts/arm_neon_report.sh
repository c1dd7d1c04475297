#!/usr/bin/env bash
# What the aarch64 build of savl's own kernels compiles to: per kernel block function, the
# 128-bit NEON float instructions (.4s), scalar float instructions, and the GEMM calls (the gemm
# crate picks its NEON / NEON+fp16 microkernels at run time). A static check, not a timing.
#
#   scripts/arm_neon_report.sh      (builds the aarch64 library as CI does, then disassembles it)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --target aarch64-unknown-linux-gnu -p savl -p savl-cli -p savl-capi --lib
RLIB=$(ls -t target/aarch64-unknown-linux-gnu/debug/deps/libsavl-*.rlib | head -1)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && ar x "$OLDPWD/$RLIB")
for o in "$TMP"/*.o; do aarch64-linux-gnu-objdump -d --no-show-raw-insn -C "$o"; done > "$TMP/all.s"
printf "%-48s %8s %8s %8s %6s\n" function "neon .4s" "fmla" "scalar" "gemm"
grep -nE '^[0-9a-f]+ <savl::kernels::[^>]*(run_block|elementwise::run_with)[^>]*>:' "$TMP/all.s" | while IFS=: read -r line rest; do
  name=$(sed -E 's/.*<(.*)>:/\1/' <<< "$rest")
  body=$(awk -v s="$line" 'NR > s && /^[0-9a-f]+ </ {exit} NR > s {print}' "$TMP/all.s")
  neon=$(grep -cE 'f(add|sub|mul|mla|max|min)\s+v[0-9]+\.4s' <<< "$body" || true)
  fmla=$(grep -cE 'fmla\s+v[0-9]+\.4s' <<< "$body" || true)
  scalar=$(grep -cE 'f(add|sub|mul|madd|msub)\s+s[0-9]+' <<< "$body" || true)
  gemm=$(grep -cE 'bl\s.*gemm::gemm' <<< "$body" || true)
  printf "%-48s %8s %8s %8s %6s\n" "${name:0:48}" "$neon" "$fmla" "$scalar" "$gemm"
done
