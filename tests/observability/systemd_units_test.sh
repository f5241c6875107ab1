#!/usr/bin/env bash
# systemd-analyze verify on every unit of deploy/systemd, with the ExecStart
# paths pointed at the built binaries (verify requires them to exist) and a stub
# dockerd. systemd-analyze exits 0 on many mistakes ("Unknown key ..., ignoring"),
# so any output at all counts as a failure. Deliberately broken copies of the
# units must fail, so that the check is known to bite.
set -euo pipefail

runfiles="${TEST_SRCDIR:?}/${TEST_WORKSPACE:-weft}"
agent_bin="$runfiles/agent/weft-agent"
controller_bin="$runfiles/controller/weft-controller"
units="$runfiles/deploy/systemd"
tmp="$(mktemp -d "${TEST_TMPDIR:-/tmp}/units.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
failures=0

# Lays the units out in $1 with binaries that exist: weft-* from Bazel, a stub dockerd.
layout() {
  local dir="$1"
  mkdir -p "$dir/bin" "$dir/docker.service.d"
  printf '#!/bin/sh\nexit 0\n' >"$dir/bin/dockerd"
  chmod +x "$dir/bin/dockerd"
  # The drop-in's base unit, as a Docker package would install it.
  printf '[Unit]\nDescription=Docker (stub)\n\n[Service]\nExecStart=%s/bin/dockerd\n' "$dir" >"$dir/docker.service"
  sed -e "s|/usr/local/bin/weft-agent|$agent_bin|" "$units/weft-agent.service" >"$dir/weft-agent.service"
  sed -e "s|/usr/local/bin/weft-controller|$controller_bin|" "$units/weft-controller.service" >"$dir/weft-controller.service"
  sed -e "s|/usr/bin/dockerd|$dir/bin/dockerd|" "$units/docker.service.d/10-weft.conf" >"$dir/docker.service.d/10-weft.conf"
}

# verify DIR UNIT...: succeeds only when systemd-analyze exits 0 and prints nothing.
verify() {
  local dir="$1"
  shift
  local out rc=0
  out="$(cd "$dir" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no --recursive-errors=no "$@" 2>&1)" || rc=$?
  if [[ $rc -ne 0 || -n "$out" ]]; then
    printf '%s\n' "$out"
    return 1
  fi
}

expect_clean() {
  if verify "$@"; then
    echo "PASS: ${*:2} verify cleanly"
  else
    echo "FAIL: ${*:2} do not verify cleanly"
    failures=$((failures + 1))
  fi
}

expect_broken() {
  local why="$1"
  shift
  if verify "$@" >/dev/null; then
    echo "FAIL: verify accepted a unit with $why"
    failures=$((failures + 1))
  else
    echo "PASS: verify refuses a unit with $why"
  fi
}

# The binaries the units run must be the real ones.
for b in "$agent_bin" "$controller_bin"; do
  [[ -x "$b" ]] || { echo "FAIL: $b is not built"; exit 1; }
done

good="$tmp/good"
layout "$good"
expect_clean "$good" weft-agent.service weft-controller.service docker.service

# The required pieces are really there.
for want in "Type=notify" "After=network-online.target" "Wants=network-online.target" \
  "Before=docker.service containerd.service" "EnvironmentFile=-/etc/default/weft-agent" \
  "Restart=on-failure" "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW" \
  "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW" "ProtectSystem=strict" \
  "ReadWritePaths=/run/flannel /var/lib/weft-agent" "ProtectHome=yes" "NoNewPrivileges=yes" "PrivateTmp=yes"; do
  if ! grep -qxF "$want" "$units/weft-agent.service"; then
    echo "FAIL: weft-agent.service lacks '$want'"
    failures=$((failures + 1))
  fi
done
for want in "Type=notify" "StateDirectory=weft" "DynamicUser=yes" "CapabilityBoundingSet=" "ProtectSystem=strict"; do
  grep -qxF "$want" "$units/weft-controller.service" || { echo "FAIL: weft-controller.service lacks '$want'"; failures=$((failures + 1)); }
done
grep -q 'EnvironmentFile=/run/flannel/docker_opts.env' "$units/docker.service.d/10-weft.conf" &&
  grep -q '\$DOCKER_OPT_BIP \$DOCKER_OPT_MTU \$DOCKER_OPT_IPMASQ' "$units/docker.service.d/10-weft.conf" ||
  { echo "FAIL: the Docker drop-in does not start dockerd with the agent's options"; failures=$((failures + 1)); }

# Negative checks: each breaks one thing in a copy.
n=0
broken() {
  n=$((n + 1))
  local dir="$tmp/broken$n"
  layout "$dir"
  echo "$dir"
}
d=$(broken); sed -i 's/^Type=notify/Type=notfy/' "$d/weft-agent.service"
expect_broken "a misspelt Type" "$d" weft-agent.service
d=$(broken); sed -i 's/^ProtectHome=yes/ProtectHome=yes\nProtectHomes=yes/' "$d/weft-agent.service"
expect_broken "an unknown key" "$d" weft-agent.service
d=$(broken); sed -i "s|^ExecStart=.*|ExecStart=$tmp/no/such/weft-controller|" "$d/weft-controller.service"
expect_broken "a missing binary" "$d" weft-controller.service
d=$(broken); sed -i "s/^ProtectSystem=strict/ProtectSystem=strikt/" "$d/weft-agent.service"
expect_broken "a bad ProtectSystem value" "$d" weft-agent.service
d=$(broken); sed -i "s|^ExecStart=$d/bin/dockerd -H|ExecStart=$d/bin/nodockerd -H|" "$d/docker.service.d/10-weft.conf"
expect_broken "a drop-in whose dockerd is missing" "$d" docker.service

if [[ $failures -eq 0 ]]; then
  echo "systemd units: all checks passed"
else
  echo "systemd units: $failures check(s) failed"
fi
[[ $failures -eq 0 ]]
