#!/usr/bin/env bash
# install-deps.sh - install the Debian packages ztb needs to build, test and run.
#
# Checks each package with dpkg-query first; when everything is present it
# prints one line and exits in well under a second. Otherwise it runs
# `apt-get update` once and installs only what is missing. Needs root (or sudo)
# only when something must be installed.
#
#   scripts/install-deps.sh            build + run + test dependencies
#   scripts/install-deps.sh --runtime  only what a deployed broker needs
set -euo pipefail

runtime=(openssl redis-server libssl3 libjwt0 libmicrohttpd12 libhiredis0.14
         libjansson4 libcurl4 libgnutls30 libsystemd0)
build=(build-essential cmake pkg-config
       libssl-dev libjwt-dev libmicrohttpd-dev libhiredis-dev libjansson-dev
       libcurl4-openssl-dev libgnutls28-dev libcmocka-dev libsystemd-dev systemd man-db
       clang libclang-rt-14-dev lld clang-format clang-tidy cppcheck
       procps curl ca-certificates nginx prometheus iproute2 util-linux
       python3 python3-jwt python3-cryptography)

want=("${runtime[@]}")
if [ "${1:-}" != "--runtime" ]; then
    want+=("${build[@]}")
fi

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: all ${#want[@]} packages present"
    exit 0
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || {
        echo "install-deps: not root and no sudo; install these as root: ${missing[*]}" >&2
        exit 1
    }
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
