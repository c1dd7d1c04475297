#!/usr/bin/env bash
# Cost proxy for the 3×3 convs on ARM cores, from the aarch64 build CI makes: the inner k loop of
# each GEMM microkernel the convs run on, through LLVM's scheduling models (llvm-mca), as
# multiply-accumulates per cycle, and the cycles per output value and input channel they give
# each precision (Winograd F(4×4) takes 2.25 multiply-adds there, tract's im2col 9). A static
# proxy from scheduling models, not a timing: no ARM board is measured.
#
#   scripts/arm_mca_report.sh     (needs gcc-aarch64-linux-gnu's objdump and llvm-mca ≥ 17:
#                                  apt-get install llvm-19; LLVM_MCA=... picks another;
#                                  SAVL_NO_BUILD=1 reads the existing aarch64 build)
#
# Kernels: the `gemm` crate's f32 NEON microkernel (`gemm_f32::…::neon::f32::x4x4`: f32
# Winograd), its NEON+FP16 one (`gemm_f16::…::neonfp16::f16::x2x8`: fp16 Winograd), and tract's
# int8 kernels (`arm64simd_mmm_i32_8x8` with SMLAL, `…_8x8_dot` with SDOT). Cores: `cortex-a72`
# (Pi 4; LLVM's Cortex-A57 model) and `neoverse-n1` for the Pi 5's Cortex-A76 (LLVM's
# `cortex-a76` entry also uses the A57 model; the Neoverse N1 is the A76's server derivative,
# same pipelines). The A72 has neither fp16 arithmetic nor SDOT: those rows are left out there.
set -euo pipefail
cd "$(dirname "$0")/.."
MCA=${LLVM_MCA:-$(command -v llvm-mca-19 || command -v llvm-mca)}
[ -n "${SAVL_NO_BUILD:-}" ] ||
  cargo build -q --target aarch64-unknown-linux-gnu -p savl -p savl-cli -p savl-capi --lib
