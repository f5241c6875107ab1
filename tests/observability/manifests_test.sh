#!/usr/bin/env bash
# Runs manifests_test.py with the system's Python (Debian's, where python3-yaml lives).
set -euo pipefail
exec /usr/bin/python3 "$TEST_SRCDIR/${TEST_WORKSPACE:-weft}/tests/observability/manifests_test.py"
