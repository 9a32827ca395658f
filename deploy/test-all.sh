#!/usr/bin/env bash
# Installs everything the tests need and runs the whole suite: lint, types, tests.
# This is the command .ci/run calls; run it as root so the namespace tests run too.
set -euo pipefail
cd "$(dirname "$0")/.."

deploy/install-deps.sh
if [ -x deploy/vm/prepare.sh ]; then
    deploy/vm/prepare.sh
fi

.venv/bin/ruff check .
.venv/bin/mypy
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "test-all: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit "$rc"
