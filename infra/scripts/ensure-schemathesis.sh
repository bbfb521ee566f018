#!/usr/bin/env bash
# The property-based API tester the contract test runs (test/e2e/contract.e2e.ts):
# schemathesis, pinned, in its own virtual environment under the data folder.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION=4.32.5
VENV="$DATA_DIR/tools/schemathesis"
STAMP="$VENV/.draftsman-$VERSION-v3"
if [ -x "$VENV/bin/schemathesis" ] && [ -f "$STAMP" ]; then exit 0; fi
# The newest Python at hand: 3.11's parser crashes on hypothesis's introspection of
# schemathesis's larger modules ("AST constructor recursion depth mismatch").
PYTHON=""
for candidate in python3.13 python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3 python3; do
  if "$candidate" -c 'import sys, venv; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then
    PYTHON="$(command -v "$candidate")"
    break
  fi
done
# An older one runs too, but its coverage phase may stop on that crash.
if [ -z "$PYTHON" ] && python3 -m venv --help >/dev/null 2>&1; then PYTHON="$(command -v python3)"; fi
if [ -z "$PYTHON" ]; then
  apt_install python3 python3-venv
  PYTHON=/usr/bin/python3
fi
say "installing schemathesis $VERSION (pip, into $VENV)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION" >"$DATA_DIR/logs/schemathesis-install.log" 2>&1 \
  || { tail -20 "$DATA_DIR/logs/schemathesis-install.log" >&2; die "pip install schemathesis==$VERSION failed"; }
touch "$STAMP"
