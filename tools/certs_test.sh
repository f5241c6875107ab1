#!/usr/bin/env bash
# tools/certs.sh makes what the controller's identity rules expect: every cert
# chains to the CA, subjects carry the node / operator identities, the server
# cert has its SANs, validity windows can be put in the past or future, keys are
# private, and bad names or existing files are refused.
set -euo pipefail
certs=tools/certs.sh
d=${TEST_TMPDIR:-$(mktemp -d)}/certs
fail() { echo "FAIL: $*" >&2; exit 1; }

bash $certs --dir "$d" ca >/dev/null
bash $certs --dir "$d" server controller IP:127.0.0.1,DNS:localhost >/dev/null
bash $certs --dir "$d" node worker-1 >/dev/null
bash $certs --dir "$d" admin alice >/dev/null
bash $certs --dir "$d" client grafana >/dev/null
bash $certs --dir "$d" --expired node stale >/dev/null
bash $certs --dir "$d" --not-yet-valid node early >/dev/null

for c in controller node-worker-1 admin grafana; do
  openssl verify -CAfile "$d/ca.crt" "$d/$c.crt" >/dev/null || fail "$c does not chain to the CA"
done
subject() { openssl x509 -in "$d/$1.crt" -noout -subject -nameopt RFC2253; }
[[ $(subject node-worker-1) == "subject=CN=system:node:worker-1,O=system:nodes" ]] || fail "node subject: $(subject node-worker-1)"
[[ $(subject admin) == "subject=CN=alice,O=weft:admins" ]] || fail "admin subject: $(subject admin)"
[[ $(subject grafana) == "subject=CN=grafana" ]] || fail "client subject: $(subject grafana)"
openssl x509 -in "$d/controller.crt" -noout -ext subjectAltName | grep -q "IP Address:127.0.0.1, DNS:localhost" ||
  fail "server SANs missing"
openssl x509 -in "$d/node-worker-1.crt" -noout -ext extendedKeyUsage | grep -q "TLS Web Client Authentication" ||
  fail "node cert lacks clientAuth"

out=$(openssl verify -CAfile "$d/ca.crt" "$d/node-stale.crt" 2>&1 || true)
[[ $out == *"certificate has expired"* ]] || fail "--expired cert verifies: $out"
out=$(openssl verify -CAfile "$d/ca.crt" "$d/node-early.crt" 2>&1 || true)
[[ $out == *"not yet valid"* ]] || fail "--not-yet-valid cert verifies: $out"

[[ $(stat -c %a "$d/node-worker-1.key") == 600 ]] || fail "key mode $(stat -c %a "$d/node-worker-1.key")"
[[ $(stat -c %a "$d/ca.key") == 600 ]] || fail "CA key mode"

if bash $certs --dir "$d" node worker-1 2>/dev/null; then fail "re-issue over an existing cert"; fi
if bash $certs --dir "$d" node 'a/b' 2>/dev/null; then fail "slash in a node name accepted"; fi
if bash $certs --dir "$d" node "$(printf 'x%.0s' {1..300})" 2>/dev/null; then fail "300-char node name accepted"; fi
if bash $certs --dir "$d" server s2 'IP:1.2.3.4;rm' 2>/dev/null; then fail "bad SANs accepted"; fi
if bash $certs --dir "$d/none" node n 2>/dev/null; then fail "signed without a CA"; fi
echo "certs_test: ok"
