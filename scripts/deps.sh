#!/usr/bin/env bash
# deps.sh: install the Debian 12 packages shoal needs to build, test and benchmark.
# Run as root (or with sudo).  Safe to run again: apt-get skips what is there.
set -euo pipefail
PKGS=(
  build-essential autoconf automake pkg-config clang   # toolchain (gcc and clang)
  libsodium-dev libevent-dev libsqlite3-dev libjansson-dev libssl-dev   # shoal's libraries
  libminiupnpc-dev libnatpmp-dev                         # port mapping (UPnP IGD, NAT-PMP)
  miniupnpd-nftables miniupnpc natpmpc nftables          # the port mapping test's router (run in a namespace only)
  libcmocka-dev libclang-rt-dev                          # unit tests; libFuzzer
  python3 python3-libtorrent                             # integration + interop tests
  transmission-daemon transmission-cli aria2             # v1 peers for interop tests (tests/interop/realpeers.py)
  opentracker                                            # the tracker interop test
  prometheus                                             # promtool: tests/integration/test_metrics.py lints GET /metrics
  gnuplot-nox valgrind                                   # distribution plot; memcheck leg
  ffmpeg curl                                            # the streaming test makes a video and plays it (ffprobe)
  nginx-light                                            # bench/distribution --netns and transfer_throughput: the HTTP server row
  chromium chromium-driver python3-selenium              # the web dashboard's test (tests/web) and bench/web_render
  systemd                                                # systemd-analyze verify/security of dist/'s units (tests/integration/test_service.py); not run as PID 1
  groff-base man-db bash-completion                      # tests/integration/test_manpages.py renders man/; test_completion drives completion/
  debhelper dpkg-dev fakeroot lintian adduser            # the Debian package's build and test (tests/package/test_deb.py)
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# miniupnpd must never run on this machine's own network, and prometheus
# (wanted for promtool alone) must not start a server on port 9090: keep
# their packages from starting a service (policy-rc.d 101) while they install.
policy_made=""
if [[ " ${missing[*]} " == *" miniupnpd-nftables "* || " ${missing[*]} " == *" prometheus "* ]] &&
   [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod 755 /usr/sbin/policy-rc.d
  policy_made=1
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ -z "$policy_made" ] || $SUDO rm -f /usr/sbin/policy-rc.d
if [[ " ${missing[*]} " == *" miniupnpd-nftables "* ]] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now miniupnpd >/dev/null 2>&1 || true
fi
# The package starts a system-wide transmission-daemon (DHT on, public peer
# port); the tests run their own in namespaces, so keep that one off.
if [[ " ${missing[*]} " == *" transmission-daemon "* ]] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now transmission-daemon >/dev/null 2>&1 || true
fi
# nginx-light starts a system nginx on port 80; the benchmarks run their own
# in the foreground (bench/lib/benchlib.py Nginx), so keep that one off too.
if [[ " ${missing[*]} " == *" nginx-light "* ]] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
# prometheus: only its promtool is used; the server stays off.
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
