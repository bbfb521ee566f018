#!/usr/bin/env bash
# Makes a Compose tool available for the compose deployment and its test: the v2
# plugin (`docker compose`) when present, else Debian's `docker-compose`.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

docker compose version >/dev/null 2>&1 && exit 0
command -v docker-compose >/dev/null && exit 0
[ "$(uname -s)" = Linux ] || die "no Compose tool: install Docker Desktop (it has 'docker compose')"
apt_install docker-compose
