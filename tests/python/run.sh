#!/bin/sh
# Runs one Python test with Debian's /usr/bin/python3; SKIP (exit 77) when
# numpy, h5py or torch are not installed there (a failure with VKRUN_REQUIRE_ALL=1).
if ! /usr/bin/python3 -c "import numpy, h5py, torch" 2>/dev/null; then
    echo "SKIP $1: /usr/bin/python3 lacks numpy, h5py or torch (apt-get install python3-numpy python3-h5py python3-torch)"
    [ "${VKRUN_REQUIRE_ALL:-}" = 1 ] && { echo "FAIL: VKRUN_REQUIRE_ALL=1 requires every check to run"; exit 1; }
    exit 77
fi
exec /usr/bin/python3 "$@"
