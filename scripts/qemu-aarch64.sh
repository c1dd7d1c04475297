#!/usr/bin/env bash
# cargo runner for aarch64 test binaries: user-mode QEMU with the core in $QEMU_CPU.
exec qemu-aarch64-static -cpu "${QEMU_CPU:-cortex-a72}" -L /usr/aarch64-linux-gnu "$@"
