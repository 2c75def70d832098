#!/usr/bin/env bash
# test.sh: the whole test suite.  Builds shoal three ways in _build/ (gcc,
# clang, gcc with AddressSanitizer+UBSan), runs `make check` in each, runs the
# threaded integration tests against a ThreadSanitizer daemon, checks
# `make distcheck`, builds, installs and purges the Debian package, fuzzes
# every harness briefly, and ends with one line "N passed, N failed".
#   --quick   only the gcc build
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash scripts/deps.sh || { echo "could not install dependencies"; echo "0 passed, 1 failed"; exit 1; }
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
  autoreconf -fi >/dev/null || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }
fi

passed=0
failed=0
jobs=$(nproc 2>/dev/null || echo 2)

# count WORD FILE: the number automake's summary gives for WORD, or 0.
count() { local v; v=$(sed -n "s/^# $1: *//p" "$2" | tail -1); echo "${v:-0}"; }

# run_build NAME CONFIGURE-ARGS...: configure, build and check in _build/NAME.
run_build() {
  local name=$1; shift
  local dir="$top/_build/$name"
  echo "=== $name: configure $* (at $((SECONDS / 60)) min)"
  mkdir -p "$dir"
  if ! (cd "$dir" && "$top/configure" -q "$@" >"$dir/configure.out" 2>&1); then
    cat "$dir/configure.out"; echo "=== $name: configure FAILED"; failed=$((failed + 1)); return
  fi
  if ! make -C "$dir" -s -j"$jobs" >"$dir/build.out" 2>&1; then
    tail -40 "$dir/build.out"; echo "=== $name: build FAILED"; failed=$((failed + 1)); return
  fi
  make -C "$dir" -s -j"$jobs" check >"$dir/check.out" 2>&1
  grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP):' "$dir/check.out" | sed "s/^/[$name] /"
  local p f
  p=$(sed -n 's/^# PASS: *//p' "$dir/check.out" | tail -1)
  f=$(( $(count FAIL "$dir/check.out") + $(count ERROR "$dir/check.out") + \
        $(count XPASS "$dir/check.out") ))
  if [ -z "$p" ]; then
    tail -40 "$dir/check.out"; echo "=== $name: make check did not run"; failed=$((failed + 1)); return
  fi
  if [ "$f" -gt 0 ]; then
    for log in $(grep -lE '^:test-result: (FAIL|ERROR)' $(find "$dir/tests" -name '*.trs') 2>/dev/null); do
      echo "--- ${log%.trs}.log"; tail -60 "${log%.trs}.log"
    done
  fi
  passed=$((passed + p)); failed=$((failed + f))
}

