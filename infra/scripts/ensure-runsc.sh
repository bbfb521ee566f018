#!/usr/bin/env bash
# Makes gVisor's runtime (runsc) available for the test of steps under it
# (test/e2e/gvisor.e2e.ts), from Debian's package. A deployment that wants it
# registers it with its engine (docs/deployment.md, "gVisor").
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v runsc >/dev/null && exit 0
[ "$(uname -s)" = Linux ] || die "gVisor runs on Linux only"
apt_install runsc
