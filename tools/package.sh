#!/usr/bin/env bash
# Builds the Debian package weft_<version>_amd64.deb: the four binaries, the
# systemd units, the /etc/default files, man pages made from --help, and a
# `weft` system user made at install. Dependencies come from the shared
# libraries the binaries link (dpkg-shlibdeps).
#
#   tools/package.sh [--out DIR]            bazel build --config=release, then package
#   tools/package.sh --bin-dir DIR [--out DIR] [--no-lintian]
#                                           package binaries already built (DIR holds
#                                           weft-controller, weft-agent, weftctl, weft-cni)
#
# Prints the path of the .deb. Runs lintian on it (unless --no-lintian) and
# fails on any lintian error. Needs dpkg-dev, fakeroot and lintian (tools/setup.sh).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir=""
out_dir="$PWD"
run_lintian=1
while (($#)); do
  case "$1" in
    --bin-dir) bin_dir=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    --no-lintian) run_lintian=0; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [[ -z "$bin_dir" ]]; then
  (cd "$root" && bazel build --config=release //controller:weft-controller //agent:weft-agent \
    //tools/weftctl:weftctl //cni:weft-cni >&2)
  bin_dir=$(mktemp -d)
  bin_dir_tmp=$bin_dir
  for b in controller/weft-controller agent/weft-agent tools/weftctl/weftctl cni/weft-cni; do
    ln -s "$root/bazel-bin/$b" "$bin_dir/"
  done
fi
for b in weft-controller weft-agent weftctl weft-cni; do
  [[ -x "$bin_dir/$b" ]] || { echo "package.sh: no executable $bin_dir/$b" >&2; exit 2; }
done

# The version the binaries were built with: "weft-controller 0.1.0 (commit ...)".
version=$("$bin_dir/weft-controller" --version | awk '{print $2}')
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "package.sh: odd version '$version'" >&2; exit 1; }
arch=$(dpkg --print-architecture)

work=$(mktemp -d)
cleanup() { rm -rf "$work"; [[ -n "${bin_dir_tmp:-}" ]] && rm -rf "$bin_dir_tmp"; true; }
trap cleanup EXIT
pkg="$work/weft_${version}_${arch}"
mkdir -p "$pkg"/{DEBIAN,usr/bin,usr/lib/cni,lib/systemd/system,etc/default,usr/share/man/man1}
mkdir -p "$pkg/usr/share/doc/weft/examples" "$pkg/usr/share/lintian/overrides"

# Binaries, stripped (a debug build's symbols would be most of the package).
install_bin() {
  install -m 0755 "$bin_dir/$1" "$2/$1"
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$2/$1"
}
install_bin weft-controller "$pkg/usr/bin"
install_bin weft-agent "$pkg/usr/bin"
install_bin weftctl "$pkg/usr/bin"
install_bin weft-cni "$pkg/usr/lib/cni"

# Units: as in deploy/systemd, with the packaged paths; the controller runs as
# the package's `weft` user (systemd uses a static user of that name rather
# than allocating a dynamic one).
for u in weft-controller weft-agent; do
  sed -e 's|/usr/local/bin/|/usr/bin/|g' \
      -e 's|the binary to /usr/local/bin/|the binary to /usr/bin/|' \
      "$root/deploy/systemd/$u.service" > "$pkg/lib/systemd/system/$u.service"
  install -m 0644 "$root/deploy/default/$u" "$pkg/etc/default/$u"
