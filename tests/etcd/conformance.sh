#!/bin/bash
# etcdctl conformance transcript: runs a fixed sequence of etcdctl (v3 API)
# commands against one fresh etcd-compatible endpoint and prints what etcdctl
# answered, normalized where etcd's answers are not deterministic (cluster,
# member and lease ids, raft term/index, version, db size, remaining TTLs).
# Run it against a real etcd and against Weft's server; the transcripts must be
# equal. Usage: conformance.sh HOST:PORT [ETCDCTL]
set -u
EP="$1"
ETCDCTL="${2:-etcdctl}"
export ETCDCTL_API=3
SUBST=()  # sed expressions collected while running (lease ids...)
N=0

ctl() { "$ETCDCTL" --endpoints "$EP" --command-timeout=5s "$@"; }

# Prints the command, then its stdout and stderr (clientv3's JSON log lines
# dropped), then its exit code.
run() {
  N=$((N + 1))
  echo "### $N: etcdctl $*"
  local out rc
  out="$(ctl "$@" 2>&1)"
  rc=$?
  printf '%s\n' "$out" | grep -v '^{"level":'
  echo "[exit $rc]"
}

# Like run, with stdin from $STDIN (shown as $SHOW if set).
run_in() {
  N=$((N + 1))
  echo "### $N: etcdctl $* <<< ${SHOW:-$(printf '%s' "$STDIN" | tr '\n' '|')}"
  local out rc
  out="$(printf '%s' "$STDIN" | ctl "$@" 2>&1)"
  rc=$?
  printf '%s\n' "$out" | grep -v '^{"level":'
  echo "[exit $rc]"
}

# A watch that ends after $1 seconds (etcdctl watches until killed).
run_watch() {
  local secs="$1"
  shift
  N=$((N + 1))
  echo "### $N: etcdctl watch $* (for ${secs}s)"
  local out
  out="$(timeout "$secs" "$ETCDCTL" --endpoints "$EP" watch "$@" 2>&1)"
  printf '%s\n' "$out" | grep -v '^{"level":'
}

# etcd lists a lease's keys in map order: sorts "attached keys([b a])".
sort_attached_keys() {
  local line sorted
  while IFS= read -r line; do
    if [[ "$line" =~ ^(.*attached\ keys\(\[)(.*)(\]\).*)$ ]]; then
      sorted=$(tr ' ' '\n' <<< "${BASH_REMATCH[2]}" | sort | paste -sd' ')
      line="${BASH_REMATCH[1]}${sorted}${BASH_REMATCH[3]}"
    fi
    printf '%s\n' "$line"
  done
}

rev() { ctl get x -w json | sed -n 's/.*"revision":\([0-9]*\).*/\1/p'; }

# Remembers a lease id (hex, as etcdctl prints it) for normalization.
name_lease() {
  local hex="$1" name="$2"
  SUBST+=(-e "s/$hex/$name/g" -e "s/$((16#$hex))/$name/g")
}

