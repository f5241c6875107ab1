#!/usr/bin/env bash
# Makes the certificates a Weft cluster runs on, with openssl: one CA, the
# controller's server certificate, one client certificate per node, one for
# operators. The controller reads a caller's identity from its certificate:
#   node      O=system:nodes, CN=system:node:<node-name>   (may touch only its own lease)
#   operator  O=weft:admins                                 (may do everything)
#   anything else signed by the CA                          (read-only)
#
# Usage: tools/certs.sh [options] COMMAND [ARGS]
#   ca                          DIR/ca.crt, DIR/ca.key (kept secret: it signs every identity)
#   server NAME SANS            DIR/NAME.crt, .key; SANS e.g. "IP:127.0.0.1,DNS:localhost,DNS:weft.example"
#   node NODE_NAME              DIR/node-NODE_NAME.crt, .key
#   admin [CN]                  DIR/admin.crt, .key (CN defaults to weft-admin)
#   client NAME [ORG]           DIR/NAME.crt, .key: any other identity (a reader unless ORG says otherwise)
# Options:
#   --dir DIR                   where the files go (default: ./weft-certs)
#   --days N                    validity (default 365; the CA gets 10 years)
#   --expired                   validity entirely in the past (for tests)
#   --not-yet-valid             validity entirely in the future (for tests)
#   --ca NAME                   sign with DIR/NAME.crt/.key instead of DIR/ca.* (`ca` makes NAME.*)
# Keys are ECDSA P-256, written mode 0600. An existing file is never overwritten:
# remove it first to re-issue (rotation: issue a new cert, then swap the files;
# weft-controller and its clients re-read certificate files when they change).
set -euo pipefail

dir=./weft-certs
days=365
window=now
ca=ca
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --expired) window=past; shift ;;
    --not-yet-valid) window=future; shift ;;
    --ca) ca=$2; shift 2 ;;
    --help|-h) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "certs.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 1 ]] || { echo "certs.sh: a command is needed (ca, server, node, admin, client); --help" >&2; exit 2; }
[[ $days =~ ^[1-9][0-9]{0,4}$ ]] || { echo "certs.sh: --days must be a positive number" >&2; exit 2; }
cmd=$1; shift
mkdir -p "$dir"
umask 077

die() { echo "certs.sh: $*" >&2; exit 2; }
# Names become file names and subject fields: keep them to what a DNS label or node name holds.
check_name() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$ ]] || die "bad $2 '$1' (letters, digits, . _ -)"; }

# openssl ca gives control of notBefore/notAfter (x509 -req in OpenSSL 3.0 does not).
sign() {  # sign CSR OUT EXTENSIONS
  local csr=$1 out=$2 ext=$3 state start end
  [[ -f $dir/$ca.crt && -f $dir/$ca.key ]] || die "no CA at $dir/$ca.crt (run: certs.sh --dir $dir ca)"
  state=$(mktemp -d)
  : >"$state/index.txt"
  cat >"$state/openssl.cnf" <<EOF
[ca]
default_ca = weft
[weft]
database = $state/index.txt
new_certs_dir = $state
serial = $state/serial
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[anything]
organizationName = optional
commonName = supplied
[ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
$ext
EOF
  openssl rand -hex 16 >"$state/serial"
  case $window in
    now) start=$(date -u -d '-5 minutes' +%Y%m%d%H%M%SZ); end=$(date -u -d "+$days days" +%Y%m%d%H%M%SZ) ;;
    past) start=$(date -u -d '-30 days' +%Y%m%d%H%M%SZ); end=$(date -u -d '-1 day' +%Y%m%d%H%M%SZ) ;;
    future) start=$(date -u -d '+1 day' +%Y%m%d%H%M%SZ); end=$(date -u -d '+30 days' +%Y%m%d%H%M%SZ) ;;
  esac
  openssl ca -batch -notext -config "$state/openssl.cnf" -extensions ext -cert "$dir/$ca.crt" \
    -keyfile "$dir/$ca.key" -startdate "$start" -enddate "$end" -in "$csr" -out "$out" 2>"$state/err" ||
    { cat "$state/err" >&2; rm -rf "$state"; die "signing $out failed"; }
  rm -rf "$state"
}

issue() {  # issue NAME SUBJECT EXTENSIONS
  local name=$1 subj=$2 ext=$3
  [[ ! -e $dir/$name.crt && ! -e $dir/$name.key ]] || die "$dir/$name.crt or .key exists; remove it to re-issue"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
  openssl req -new -key "$dir/$name.key" -subj "$subj" -out "$dir/$name.csr"
  sign "$dir/$name.csr" "$dir/$name.crt" "$ext"
  rm -f "$dir/$name.csr"
  chmod 0644 "$dir/$name.crt"
  echo "$dir/$name.crt"
}

case $cmd in
  ca)
    [[ ! -e $dir/$ca.crt && ! -e $dir/$ca.key ]] || die "$dir/$ca.crt exists; remove it to make a new CA"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$ca.key" 2>/dev/null
    openssl req -new -x509 -key "$dir/$ca.key" -subj "/O=weft/CN=weft-ca" -days 3650 -sha256 \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -out "$dir/$ca.crt"
    chmod 0644 "$dir/$ca.crt"
    echo "$dir/$ca.crt"
    ;;
  server)
    [[ $# -eq 2 ]] || die "usage: server NAME SANS (e.g. IP:127.0.0.1,DNS:localhost)"
    check_name "$1" name
    [[ $2 =~ ^((IP|DNS):[A-Za-z0-9.:*-]+,?)+$ ]] || die "bad SANS '$2' (IP:addr or DNS:name, comma-separated)"
    issue "$1" "/O=weft/CN=$1" "extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $2"
    ;;
  node)
    [[ $# -eq 1 ]] || die "usage: node NODE_NAME"
    check_name "$1" "node name"
    issue "node-$1" "/O=system:nodes/CN=system:node:$1" "extendedKeyUsage = clientAuth"
    ;;
  admin)
    cn=${1:-weft-admin}
    check_name "$cn" CN
    issue admin "/O=weft:admins/CN=$cn" "extendedKeyUsage = clientAuth"
    ;;
  client)
    [[ $# -ge 1 && $# -le 2 ]] || die "usage: client NAME [ORG]"
    check_name "$1" name
    subj="/CN=$1"
    if [[ $# -eq 2 ]]; then
      [[ $2 =~ ^[A-Za-z0-9:._-]{1,64}$ ]] || die "bad ORG '$2'"
      subj="/O=$2/CN=$1"
    fi
    issue "$1" "$subj" "extendedKeyUsage = clientAuth"
    ;;
  *) die "unknown command $cmd (ca, server, node, admin, client)" ;;
esac