run_build gcc CC=gcc
if [ $quick -eq 0 ]; then
  run_build clang CC=clang
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:quarantine_size_mb=16 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_build sanitizers CC=gcc --enable-sanitizers
  echo "=== ThreadSanitizer: transfer, crash-resume, limits, durability, streaming, port mapping, service and metrics against a TSan daemon (at $((SECONDS / 60)) min)"
  # Reports go to the daemons' stderr (their logs), which the harness scans:
  # any report fails the test, and a daemon with one exits 66 at stop.
  tsan="$top/_build/tsan"
  mkdir -p "$tsan"
  if (cd "$tsan" && "$top/configure" -q CC=gcc --enable-tsan >configure.out 2>&1 &&
      make -s -j"$jobs" shoal shoal-daemon tests/fault/faultfs.so dist/shoal.service dist/user/shoal.service >build.out 2>&1); then
    for t in test_transfer test_crash_resume test_limits test_durability test_stream test_stream_blocks test_portmap test_service test_metrics; do
      if (cd "$tsan" && TSAN_OPTIONS="halt_on_error=0:exitcode=66:second_deadlock_stack=1:suppressions=$top/tests/tsan/tsan.supp" \
            SHOAL_BIN="$tsan/shoal" SHOAL_SRCDIR="$top" timeout 900 /usr/bin/python3 \
            "$top/tests/integration/$t.py" >"$tsan/$t.out" 2>&1); then
        echo "PASS: tsan $t"; passed=$((passed + 1))
      else
        grep -v '^ok' "$tsan/$t.out" | tail -40; echo "FAIL: tsan $t"; failed=$((failed + 1))
      fi
    done
  else
    tail -40 "$tsan/configure.out" "$tsan/build.out"; echo "=== tsan: build FAILED"; failed=$((failed + 1))
  fi
  echo "=== valgrind memcheck: integration tests against the gcc build's daemons (at $((SECONDS / 60)) min)"
  for t in test_backbone test_share test_transfer; do
    if (cd "$top/_build/gcc" && SHOAL_VALGRIND=1 SHOAL_TEST_MANY=3000 SHOAL_BIN="$PWD/shoal" \
          SHOAL_SRCDIR="$top" timeout 1200 /usr/bin/python3 "$top/tests/integration/$t.py" \
          >"$top/_build/valgrind-$t.out" 2>&1); then
      echo "PASS: valgrind $t"; passed=$((passed + 1))
    else
      grep -v '^ok' "$top/_build/valgrind-$t.out" | tail -30; echo "FAIL: valgrind $t"
      failed=$((failed + 1))
    fi
  done
  echo "=== distcheck (at $((SECONDS / 60)) min)"
  # The tarball is built, installed, uninstalled and checked from a
  # read-only copy, with the unit tests and the integration tests that read
  # what the tarball must carry (sources, man/, completion/, dist/, web/,
  # bench/, the harness); the whole suite already ran above, in three
  # builds, and running it a fourth time here took 13 of CI's 45 minutes.
  # A developer's plain `make distcheck` still runs everything.
  dc_tests='$(filter tests/unit/%,$(check_PROGRAMS)) tests/check_layers.py'
  for t in integration/test_backbone integration/test_transfer integration/test_manpages \
           integration/test_completion integration/test_service integration/test_metrics \
           integration/test_web_auth integration/test_distribution_smoke interop/test_transfer_lt; do
    dc_tests="$dc_tests tests/$t.py"
  done
  if make -C "$top/_build/gcc" -s distcheck TESTS="$dc_tests" >"$top/_build/gcc/distcheck.out" 2>&1; then
    echo "PASS: make distcheck"; passed=$((passed + 1))
  else
    tail -40 "$top/_build/gcc/distcheck.out"; echo "FAIL: make distcheck"; failed=$((failed + 1))
  fi
  echo "=== debian package: build from the distcheck tarball, lintian, install, run as shoal, purge (at $((SECONDS / 60)) min)"
  # Needs root and changes the machine (it undoes what it did); skips (77)
  # when not root or when shoal is installed already.
  tarball=$(ls -t "$top"/_build/gcc/shoal-*.tar.gz 2>/dev/null | head -1)
  (cd "$top/_build/gcc" && timeout 1800 /usr/bin/python3 "$top/tests/package/test_deb.py" \
      ${tarball:+"$tarball"} >"$top/_build/deb.out" 2>&1)
  rc=$?
  if [ $rc -eq 0 ]; then
    echo "PASS: debian package"; passed=$((passed + 1))
  elif [ $rc -eq 77 ]; then
    tail -1 "$top/_build/deb.out"; echo "SKIP: debian package"
  else
    grep -v '^ok' "$top/_build/deb.out" | tail -40; echo "FAIL: debian package"; failed=$((failed + 1))
  fi
  echo "=== fuzz: every harness for 10 s under libFuzzer (clang, ASan, UBSan) (at $((SECONDS / 60)) min)"
  if bash scripts/fuzz.sh 10 >"$top/_build/fuzz.out" 2>&1; then
    echo "PASS: fuzz smoke"; passed=$((passed + 1))
  else
    tail -40 "$top/_build/fuzz.out"; echo "FAIL: fuzz smoke"; failed=$((failed + 1))
  fi
fi
echo "=== all legs done in $((SECONDS / 60)) min"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
