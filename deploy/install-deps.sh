#!/usr/bin/env bash
# Installs what hacluster needs on a fresh Debian 12 machine (as root): system packages,
# then a virtualenv in .venv with hacluster.
#   deploy/install-deps.sh          everything the test suite needs (test tools, keepalived,
#                                   the QEMU guest's tools, the package build's tools)
#   deploy/install-deps.sh --demo   only what `hacluster lab drill` needs (deploy/demo.sh)
#   ... --print                     print the Debian packages it would install, and stop
set -euo pipefail
cd "$(dirname "$0")/.."

# hacluster itself and the demo's namespace lab: ip, nft, sysctl, a Python venv.
DEMO_PACKAGES=(python3 python3-venv iproute2 nftables procps)
# Everything: the demo's, keepalived as a test peer, the QEMU guest with a real IPVS kernel,
# the man-page linter and what the Debian package build and test run (dpkg-deb,
# dpkg-shlibdeps, strip, PyYAML built on libyaml, systemd-analyze, lintian), HAProxy and
# nginx for the health-check benchmarks and tests.
SYSTEM_PACKAGES=(
    "${DEMO_PACKAGES[@]}"
    python3-pip keepalived ipvsadm tcpdump util-linux
    qemu-system-x86 busybox-static kmod cpio openssl systemd mandoc dpkg
    dpkg-dev binutils gcc python3-dev libyaml-dev lintian
    haproxy nginx
)

profile=all
print_only=0
for arg in "$@"; do
    case "$arg" in
        --demo) profile=demo ;;
        --print) print_only=1 ;;
        *) echo "install-deps: unknown argument $arg (use --demo, --print)" >&2; exit 2 ;;
    esac
done
if [ "$profile" = demo ]; then
    packages=("${DEMO_PACKAGES[@]}")
    extras=""
else
    packages=("${SYSTEM_PACKAGES[@]}")
    extras="[test]"
fi
if [ "$print_only" -eq 1 ]; then
    printf '%s\n' "${packages[@]}"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${packages[@]}"
else
    echo "install-deps: not root, skipping system packages" >&2
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".${extras}"
