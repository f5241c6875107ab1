#!/usr/bin/env bash
# The local cluster demo: a weft-controller (embedded store) and 3 hosts, each a
# network namespace with a weft-agent and one container, joined by a Linux bridge
# in a namespace of its own; pings every container from every other host's and
# prints PASS only if every ping worked (exit 0), else FAIL (exit 1).
# Nothing touches this machine's own network: every address lives inside the
# demo's namespaces, and all of them are deleted at the end (also on Ctrl-C).
#
# Usage: sudo tools/demo.sh [--keep] [--hosts N] [--verbose] [--notls]
#   --keep     leave the cluster running until Ctrl-C, then clean up
#   --notls    plaintext (mutual TLS with certificates from tools/certs.sh is the default)
set -euo pipefail
cd "$(dirname "$0")/.."

for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
  esac
done
if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: the demo creates network namespaces and needs root (run with sudo)" >&2
  exit 2
fi

bash tools/setup.sh
bazel build //controller:weft-controller //agent:weft-agent //tools/weftctl:weftctl //tests/cluster:demo
bin=$(bazel info bazel-bin 2>/dev/null)

# exec: Ctrl-C goes straight to the demo, which stops its processes and removes
# its namespaces before it exits.
exec "$bin/tests/cluster/demo" \
  --controller-bin "$bin/controller/weft-controller" \
  --agent-bin "$bin/agent/weft-agent" \
  --weftctl-bin "$bin/tools/weftctl/weftctl" \
  "$@"
