#!/usr/bin/env bash
# tests/on_driver.sh PREFIX VKRUN CMD...: runs CMD on the lavapipe that tools/fetch_driver.sh
# fetches into PREFIX (Debian's <codename>-backports Mesa; the driver matrix of issue 26).
# A fetch that fails is a SKIP (exit 77), a failure under VKRUN_REQUIRE_ALL=1 (fetch_driver.sh
# says which).  Before CMD runs, `VKRUN devices` must name that Mesa version: a test that ran on
# the system's driver instead would prove nothing.
set -uo pipefail
prefix=$1 vkrun=$2
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
env=$("$root/tools/fetch_driver.sh" "$prefix")
rc=$?
[ $rc -eq 0 ] || exit $rc
eval "$env"
want="Mesa ${VKRUN_DRIVER_VERSION%%-*}"
line=$("$vkrun" devices 2>&1 | grep -m 1 'driver:')
case "$line" in
*"$want"*) echo "on_driver:${line#*driver:}" ;;
*)
    echo "FAIL on_driver: expected a device of $want, vkrun devices says: ${line:-nothing}"
    exit 1
    ;;
esac
exec "$@"
