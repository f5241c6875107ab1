#!/usr/bin/env bash
# Builds every libFuzzer target of tests/fuzz (--config=fuzz: clang 14, ASan,
# UBSan) and runs each for SECONDS (default 20) on a copy of its seed corpus,
# one after another. A crash stops the script with the fuzzer's exit status;
# the reproducer is left in $WEFT_FUZZ_OUT/<target>/ (copy it into
# tests/fuzz/corpus/<target>/ as crash-<what> once fixed: the target's
# *_corpus_test then replays it in every test run).
#
# Usage: tools/fuzz.sh [SECONDS] [TARGET...]   (targets: net_fuzz, cni_fuzz, ...)
# The fuzz build uses its own Bazel output base (another compiler), so it does
# not evict the gcc build of the rest of the tree.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-20}
shift || true
out=${WEFT_FUZZ_OUT:-/tmp/weft-fuzz}
output_base=${WEFT_FUZZ_OUTPUT_BASE:-$HOME/.cache/bazel-weft-fuzz}

if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(sed -n 's/^ *name = "\([a-z0-9_]*_fuzz\)",$/\1/p' tests/fuzz/BUILD.bazel)
fi

# --symlink_prefix=/: no bazel-* links into this output base, which the main
# output base would otherwise read as source packages.
bazel --output_base="$output_base" build --config=fuzz --symlink_prefix=/ "${targets[@]/#/\/\/tests/fuzz:}"
bin=$(bazel --output_base="$output_base" info --config=fuzz bazel-bin 2>/dev/null)

mkdir -p "$out"
summary=()
for t in "${targets[@]}"; do
  work="$out/$t"
  rm -rf "$work/corpus"
  mkdir -p "$work/corpus"
  find "tests/fuzz/corpus/$t" -type f ! -name README -exec cp {} "$work/corpus/" \;
  start=$(date +%s)
  set +e
  ( cd "$work" && "$bin/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 -print_final_stats=1 corpus ) >"$work/log" 2>&1
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  summary+=("$t: ${execs:-?} executions in $(($(date +%s) - start)) s, exit $rc")
  echo "fuzz: ${summary[-1]}" >&2
  if ((rc != 0)); then
    tail -40 "$work/log" >&2
    echo "fuzz: $t FAILED; reproducer and log in $work" >&2
    exit "$rc"
  fi
done
printf 'fuzz: %s\n' "${summary[@]}"
