#!/usr/bin/env bash
# Installs every Debian package Weft needs to build, test and run its demo.
# Idempotent: packages already present are skipped by apt; safe to run on every build.
set -euo pipefail

PACKAGES=(
  # build
  bazel-bootstrap bazel-platforms default-jdk-headless g++ pkg-config git
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev libgrpc-dev
  libabsl-dev librocksdb-dev libgtest-dev libgmock-dev libbenchmark-dev
  nlohmann-json3-dev libcpp-httplib-dev libmnl-dev libsystemd-dev libcurl4-openssl-dev libssl-dev libtinyxml2-dev
  libgoogle-perftools-dev
  # fuzzing (tools/fuzz.sh, --config=fuzz): clang 14 and its libFuzzer/ASan/UBSan runtimes
  clang-14 libclang-rt-14-dev
  # run and test: real kernel tools, real peers
  iproute2 iputils-ping iptables iperf3 procps psmisc ethtool curl python3 openssl
  etcd-server etcd-client prometheus containernetworking-plugins systemd python3-yaml
  golang-etcd-server-dev
  # the wireguard backend: the userspace implementation, `wg` to inspect it, tcpdump for the capture test
  wireguard-go wireguard-tools tcpdump
  # the Debian package (tools/package.sh): dpkg-deb, dpkg-shlibdeps, lintian
  dpkg-dev fakeroot lintian
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's prometheus package starts a system service; Weft's tests run their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  systemctl stop prometheus || true
fi
echo "setup: all packages present" >&2