DEPS=target/aarch64-unknown-linux-gnu/debug/deps
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# disassemble CRATE: every object of the newest rlib of CRATE, as one listing.
disassemble() {
  local rlib dir
  rlib=$(ls -t "$DEPS"/lib"$1"-*.rlib | head -1)
  dir="$TMP/$1"
  mkdir -p "$dir"
  (cd "$dir" && ar x "$OLDPWD/$rlib")
  for o in "$dir"/*.o; do aarch64-linux-gnu-objdump -d --no-show-raw-insn -C "$o"; done > "$TMP/$1.s"
}
disassemble gemm_f32
disassemble gemm_f16
disassemble tract_linalg

# loop LISTING FUNCTION WHOLE PATTERN MIN: among the functions whose demangled name starts with
# FUNCTION, the loop densest in instructions matching PATTERN (at least MIN of them), branches
# left out. WHOLE=1: hand-written assembly, whose local labels do not end the function.
loop() {
  python3 - "$@" <<'EOF'
import re, sys
asm, func, whole, pat, least = sys.argv[1], sys.argv[2], sys.argv[3] == '1', sys.argv[4], int(sys.argv[5])
lines = open(asm).read().split('\n')
mac = re.compile(pat)
branch = re.compile(r'^(b\.\w+|b|cbnz|cbz|tbnz|tbz|bl)\s')
best = None
for start in (i for i, l in enumerate(lines) if re.match(r'^[0-9a-f]+ <%s' % re.escape(func), l)):
    body = []
    for l in lines[start + 1:]:
        if 'file format' in l or (re.match(r'^[0-9a-f]+ <', l) and not whole):
            break
        m = re.match(r'^\s+([0-9a-f]+):\s+(.*)$', l)
        if m:
            body.append((int(m.group(1), 16), m.group(2).split('//')[0].strip()))
    for addr, ins in body:
        m = re.match(r'^(b\.\w+|b|cbnz|cbz|tbnz|tbz)\s+.*?([0-9a-f]+) <', ins)
        if not m or int(m.group(2), 16) >= addr:
            continue
        seg = [x for a, x in body if int(m.group(2), 16) <= a <= addr]
        n = sum(1 for x in seg if mac.match(x))
        if n >= least and (best is None or n / len(seg) > best[0] / len(best[1])):
            best = (n, seg)
print('\n'.join(x for x in best[1] if not branch.match(x)))
EOF
}
MAC='^(fmla|sdot|smlal2?)\s'
loop "$TMP/gemm_f32.s" 'gemm_f32::microkernel::neon::f32::x4x4>' 0 "$MAC" 8 > "$TMP/f32.loop"
loop "$TMP/gemm_f16.s" 'gemm_f16::microkernel::neonfp16::f16::x2x8>' 0 "$MAC" 8 > "$TMP/f16.loop"
loop "$TMP/tract_linalg.s" 'arm64simd_mmm_i32_8x8_0_23_9>' 1 "$MAC" 8 > "$TMP/i8.loop"
loop "$TMP/tract_linalg.s" 'arm64simd_mmm_i32_8x8_dot_0_23_9>' 1 "$MAC" 8 > "$TMP/i8dot.loop"
# savl's fp16 products: the k loop of its NEON fp16 register block (`neon_f16_block`, what runs
# on a CPU with FEAT_FP16), the widening of a chunk's fp16 sums into its f32 accumulators (every
# fcvtl/fadd of that function), and V[p] rounded to f16 (`narrow`, fcvtn).
disassemble savl
loop "$TMP/savl.s" 'savl::kernels::winograd::neon_f16_block>' 0 "$MAC" 8 > "$TMP/f16s.loop"
awk '/^[0-9a-f]+ <savl::kernels::winograd::neon_f16_block>:/ {f = 1; next}
     f && /^[0-9a-f]+ </ {exit}
     f && /\t(fcvtl2?|fadd)\t/ {sub(/^ *[0-9a-f]+:\t/, ""); print}' "$TMP/savl.s" > "$TMP/widen.block"
loop "$TMP/savl.s" 'savl::kernels::winograd::narrow>' 0 '^fcvtn2\s' 1 > "$TMP/narrow.loop"

# Multiply-accumulates per instruction: fmla .4s 4, fmla .8h 8, sdot .4s 16, smlal(2) .4s 4.
macs() {
  awk '/^fmla.*\.4s/ {n += 4} /^fmla.*\.8h/ {n += 8} /^sdot/ {n += 16} /^smlal/ {n += 4}
       END {print n}' "$1"
}

printf "%-12s %-34s %6s %6s %8s %9s %22s\n" core kernel insns MACs cycles MAC/cycle "cycles/(output·chan)"
for core in cortex-a72 neoverse-n1; do
  for k in f32 f16s f16 i8 i8dot; do
    if [ "$core" = cortex-a72 ] && [[ "$k" =~ ^(f16|f16s|i8dot)$ ]]; then continue; fi
    case $k in
      f32) name="f32 Winograd (gemm x4x4)"; per=2.25 ;;
      f16s) name="fp16 Winograd (savl neon_f16_block)"; per=2.25 ;;
      f16) name="fp16 GEMM (gemm-f16 x2x8, reference)"; per=2.25 ;;
      i8) name="int8 im2col (tract SMLAL 8x8)"; per=9 ;;
      i8dot) name="int8 im2col (tract SDOT 8x8)"; per=9 ;;
    esac
    m=$(macs "$TMP/$k.loop")
    cycles=$("$MCA" -mtriple=aarch64 -mcpu="$core" -mattr=+fullfp16,+dotprod -iterations=1000 \
      "$TMP/$k.loop" 2>/dev/null | awk '/Total Cycles/ {print $3 / 1000}')
    python3 -c "
c, m, per = $cycles, $m, $per
print('%-12s %-34s %6d %6d %8.2f %9.1f %22.3f' % ('$core', '$name', $(wc -l < "$TMP/$k.loop"), m, c, m / c, per / (m / c)))"
  done
done

# The fp16 path's conversions on the A76, and its total per output and input channel for the
# shipped model's 48 → 48 convs: products (the k loop) + widening each 24-channel chunk's sums
# (per 4 × 16 block) + rounding V[p] to f16 (per value, once per output channel group of 48).
mca() { "$MCA" -mtriple=aarch64 -mcpu=neoverse-n1 -iterations=1000 "$1" 2>/dev/null |
  awk '/Total Cycles/ {print $3 / 1000}'; }
loopc=$(mca "$TMP/f16s.loop"); widen=$(mca "$TMP/widen.block"); narrow=$(mca "$TMP/narrow.loop")
f32c=$(mca "$TMP/f32.loop")
python3 -c "
c, k, chunk = 48, 48, 24
products = 2.25 * $loopc / 64          # 64 multiply-adds per k step of a 4 x 16 block
widen = 2.25 * $widen / (64 * chunk)   # once per chunk per 4 x 16 block
narrow = 2.25 * ($narrow / 8) / k      # 8 values per loop iteration
total = products + widen + narrow
f32 = 2.25 * $f32c / 256
print()
print('neoverse-n1  fp16 widening of one chunk (4 x 16 block): %.1f cycles; rounding V: %.2f cycles per value' % ($widen, $narrow / 8))
print('neoverse-n1  fp16 Winograd, %d -> %d, %d-channel sums: products %.3f + widening %.3f + rounding V %.3f = %.3f cycles per output.channel (f32 Winograd %.3f: %.2fx)' % (c, k, chunk, products, widen, narrow, total, f32, f32 / total))
"
