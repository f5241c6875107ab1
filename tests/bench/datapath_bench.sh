#!/usr/bin/env bash
# Container-to-container TCP throughput (iperf3, 1 and 4 streams) and ping latency
# between two hosts for each backend (vxlan, udp, host-gw), against two containers
# on one plain bridge (no overlay), all in one run (docs/benchmarks.md, "Data path
# throughput"). A backend the agent rejects is skipped, and the table says so.
#
# Needs root. Everything runs in network namespaces the bench creates and removes
# (also on failure or Ctrl-C); no traffic leaves them.
#
# Usage: sudo tests/bench/datapath_bench.sh [--rounds 3] [--seconds 5] [--pings 200]
#                                          [--backends vxlan,udp,host-gw]
# Binaries: built here with -c opt, unless WEFT_DATAPATH_BENCH_BIN, WEFT_CONTROLLER_BIN,
# WEFT_AGENT_BIN and WEFTCTL_BIN are all set.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [[ $(id -u) -ne 0 ]]; then
  echo "datapath_bench: run as root (network namespaces)" >&2
  exit 2
fi
for tool in ip ping iperf3; do
  command -v "$tool" >/dev/null || { echo "datapath_bench: $tool missing (run tools/setup.sh)" >&2; exit 2; }
done

if [[ -z ${WEFT_DATAPATH_BENCH_BIN:-} || -z ${WEFT_CONTROLLER_BIN:-} || -z ${WEFT_AGENT_BIN:-} ||
      -z ${WEFTCTL_BIN:-} ]]; then
  echo "datapath_bench: building with -c opt..." >&2
  bazel build -c opt //tests/bench:datapath_bench //controller:weft-controller //agent:weft-agent \
    //tools/weftctl:weftctl 2>&1 | grep -E "^ERROR|error:" >&2 || true
  bin=$(bazel info -c opt bazel-bin 2>/dev/null)
  export WEFT_DATAPATH_BENCH_BIN=$bin/tests/bench/datapath_bench
  export WEFT_CONTROLLER_BIN=$bin/controller/weft-controller
  export WEFT_AGENT_BIN=$bin/agent/weft-agent
  export WEFTCTL_BIN=$bin/tools/weftctl/weftctl
fi
for b in "$WEFT_DATAPATH_BENCH_BIN" "$WEFT_CONTROLLER_BIN" "$WEFT_AGENT_BIN" "$WEFTCTL_BIN"; do
  [[ -x $b ]] || { echo "datapath_bench: $b is not an executable" >&2; exit 2; }
done

bench_pid=""
cleanup() {
  [[ -n $bench_pid ]] || return 0
  if kill -0 "$bench_pid" 2>/dev/null; then
    # The bench cleans up after itself on SIGTERM; give it the time to.
    kill -TERM "$bench_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$bench_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$bench_pid" 2>/dev/null || true
  fi
  # Whatever a killed bench left: its namespaces are named wft<pid>-*.
  local ns
  for ns in $(ip netns list | awk '{print $1}' | grep "^wft${bench_pid}-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$WEFT_DATAPATH_BENCH_BIN" "$@" &
bench_pid=$!
wait "$bench_pid"
