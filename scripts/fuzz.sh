#!/usr/bin/env bash
# fuzz.sh: build every harness in tests/fuzz/ with clang's libFuzzer (plus
# ASan and UBSan) and run each for SECONDS (default 60) over a copy of its
# stored corpus.  Crashes are saved under _build/fuzz/crashes/<surface>/;
# add each one to tests/fuzz/corpus/<surface>/ so `make check` replays it.
#   scripts/fuzz.sh [SECONDS] [SURFACE...]        (make fuzz FUZZ_SECONDS=N)
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
secs=${1:-60}
shift || true
bd="$top/_build/fuzz"
if [ ! -x configure ]; then autoreconf -fi >/dev/null || exit 1; fi
mkdir -p "$bd"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
if [ ! -f "$bd/Makefile" ]; then
  (cd "$bd" && "$top/configure" -q CC=clang CFLAGS="-g -O1 -fsanitize=fuzzer-no-link $san") || exit 1
fi
make -C "$bd" -s -j"$(nproc)" common/libcommon.a dht/libdht.a transfer/libtransfer.a \
  node/libnode.a >/dev/null || exit 1
libs="$bd/node/libnode.a $bd/dht/libdht.a $bd/transfer/libtransfer.a $bd/common/libcommon.a"
syslibs=$(pkg-config --libs libsodium libevent_core libevent_extra sqlite3 jansson libcrypto)
# https trackers (node/trackers.c): in libnode.a when OpenSSL is there.
syslibs="$syslibs $(pkg-config --libs libevent_openssl libssl 2>/dev/null)"
# The router's port mapping (node/portmap.c): miniupnpc and libnatpmp.
syslibs="$syslibs $(pkg-config --libs miniupnpc) -lnatpmp"
cflags=$(pkg-config --cflags jansson libsodium)
surfaces=("$@")
if [ ${#surfaces[@]} -eq 0 ]; then
  for f in tests/fuzz/fuzz_*.c; do s=${f#tests/fuzz/fuzz_}; surfaces+=("${s%.c}"); done
fi
failed=0
for s in "${surfaces[@]}"; do
  bin="$bd/fuzz_$s"
  clang -std=c11 -g -O1 -fsanitize=fuzzer $san -I"$top" -I"$bd" $cflags \
    "tests/fuzz/fuzz_$s.c" $libs $syslibs -lpthread -o "$bin" || { failed=1; continue; }
  work="$bd/corpus/$s"; crashes="$bd/crashes/$s"
  mkdir -p "$work" "$crashes"
  cp -n tests/fuzz/corpus/"$s"/* "$work"/ 2>/dev/null || true
  echo "== fuzz $s for ${secs}s"
  if ! "$bin" -max_total_time="$secs" -max_len=65536 -artifact_prefix="$crashes/" \
       -print_final_stats=1 "$work" >"$bd/fuzz_$s.log" 2>&1; then
    echo "!! $s: crash found; see $bd/fuzz_$s.log and $crashes/"; failed=1
  fi
  grep -E "stat::number_of_executed_units|Done" "$bd/fuzz_$s.log" | tail -1
done
exit $failed
