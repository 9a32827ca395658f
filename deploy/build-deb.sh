#!/usr/bin/env bash
# Builds the Debian package of hacluster with Debian's own dpkg-deb:
#   /usr/lib/hacluster              a virtualenv holding hacluster and its Python dependencies
#   /usr/sbin/hacluster             the command (a link into the virtualenv)
#   /lib/systemd/system/hacluster.service
#   /etc/hacluster/hacluster.yaml.example   (a conffile; the unit starts once hacluster.yaml exists)
#   /usr/share/man/man8/hacluster.8.gz, man5/hacluster.yaml.5.gz, /usr/share/doc/hacluster/,
#   /usr/share/bash-completion/completions/hacluster
# Depends: python3 (the virtualenv's interpreter), nftables, iproute2, ipvsadm, and the
# shared libraries its compiled modules link (found by dpkg-shlibdeps: libc6, libyaml-0-2).
# The package is lintian-clean (tests/integration/test_deb.py): PyYAML is built against
# Debian's libyaml rather than embedding its own, the compiled modules are stripped, and
# the bytecode is compiled by postinst (and removed by prerm) rather than shipped.
# Usage: deploy/build-deb.sh [OUTDIR]  (default build/deb); prints the path of the .deb.
# Needs network access to PyPI for the dependencies, like deploy/install-deps.sh, and
# libyaml-dev, python3-dev and gcc to build PyYAML (deploy/install-deps.sh installs them).
# DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

OUT=$(realpath -m "${1:-build/deb}")
PREFIX=/usr/lib/hacluster
MAINTAINER=${DEB_MAINTAINER:-hacluster maintainers <maintainers@hacluster.invalid>}
# Debian's own interpreter: the package depends on it, whatever python3 is first in PATH.
PYTHON=/usr/bin/python3
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
NEXT_PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % (sys.version_info[0], sys.version_info[1] + 1))')
ARCH=$(dpkg --print-architecture)
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH

