#!/bin/bash
# Every binary answers --help with its own flags (grouped, described, with
# dashes) and none of Abseil's, and --version with its version and commit.
# Runs the real binaries: $1.. are weft-controller weft-agent weftctl weft-cni.
set -u
fail=0
err() { echo "FAIL: $*" >&2; fail=1; }

for bin in "$@"; do
  name=$(basename "$bin")
  out=$("$bin" --version 2>&1) || err "$name --version exited $?"
  # 0.1.0 (commit <40 hex>[-dirty]) when stamped, (commit unknown) otherwise.
  echo "$out" | grep -Eq "^$name [0-9]+\.[0-9]+\.[0-9]+ \(commit ([0-9a-f]{40}(-dirty)?|unknown)(, built [0-9TZ:-]+)?\)$" \
    || err "$name --version printed: $out"
  help=$("$bin" --help 2>&1) || err "$name --help exited $?"
  echo "$help" | grep -q "^Usage: \|^usage: " || err "$name --help has no usage line"
  for absl_flag in --flagfile --fromenv --tryfromenv --undefok --helpshort --only_check_args; do
    echo "$help" | grep -q -- "$absl_flag" && err "$name --help lists Abseil's $absl_flag"
  done
  echo "$help" | grep -q "No flags matched" && err "$name --help: No flags matched"
done

# The daemons and weftctl: every flag of their own (as --helpfull lists them,
# Abseil's files aside) appears in --help with dashes, under a titled group.
for bin in "$1" "$2" "$3"; do
  name=$(basename "$bin")
  help=$("$bin" --help)
  own=$("$bin" --helpfull | awk '/^  Flags from /{absl = ($3 ~ /absl\//)} /^    --/{ if (!absl) print $1 }' | sed 's/^--//')
  [ -n "$own" ] || err "$name --helpfull listed no flags of its own"
  for f in $own; do
    dashed=${f//_/-}
    echo "$help" | grep -Eq -- "^  --$dashed(=| *$)" || err "$name --help misses --$dashed"
  done
  echo "$help" | grep -q "^Other flags:" && err "$name --help has ungrouped flags: $(echo "$help" | sed -n '/^Other flags:/,/^$/p')"
  echo "$help" | grep -q "WEFT_<FLAG>" || err "$name --help does not say how the environment sets flags"
done
# A default and a description reach the text.
"$1" --help | grep -A1 -- "^  --data-dir=STRING" | grep -q "(default /var/lib/weft)" || err "controller: --data-dir default"
"$2" --help | grep -q "^Controller:" || err "agent: no Controller group"

# weftctl: its commands, the exit codes; weft-cni: what it is.
"$3" --help | grep -q "leases list" || err "weftctl --help lists no commands"
"$3" --help | grep -qi "exit status" || err "weftctl --help documents no exit status"
"$4" --help | grep -q "CNI_COMMAND" || err "weft-cni --help does not say how a runtime runs it"

# A bad flag is a usage error (2), not a crash.
"$1" --no-such-flag >/dev/null 2>&1; rc=$?
[ "$rc" -ne 0 ] || err "controller accepted --no-such-flag"
# weftctl's usage errors are exit status 2 exactly (its documented code), and say what was wrong.
for args in "--no-such-flag status" "bogus" "status -o xml" "--timeout banana status"; do
  # shellcheck disable=SC2086
  out=$("$3" $args 2>&1); rc=$?
  [ "$rc" -eq 2 ] || err "weftctl $args exited $rc, not 2"
  echo "$out" | grep -q "^weftctl: " || err "weftctl $args said: $out"
done
[ $fail -eq 0 ] && echo PASS
exit $fail
