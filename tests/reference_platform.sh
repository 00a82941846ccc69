#!/usr/bin/env bash
# tests/reference_platform.sh VKRUN: exit 0 when the default Vulkan device is the platform whose
# bits README.md's training figures and the recorded hashes are, else exit 1 and say why.
#
# That platform: lavapipe of Mesa 22.3.6 / LLVM 15.0.6 (Debian 12) on an x86-64 CPU with FMA.
# Measured (issue 23): the same bits on AMD Zen 3 (AVX2) and Zen 5 (AVX-512), and with
# LP_NATIVE_VECTOR_WIDTH=128; other bits without FMA (GALLIUM_OVERRIDE_CPU_CAPS=sse4.1 makes
# llvmpipe compile as for such a CPU: a*b+c rounded twice instead of once).  Elsewhere (another
# driver or version, a CPU without FMA) the tests check the spread measured instead of exact figures.
set -euo pipefail
REFERENCE_DRIVER="llvmpipe Mesa 22.3.6 (LLVM 15.0.6)"
driver=$("$1" devices | grep -A3 '^\*' | sed -n 's/^ *driver: //p' | head -n 1)
if [ "$driver" != "$REFERENCE_DRIVER" ]; then
    echo "the default device's driver is '$driver', not '$REFERENCE_DRIVER'"
    exit 1
fi
if ! grep -qw fma /proc/cpuinfo 2>/dev/null; then
    echo "this CPU has no FMA"
    exit 1
fi
if [ -n "${GALLIUM_OVERRIDE_CPU_CAPS:-}" ]; then
    echo "GALLIUM_OVERRIDE_CPU_CAPS=$GALLIUM_OVERRIDE_CPU_CAPS changes the code llvmpipe compiles"
    exit 1
fi
echo "the reference platform: $REFERENCE_DRIVER on a CPU with FMA"