transcript() {
  # --- put / get ---
  run put foo bar
  run put foo baz
  run get foo
  run get foo -w json
  run get foo --rev 2
  run get foo --rev 2 -w json
  run put --prev-kv foo qux
  run put --prev-kv foo quux -w json
  run get nothing-here
  run get nothing-here -w json
  run put "" empty-key
  run put --ignore-value foo
  run get foo
  run put --ignore-value missing

  # --- ranges ---
  for k in a/1 a/2 a/3 b/1; do run put "$k" "v-$k"; done
  run get --prefix a
  run get --prefix a -w json
  run get --prefix a --keys-only
  run get --prefix a --limit 2 -w json
  run get --prefix a --sort-by=MODIFY --order=DESCEND
  run get --prefix a --sort-by=VALUE --order=ASCEND --limit 2
  run get --prefix a --consistency=s -w json
  run get --from-key a/2
  run get a/1 a/3
  run get --prefix a --rev 12
  run get --prefix "" --keys-only
  run get "" --from-key --limit 1 -w json

  # --- delete ---
  run del a/1
  run del a/1
  run del --prev-kv --prefix a -w json
  run del --from-key b
  run get --prefix "" --keys-only

  # --- txn ---
  run put t1 one
  STDIN=$'value("t1") = "one"\n\nput t1 two\nget t1\n\nput t1 nope\n\n'
  run_in txn
  STDIN=$'value("t1") = "one"\n\nput t1 nope\n\nget t1\ndel t1\nget t1\n\n'
  run_in txn -w json
  STDIN=$'version("t2") = "0"\n\nput t2 created\nput t3 created\n\n\n'
  run_in txn -w json
  STDIN=$'mod("t2") > "1"\ncreate("t3") > "0"\n\nget --prefix t\n\n\n'
  run_in txn
  STDIN=$'\nput t4 x\nput t4 y\n\n\n'
  run_in txn
  STDIN=$'\nget t2\n\n\n'
  run_in txn -w json
  STDIN=$'\n'"$(for i in $(seq 1 129); do echo "put many/$i x"; done)"$'\n\n\n'
  SHOW="129 puts" run_in txn
  run get --prefix t

  # --- watch (from a revision: deterministic whatever the timing) ---
  run_watch 3 foo --rev 1
  run_watch 3 --prefix t --rev 1 --prev-kv
  run_watch 3 t2 t4 --rev 1
  local r
  r=$(rev)
  # Started before the writes, from the revision after them: the events are the
  # same whether they arrive live or from history.
  N=$((N + 1))
  (N=$((N - 1)); run_watch 6 --prefix w --rev $((r + 1)) > "$TMP/watch_live") &
  local watcher=$!
  sleep 1
  run put w/1 a
  run put w/1 b
  run del w/1
  STDIN=$'\nput w/2 x\nput w/3 y\n\n\n'
  run_in txn
  wait "$watcher"
  cat "$TMP/watch_live"
  run_watch 3 --prefix w --rev $((r + 1)) -w json

  # --- leases ---
  local l1
  l1=$(ctl lease grant 100 | awk '{print $2}')
  name_lease "$l1" LEASE1
  run put --lease "$l1" lk1 v1
  run put --lease "$l1" lk2 v2
  run get lk1 -w json
  run lease timetolive "$l1"
  run lease timetolive "$l1" --keys | sort_attached_keys
  run lease keep-alive --once "$l1"
  run lease list
  run lease revoke "$l1"
  run get --prefix lk
  run lease timetolive "$l1"
  run lease keep-alive --once "$l1"
  run lease revoke "$l1"
  run put --lease "$l1" lk3 v3
  run lease grant 9000000001
  run lease grant 1  # etcd raises it to its minimum TTL

  # --- compaction and revisions ---
  r=$(rev)
  run compact $((r - 2))
  run compact $((r - 2))
  run compact $((r + 100))
  run get foo --rev $((r - 3))
  run get foo --rev $((r - 2))
  run get foo --rev $((r + 100))
  run_watch 3 foo --rev $((r - 3))

  # --- status ---
  run endpoint status
  run endpoint status -w json
  run get --prefix "" -w json --keys-only
}

TMP=$(mktemp -d "${TEST_TMPDIR:-/tmp}/conformance.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
transcript > "$TMP/raw"
sed -E "${SUBST[@]}" \
  -e 's/"cluster_id":[0-9]+/"cluster_id":CLUSTER/g' \
  -e 's/"member_id":[0-9]+/"member_id":MEMBER/g' \
  -e 's/"raft_term":[0-9]+/"raft_term":TERM/g' \
  -e 's/"(leader|raftIndex|raftTerm|raftAppliedIndex|dbSize|dbSizeInUse)":[0-9]+/"\1":N/g' \
  -e 's/"version":"[0-9.]+"/"version":"V"/g' \
  -e 's/remaining\([0-9]+s\)/remaining(Rs)/g' \
  -e 's/"ttl":[0-9]+/"ttl":R/g' \
  -e 's/^lease [0-9a-f]+ granted/lease ID granted/' \
  "$TMP/raw" |
  # endpoint status, simple form: endpoint, id, version, db size, leader, learner, term, index, applied, errors
  sed -E 's/^([0-9.:]+), [0-9a-f]+, [0-9.]+, [0-9.]+ [kMG]?B, (true|false), (true|false), [0-9]+, [0-9]+, [0-9]+, /ENDPOINT, ID, V, SIZE, \2, \3, TERM, INDEX, APPLIED, /' |
  sed -E "s/$EP/ENDPOINT/g"
