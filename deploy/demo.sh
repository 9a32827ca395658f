#!/usr/bin/env bash
# README's first command on a fresh Debian 12 machine, as root: install hacluster and what
# the demo needs (deploy/install-deps.sh --demo: no test tools, no QEMU), then run the
# failover drills in a network-namespace lab of two directors, three real servers and a
# client (`hacluster lab drill`, 1-2 minutes).
# Arguments are passed to `hacluster lab drill` (e.g. --drills kill,partition). Exit status:
# the drill's.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "demo: run as root (sudo $0): the lab creates network namespaces" >&2
    exit 1
fi

echo "== installing what the demo needs (deploy/install-deps.sh --demo)"
deploy/install-deps.sh --demo
echo "== hacluster lab drill"
exec .venv/bin/hacluster lab drill "$@"
