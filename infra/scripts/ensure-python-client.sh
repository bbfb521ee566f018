#!/usr/bin/env bash
# The Python client's environment (client/python): the package installed editable with its
# test and generator extras (pytest, datamodel-code-generator), in a virtual environment
# under the data folder. test/e2e/python-client.e2e.ts runs its pytest suite in it, and
# client/python/generate.sh its model generator.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$DATA_DIR/tools/python-client"
# A new stamp whenever the package's dependencies change.
STAMP="$VENV/.draftsman-$(sha256sum "$ROOT/client/python/pyproject.toml" | cut -c1-12)"
if [ -x "$VENV/bin/pytest" ] && [ -f "$STAMP" ]; then exit 0; fi
PYTHON="$(find_python 10)" || { apt_install python3 python3-venv; PYTHON=/usr/bin/python3; }
say "installing the Python client and its test tools (pip, into $VENV)"
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -e "$ROOT/client/python[test,generate]" >"$DATA_DIR/logs/python-client-install.log" 2>&1 \
  || { tail -20 "$DATA_DIR/logs/python-client-install.log" >&2; die "pip install of client/python failed"; }
touch "$STAMP"