done
sed -i 's|^DynamicUser=yes|DynamicUser=yes\nUser=weft\nGroup=weft|' "$pkg/lib/systemd/system/weft-controller.service"
chmod 0644 "$pkg"/lib/systemd/system/*.service
install -m 0644 "$root/deploy/cni/10-weft.conflist" "$pkg/usr/share/doc/weft/examples/"
install -m 0644 "$root/deploy/systemd/docker.service.d/10-weft.conf" "$pkg/usr/share/doc/weft/examples/docker-10-weft.conf"
install -m 0644 "$root/docs/operations.md" "$pkg/usr/share/doc/weft/operations.md"

# Man pages from each program's --help (the one source of truth for flags).
man_page() {  # name summary
  local name=$1 summary=$2 upper
  upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
  {
    echo ".TH $upper 1 \"\" \"weft $version\" \"Weft\""
    echo ".SH NAME"
    echo "$name \\- $summary"
    echo ".SH DESCRIPTION"
    echo ".nf"
    # Backslashes doubled; a line starting with . or ' is text, not a request.
    "$3" --help | sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
    echo ".fi"
    echo ".SH SEE ALSO"
    echo "/usr/share/doc/weft/operations.md"
  } | gzip -9n > "$pkg/usr/share/man/man1/$name.1.gz"
}
man_page weft-controller "Weft's subnet lease controller" "$bin_dir/weft-controller"
man_page weft-agent "Weft's per-host agent" "$bin_dir/weft-agent"
man_page weftctl "command line for a Weft controller" "$bin_dir/weftctl"
chmod 0644 "$pkg"/usr/share/man/man1/*

cat > "$pkg/usr/share/doc/weft/copyright" <<'EOF'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: weft
Comment: A flannel-compatible container overlay network (controller, agent,
 weftctl, CNI plugin). proto/grpc/ restates gRPC's health and reflection
 protocols (grpc/grpc-proto, Apache-2.0).

Files: *
Copyright: 2026 The Weft authors
License: Apache-2.0

License: Apache-2.0
 On Debian systems, the full text of the Apache License, Version 2.0 can be
 found in /usr/share/common-licenses/Apache-2.0.
EOF
{
  echo "weft ($version) unstable; urgency=medium"
  echo
  echo "  * Package built by tools/package.sh from commit $("$bin_dir/weft-controller" --version | sed -n 's/.*(commit \([^,)]*\).*/\1/p')."
  echo
  echo " -- Weft maintainers <weft@example.org>  $(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")"
} | gzip -9n > "$pkg/usr/share/doc/weft/changelog.gz"
find "$pkg/usr/share/doc/weft" -type f -exec chmod 0644 {} +

# Things lintian flags that are intended.
cat > "$pkg/usr/share/lintian/overrides/weft" <<'EOF'
# Bazel's toolchain links without Debian's hardening flags (no -D_FORTIFY_SOURCE by default).
weft: hardening-no-fortify-functions [*]
EOF
chmod 0644 "$pkg/usr/share/lintian/overrides/weft"

# Dependencies from the shared libraries the binaries link.
shlib_dir="$work/shlibs"
mkdir -p "$shlib_dir/debian"
printf 'Source: weft\n\nPackage: weft\nArchitecture: any\n' > "$shlib_dir/debian/control"
depends=$(cd "$shlib_dir" && dpkg-shlibdeps -O "$pkg/usr/bin/weft-controller" "$pkg/usr/bin/weft-agent" \
  "$pkg/usr/bin/weftctl" "$pkg/usr/lib/cni/weft-cni" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n "$depends" ]] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<EOF
Package: weft
Version: $version
Architecture: $arch
Maintainer: Weft maintainers <weft@example.org>
Installed-Size: $installed_size
Depends: adduser, $depends
Recommends: containernetworking-plugins, iptables, libcurl4
Suggests: etcd-client
Section: net
Priority: optional
Homepage: https://github.com/flannel-io/flannel
Description: flannel-compatible container overlay network
 Weft gives each host of a container cluster its own subnet out of one
 cluster network and connects the hosts, keeping flannel's data formats.
 .
 This package holds weft-controller (the subnet lease allocator, with an
 embedded store and an etcd v3 compatible API), weft-agent (the per-host
 data path: VXLAN, UDP, host-gw, AWS VPC and GCE routes), weftctl (the
 operator's command line) and weft-cni (the CNI plugin, in /usr/lib/cni),
 with systemd units that are installed but not enabled.
EOF
printf '/etc/default/weft-controller\n/etc/default/weft-agent\n' > "$pkg/DEBIAN/conffiles"

cat > "$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  # The controller's user; its state lives in /var/lib/weft (the unit's StateDirectory).
  if ! getent passwd weft >/dev/null; then
    adduser --system --group --quiet --home /var/lib/weft --no-create-home \
      --gecos "Weft controller" weft
  fi
  if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
  fi
fi
exit 0
EOF
cat > "$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
  # Purge removes the state too: the embedded store and the agent's identity.
  rm -rf /var/lib/weft /var/lib/private/weft /var/lib/weft-agent
  if getent passwd weft >/dev/null && command -v deluser >/dev/null; then
    deluser --system --quiet weft >/dev/null || true
  fi
fi
exit 0
EOF
cat > "$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ] && command -v deb-systemd-invoke >/dev/null; then
  deb-systemd-invoke stop weft-agent.service weft-controller.service >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$pkg"/DEBIAN/postinst "$pkg"/DEBIAN/postrm "$pkg"/DEBIAN/prerm

mkdir -p "$out_dir"
deb="$out_dir/weft_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >&2

if ((run_lintian)); then
  # Errors fail the build; warnings are shown.
  lintian --tag-display-limit 0 "$deb" >&2 || {
    rc=$?
    if lintian "$deb" 2>/dev/null | grep -q '^E:'; then
      echo "package.sh: lintian reports errors" >&2
      exit 1
    fi
    [[ $rc -le 1 ]] || exit "$rc"
  }
fi
echo "$deb"
