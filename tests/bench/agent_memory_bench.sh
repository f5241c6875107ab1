#!/usr/bin/env bash
# Agent resident memory with N peers (default 5000), measured inside a network
# namespace of its own (a veth pair inside it as the external interface; nothing leaves it).
# Usage: sudo tests/bench/agent_memory_bench.sh [--tls] [N]
#   --tls: mutual TLS between agent and controller (certificates from tools/certs.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ${1:-} == --tls ]]; then export WEFT_BENCH_TLS=1; shift; fi
n=${1:-5000}
bazel build -c opt //tests/bench:agent_memory_bench //controller:weft-controller //agent:weft-agent >/dev/null
bin=$(bazel info -c opt bazel-bin 2>/dev/null)
ns="wftmem$$"
cleanup() { ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add weftbench0 type veth peer name weftbench1
ip -n "$ns" link set weftbench1 up
ip -n "$ns" addr add 192.0.2.1/24 dev weftbench0
ip -n "$ns" link set weftbench0 up
ip netns exec "$ns" env WEFT_BENCH_TLS="${WEFT_BENCH_TLS:-0}" "$bin/tests/bench/agent_memory_bench" "$n" "$bin/controller/weft-controller" "$bin/agent/weft-agent"
