#!/usr/bin/env bash
# Installs what hacluster and its test suite need on a fresh Debian 12 machine (as root):
# system packages, then a virtualenv in .venv with hacluster and its test tools.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(
    python3 python3-venv python3-pip
    iproute2 nftables keepalived ipvsadm tcpdump procps util-linux
    qemu-system-x86 busybox-static kmod cpio openssl systemd
    nginx
)

if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${SYSTEM_PACKAGES[@]}"
else
    echo "install-deps: not root, skipping system packages" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test]'