STAGE=$(mktemp -d /tmp/hacluster-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/root
VENV=$ROOT$PREFIX
mkdir -p "$ROOT" "$OUT"
chmod 0755 "$ROOT"

echo "== virtualenv in $PREFIX (python$PYVER)" >&2
"/usr/bin/python$PYVER" -m venv "$VENV"
# Built from a copy of the source, so that the working tree is left as it was.
mkdir "$STAGE/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$STAGE/src"
# PyYAML from source, linked to Debian's libyaml (its wheel embeds a copy of libyaml).
"$VENV/bin/pip" install -q --no-cache-dir --no-compile --disable-pip-version-check \
    --no-warn-script-location --no-binary pyyaml "$STAGE/src"
"$VENV/bin/python" -m pip uninstall -q -y pip setuptools
rm -f "$VENV"/bin/activate* "$VENV"/bin/Activate.ps1 "$VENV"/bin/pip*
# Where it was installed from means nothing on the target machine.
for url in "$VENV"/lib/python*/site-packages/*.dist-info/direct_url.json; do
    [ -e "$url" ] || continue
    sed -i '/direct_url.json/d' "$(dirname "$url")/RECORD"
    rm "$url"
done
# The virtualenv was made under the staging directory: give its scripts their real path.
grep -rlF --null "$VENV" "$VENV" | xargs -0 -r sed -i "s|$VENV|$PREFIX|g"
if grep -rqF "$STAGE" "$VENV"; then
    echo "build-deb: the staging path is still named in:" >&2
    grep -rlF "$STAGE" "$VENV" >&2
    exit 1
fi
# No bytecode in the package (postinst compiles it on the machine: Debian's Python policy
# ships no __pycache__), and compiled modules without their symbols.
find "$VENV" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$VENV" -name '*.so' -type f -exec strip --strip-unneeded \
    --remove-section=.comment --remove-section=.note {} +

echo "== command, unit, configuration example, docs" >&2
install -d "$ROOT/usr/sbin" "$ROOT/lib/systemd/system" "$ROOT/etc/hacluster" \
    "$ROOT/usr/share/man/man8" "$ROOT/usr/share/man/man5" \
    "$ROOT/usr/share/doc/hacluster/examples"
ln -s "../${PREFIX#/usr/}/bin/hacluster" "$ROOT/usr/sbin/hacluster"
install -m 0644 deploy/systemd/hacluster.service "$ROOT/lib/systemd/system/"
install -m 0644 examples/director-a.yaml "$ROOT/etc/hacluster/hacluster.yaml.example"
install -m 0644 README.md docs/CONFIG.md docs/configuration.md docs/systemd.md \
    "$ROOT/usr/share/doc/hacluster/"
install -m 0644 examples/*.yaml deploy/systemd/strict.conf \
    "$ROOT/usr/share/doc/hacluster/examples/"
cat > "$ROOT/usr/share/doc/hacluster/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: hacluster

Files: *
Copyright: $(date -u -d "@$SOURCE_DATE_EPOCH" +%Y) hacluster contributors
License: GPL-2.0-or-later
 On Debian systems, the full text of the GNU General Public License version 2 can be
 found in /usr/share/common-licenses/GPL-2.
EOF

# A native package's changelog: this build, from the commit it was made of.
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
cat > "$STAGE/changelog" <<EOF
hacluster ($VERSION) unstable; urgency=medium

  * Built from the hacluster source tree at commit $COMMIT.

 -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
EOF
gzip -9n -c "$STAGE/changelog" > "$ROOT/usr/share/doc/hacluster/changelog.gz"

# What lintian says of a private virtualenv that is so by design, each with its reason.
install -d "$ROOT/usr/share/lintian/overrides"
cat > "$ROOT/usr/share/lintian/overrides/hacluster" <<EOF
# The virtualenv's commands run on its own interpreter, a link to /usr/bin/python$PYVER.
hacluster: unusual-interpreter $PREFIX/bin/python$PYVER [${PREFIX#/}/bin/*]
# Modules of the Python dependencies that carry a "#!python" line: they are imported,
# never run as scripts.
hacluster: unusual-interpreter python [${PREFIX#/}/lib/python$PYVER/site-packages/*]
hacluster: script-not-executable [${PREFIX#/}/lib/python$PYVER/site-packages/*]
EOF

echo "== man pages" >&2
"$VENV/bin/python" -m hacluster.manpages --example examples/director-a.yaml "$STAGE/man" >&2
gzip -9n -c "$STAGE/man/hacluster.8" > "$ROOT/usr/share/man/man8/hacluster.8.gz"
gzip -9n -c "$STAGE/man/hacluster.yaml.5" > "$ROOT/usr/share/man/man5/hacluster.yaml.5.gz"

echo "== bash completion" >&2
install -d "$ROOT/usr/share/bash-completion/completions"
"$VENV/bin/python" -m hacluster.cli completion bash > "$ROOT/usr/share/bash-completion/completions/hacluster"

echo "== control files" >&2
install -d "$ROOT/DEBIAN"
echo /etc/hacluster/hacluster.yaml.example > "$ROOT/DEBIAN/conffiles"
# The shared libraries the compiled modules link, as dpkg-shlibdeps names their packages.
mkdir -p "$STAGE/debian"
printf 'Source: hacluster\n\nPackage: hacluster\nArchitecture: any\n' > "$STAGE/debian/control"
mapfile -t SOS < <(find "$VENV" -name '*.so' -type f)
SHLIBS=$(cd "$STAGE" && dpkg-shlibdeps -O "${SOS[@]}" | sed -n 's/^shlibs:Depends=//p')
cat > "$ROOT/DEBIAN/control" <<EOF
Package: hacluster
Version: $VERSION
Architecture: $ARCH
Section: net
Priority: optional
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
Depends: python$PYVER, python3 (>= $PYVER), python3 (<< $NEXT_PYVER), nftables, iproute2, ipvsadm, $SHLIBS
Description: high-availability director for Linux load balancers
 VRRP v2/v3 (interoperating with keepalived), health checks with keepalived's
 semantics, and an IPVS or nftables dataplane kept equal to the configuration
 and the health results. YAML configuration in keepalived's vocabulary,
 keepalived.conf import, a control API and Prometheus metrics.
 .
 Installed in a virtualenv under $PREFIX; the command is
 /usr/sbin/hacluster.
EOF
cat > "$ROOT/DEBIAN/postinst" <<'EOF'
#!/bin/sh
# The unit is not enabled here: it starts once /etc/hacluster/hacluster.yaml exists and
# the operator enables it (systemctl enable --now hacluster).
set -e
if [ "$1" = configure ]; then
    # The bytecode, compiled here rather than shipped (prerm removes it again).
    /usr/lib/hacluster/bin/python -m compileall -q -j 0 \
        --invalidation-mode unchecked-hash /usr/lib/hacluster/lib >/dev/null || true
fi
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if systemctl is-active --quiet hacluster.service; then
        deb-systemd-invoke restart hacluster.service || true
    fi
fi
exit 0
EOF
cat > "$ROOT/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    deb-systemd-invoke stop hacluster.service >/dev/null 2>&1 || true
fi
# The bytecode postinst compiled: not dpkg's to know of.
find /usr/lib/hacluster -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
exit 0
EOF
cat > "$ROOT/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
EOF
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/prerm" "$ROOT/DEBIAN/postrm"

# The virtualenv's interpreter, a link within /usr: relative, as Debian's policy (10.5)
# has it (made last: the build above runs the virtualenv, whose link must then resolve).
ln -sfn "../../../bin/python$PYVER" "$VENV/bin/python$PYVER"

DEB=$OUT/hacluster_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >&2
echo "$DEB"
