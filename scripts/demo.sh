#!/usr/bin/env bash
# demo.sh: set everything up and show shoal's main job on loopback.
# Installs the Debian packages (scripts/deps.sh), builds into _build/demo,
# starts nodes in a temporary directory, shows their status, stops them.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
bash scripts/deps.sh
if [ ! -x configure ] || [ configure.ac -nt configure ]; then autoreconf -fi >/dev/null; fi
mkdir -p _build/demo
( cd _build/demo && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j"$(nproc)" shoal shoal-daemon )
SHOAL="$top/_build/demo/shoal"

work=$(mktemp -d /tmp/shoal-demo-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# start_node NAME PORT: run a daemon with its own data dir, wait for its API.
start_node() {
  "$SHOAL" daemon --data-dir "$work/$1" --port "$2" --api-port 0 --bootstrap "" \
    --no-lsd --no-port-mapping \
    >"$work/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do [ -f "$work/$1/api.addr" ] && return 0; sleep 0.1; done
  echo "node $1 did not start:"; cat "$work/$1.log"; exit 1
}

echo "== a seed and two leechers, each its own daemon on loopback"
start_node seed 16881
start_node alice 16882
start_node bob 16883

echo "== making a directory to share"
mkdir -p "$work/photos/2026"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$work/photos/2026/beach.raw"
echo "hello from shoal" >"$work/photos/README.txt"

echo "== shoal share (seed)"
out=$("$SHOAL" share "$work/photos" --data-dir "$work/seed")
echo "$out"
magnet=$(echo "$out" | head -1)

for who in alice bob; do
  mkdir -p "$work/$who-downloads"
  echo "== shoal join ($who): magnet link plus the seed's address, encrypted"
  "$SHOAL" join "$magnet" --into "$work/$who-downloads" --peer 127.0.0.1:16881 --wait \
    --data-dir "$work/$who"
done

echo "== shoal status (seed)"
"$SHOAL" status --data-dir "$work/seed"
echo
echo "== shoal status (bob)"
"$SHOAL" status --data-dir "$work/bob"
echo
for who in alice bob; do
  if diff -r "$work/photos" "$work/$who-downloads/photos" >/dev/null; then
    echo "$who has a byte-identical copy"
  else
    echo "$who's copy differs!"; exit 1
  fi
done
echo "== done; stopping the nodes"
