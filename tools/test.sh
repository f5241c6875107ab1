#!/usr/bin/env bash
# Runs Weft's whole test suite: installs what it needs, builds, runs every test
# (unit tests in Bazel's sandbox, root tests with network namespaces outside it).
# Needs root (network namespaces, VXLAN, TUN). Usage: tools/test.sh [bazel test args]
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: the suite creates network namespaces and needs root (run with sudo)" >&2
  exit 2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
bazel test --test_summary=short --keep_going "${@:-//...}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

passed=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log" || true)
failed=$(grep -cE '^//\S+\s+(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log" || true)
echo "tests: ${passed} passed, ${failed} failed"
exit "$rc"
