#!/usr/bin/env bash
# Installs what crier needs on a Debian machine, and nothing that is there
# already. `setup.sh build`: the libraries and tools to build and run.
# `setup.sh test`: those, plus what the tests use (curl, node, clang and its
# sanitizer/libFuzzer runtimes, clang-format, nginx, redis-server, Debian's
# chromium, dpkg-dev, debhelper and systemd for the package and unit tests,
# the npm packages in package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-build}
# libev-dev, libwebsockets-evlib-ev: the WebSocket workers' epoll loop (lws loads
# its libev plugin at run time; without it they fall back to poll())
build_pkgs=(build-essential pkg-config libwebsockets-dev libev-dev libwebsockets-evlib-ev libmicrohttpd-dev libjansson-dev libhiredis-dev libjwt-dev libssl-dev libcurl4-openssl-dev libmsgpack-dev)
# libclang-rt-dev: clang's sanitizer and libFuzzer runtimes (only recommended by clang);
# dpkg-dev, debhelper: `make deb`; systemd: systemd-analyze verify of the unit (tests/ops/);
# jq, prometheus (promtool): the JSON log and /metrics checks
test_pkgs=(curl nodejs npm clang clang-format libclang-rt-dev nginx chromium redis-server dpkg-dev debhelper systemd jq prometheus)

missing=()
want=("${build_pkgs[@]}")
[ "$what" = test ] && want+=("${test_pkgs[@]}")
for p in "${want[@]}"; do
  # node may come from elsewhere than Debian's package; a working one is enough
  if [ "$p" = nodejs ] && command -v node >/dev/null; then continue; fi
  if [ "$p" = npm ] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$what" = test ]; then
  # npm packages for the tests, pinned by package-lock.json
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "setup: installing npm packages"
    npm ci --no-audit --no-fund --loglevel=error
  fi
fi
