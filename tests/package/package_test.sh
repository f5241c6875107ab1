#!/bin/bash
# tools/package.sh builds weft_<version>_amd64.deb from this build's binaries
# (lintian: no errors); dpkg -i installs it on this machine; the files, the
# `weft` user and the installed binaries are checked; dpkg --purge removes
# every trace. Needs root; refuses to run over an installed weft package.
set -u
# Bazel's strict environment leaves the sbin directories out; dpkg needs them.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

[[ $(id -u) -eq 0 ]] || { echo "package_test: needs root" >&2; exit 1; }
if dpkg-query -W -f='${Status}' weft 2>/dev/null | grep -q installed; then
  echo "package_test: a weft package is installed already; not touching it" >&2
  exit 1
fi
user_before=0
getent passwd weft >/dev/null && user_before=1

bins="$TEST_TMPDIR/bin"
mkdir -p "$bins"
for b in controller/weft-controller agent/weft-agent tools/weftctl/weftctl cni/weft-cni; do
  ln -sf "$PWD/$b" "$bins/"
done
deb=$(tools/package.sh --bin-dir "$bins" --out "$TEST_TMPDIR") || { echo "FAIL: package.sh failed" >&2; exit 1; }
[[ "$(basename "$deb")" =~ ^weft_[0-9]+\.[0-9]+\.[0-9]+_amd64\.deb$ ]] || err "package name $deb"
dpkg-deb -f "$deb" Depends | grep -q "libgrpc++" || err "Depends lacks the gRPC library: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Depends | grep -q "adduser" || err "Depends lacks adduser"

purge() { dpkg --purge weft >/dev/null 2>&1; }
trap purge EXIT
if ! dpkg -i "$deb" > "$TEST_TMPDIR/dpkg-install.log" 2>&1; then
  cat "$TEST_TMPDIR/dpkg-install.log" >&2
  echo "FAIL: dpkg -i failed" >&2
  exit 1
fi

for f in /usr/bin/weft-controller /usr/bin/weft-agent /usr/bin/weftctl /usr/lib/cni/weft-cni \
         /lib/systemd/system/weft-controller.service /lib/systemd/system/weft-agent.service \
         /etc/default/weft-controller /etc/default/weft-agent /usr/share/doc/weft/copyright \
         /usr/share/man/man1/weft-controller.1.gz; do
  [[ -e "$f" ]] || err "$f not installed"
  dpkg -S "$f" >/dev/null 2>&1 || err "$f not owned by the package"
done
out=$(/usr/bin/weft-controller --version) || err "installed weft-controller --version failed"
[[ "$out" =~ ^weft-controller\ [0-9]+\.[0-9]+\.[0-9]+\ \(commit\  ]] || err "weft-controller --version: $out"
/usr/lib/cni/weft-cni --version | grep -q "^weft-cni " || err "weft-cni --version"
/usr/bin/weftctl --version | grep -q "^weftctl " || err "weftctl --version"
grep -q '^ExecStart=/usr/bin/weft-controller$' /lib/systemd/system/weft-controller.service || err "controller unit ExecStart"
grep -q '^User=weft$' /lib/systemd/system/weft-controller.service || err "controller unit runs not as weft"
grep -q '^ExecStart=/usr/bin/weft-agent$' /lib/systemd/system/weft-agent.service || err "agent unit ExecStart"
grep -qx /etc/default/weft-controller /var/lib/dpkg/info/weft.conffiles || err "/etc/default/weft-controller not a conffile"
zcat /usr/share/man/man1/weft-controller.1.gz | grep -q -- "--data-dir" || err "man page lacks --data-dir"
uid=$(getent passwd weft | cut -d: -f3)
[[ -n "$uid" && "$uid" -lt 1000 ]] || err "no weft system user (uid '$uid')"
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/weft-controller.service /lib/systemd/system/weft-agent.service \
    > "$TEST_TMPDIR/verify.log" 2>&1 || { cat "$TEST_TMPDIR/verify.log" >&2; err "systemd-analyze verify"; }
fi
# The installed controller runs as the packaged user and answers weftctl.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data=$(mktemp -d /tmp/weft-package-test.XXXXXX)  # the weft user cannot enter Bazel's /root/.cache
chown weft:weft "$data"
setpriv --reuid weft --regid weft --clear-groups /usr/bin/weft-controller --data-dir "$data" \
  --listen "127.0.0.1:$port" --metrics-listen "" > "$TEST_TMPDIR/controller.log" 2>&1 &
ctl_pid=$!
ok=0
for _ in $(seq 1 100); do
  if /usr/bin/weftctl --controller "127.0.0.1:$port" --timeout 1s status > "$TEST_TMPDIR/status.txt" 2>&1; then
    ok=1; break
  fi
  sleep 0.1
done
[[ $ok -eq 1 ]] || { cat "$TEST_TMPDIR/status.txt" "$TEST_TMPDIR/controller.log" >&2; err "installed controller did not answer"; }
grep -q "rocksdb" "$TEST_TMPDIR/status.txt" || err "status: $(cat "$TEST_TMPDIR/status.txt")"
kill -TERM "$ctl_pid"; wait "$ctl_pid" || err "controller exit status $?"
rm -rf "$data"

# Purge: nothing of the package is left, the user neither (unless it was there before).
dpkg --purge weft > "$TEST_TMPDIR/dpkg-purge.log" 2>&1 || { cat "$TEST_TMPDIR/dpkg-purge.log" >&2; err "purge failed"; }
trap - EXIT
dpkg-query -W -f='${Status}' weft 2>/dev/null | grep -q "installed" && err "still installed after purge"
for f in /usr/bin/weft-controller /usr/lib/cni/weft-cni /etc/default/weft-controller \
         /lib/systemd/system/weft-controller.service /usr/share/doc/weft; do
  [[ -e "$f" ]] && err "$f left after purge"
done
if [[ $user_before -eq 0 ]] && getent passwd weft >/dev/null; then err "weft user left after purge"; fi
[[ $fail -eq 0 ]] && echo PASS
exit $fail
