#!/usr/bin/env bash
# Runs Weft's whole test suite: installs what it needs, builds, runs every test
# (unit tests in Bazel's sandbox, root tests with network namespaces outside it).
# Needs root (network namespaces, VXLAN, TUN). Usage: tools/test.sh [bazel test args]
# Then, unless WEFT_CI_QUICK=1 or test args were given, two more phases:
#   asan  the unit and integration tests (all but the root ones) built with
#         --config=asan (AddressSanitizer + UndefinedBehaviorSanitizer);
#   fuzz  tools/fuzz.sh: every libFuzzer target briefly on its seed corpus
#         (WEFT_FUZZ_SECONDS each, default 15).
# Each phase's time is printed; docs/fuzzing.md records the figures.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh
if [[ $(id -u) -ne 0 ]]; then
  echo "test.sh: the suite creates network namespaces and needs root (run with sudo)" >&2
  exit 2
fi

log=$(mktemp)
failures=$(mktemp)
trap 'rm -f "$log" "$failures"' EXIT
# CI shows only the end of this output: keep the end of each failed test's log
# (read after its phase, while bazel-testlogs still points at that phase's
# configuration) to print last, so a failure can be diagnosed from it alone.
note_failures() {
  local phase=$1 from_line=$2 target dir
  tail -n "+$from_line" "$log" |
    grep -E '^//\S+\s+(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' |
    awk '{print $1}' | sort -u |
    while read -r target; do
      dir="bazel-testlogs/${target#//}"
      dir=${dir/://}
      echo "==== $phase: $target" >>"$failures"
      find "$dir" -name test.log 2>/dev/null | while read -r f; do
        echo "-- $f" >>"$failures"
        tail -n 30 "$f" >>"$failures"
      done
    done || true
}
phase_start=$(date +%s)
set +e
# Build everything first: tests that start clusters of processes and time their
# conditions then never run beside the compiler on a cold machine.
# (With arguments, which may be test options, straight to `bazel test`.)
rc=0
: >"$log"
if ((! $#)); then
  bazel build --keep_going //... 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
fi
if ((rc == 0)); then
  bazel test --test_summary=short --keep_going "${@:-//...}" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
fi
set -e
phases="tests $(($(date +%s) - phase_start)) s (exit $rc)"
note_failures tests 1

if ((! $#)) && [[ ${WEFT_CI_QUICK:-0} != 1 ]]; then
  phase_start=$(date +%s)
  set +e
  asan_from=$(($(wc -l <"$log") + 1))
  # Only what the tests run here need (not the benches, the package, or the
  # root tests' binaries, which the ordinary phase builds anyway).
  bazel build --config=asan --keep_going --build_tests_only --test_tag_filters=-root //... 2>&1 | tee -a "$log"
  asan_rc=${PIPESTATUS[0]}
  if ((asan_rc == 0)); then
    bazel test --config=asan --test_summary=short --keep_going --build_tests_only --test_tag_filters=-root //... 2>&1 | tee -a "$log"
    asan_rc=${PIPESTATUS[0]}
  fi
  set -e
  note_failures asan "$asan_from"
  phases+=", asan $(($(date +%s) - phase_start)) s (exit $asan_rc)"
  phase_start=$(date +%s)
  set +e
  bash tools/fuzz.sh "${WEFT_FUZZ_SECONDS:-15}"
  fuzz_rc=$?
  set -e
  phases+=", fuzz $(($(date +%s) - phase_start)) s (exit $fuzz_rc)"
  ((rc == 0)) && rc=$asan_rc
  ((rc == 0)) && rc=$fuzz_rc
fi
cat "$failures"
echo "phases: $phases"

passed=$(grep -cE '^//\S+\s+(\(cached\) )?PASSED' "$log" || true)
failed=$(grep -cE '^//\S+\s+(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log" || true)
echo "tests: ${passed} passed, ${failed} failed"
exit "$rc"
