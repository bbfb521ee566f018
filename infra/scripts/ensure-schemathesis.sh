#!/usr/bin/env bash
# The property-based API tester the contract test runs (test/e2e/contract.e2e.ts):
# schemathesis, pinned, in its own virtual environment under the data folder.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=4.32.5
VENV="$DATA_DIR/tools/schemathesis"
STAMP="$VENV/.draftsman-$VERSION-v3"
if [ -x "$VENV/bin/schemathesis" ] && [ -f "$STAMP" ]; then exit 0; fi
# 3.12 or newer: 3.11's parser crashes on hypothesis's introspection of schemathesis's
# larger modules ("AST constructor recursion depth mismatch"). An older one runs too, but
# its coverage phase may stop on that crash.
PYTHON="$(find_python 12 || find_python 10)" || { apt_install python3 python3-venv; PYTHON=/usr/bin/python3; }
say "installing schemathesis $VERSION (pip, into $VENV)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION" >"$DATA_DIR/logs/schemathesis-install.log" 2>&1 \
  || { tail -20 "$DATA_DIR/logs/schemathesis-install.log" >&2; die "pip install schemathesis==$VERSION failed"; }
touch "$STAMP"
