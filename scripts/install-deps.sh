#!/usr/bin/env bash
# Installs what building and testing parley needs on Debian 12, and nothing that is already there.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git python3 openssl curl
  nlohmann-json3-dev libexpected-dev doctest-dev     # the core and its tests
  libasio-dev libcli11-dev libsqlite3-dev libssl-dev # the tools
  nats-server libnats-dev                            # the cluster (issue 13) and its tests
  clang libfuzzer-14-dev                             # the fuzz targets
  dpkg-dev file                                      # the .deb packages
  chromium                                           # the web page's browser tests (playwright-core drives it)
)
# Node.js runs the test-only clients (ws, the MCP SDK); keep a newer one if present.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
