#!/usr/bin/env bash
# The browser the Web UI test drives (headless, through playwright-core). A
# CHROMIUM_PATH that exists is used as it is; otherwise Debian's chromium.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then exit 0; fi
command -v chromium >/dev/null && exit 0
[ "$(uname -s)" = Linux ] || die "no browser for the Web UI test: set CHROMIUM_PATH to a Chromium or Chrome binary"
apt_install chromium
