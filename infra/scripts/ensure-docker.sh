#!/usr/bin/env bash
# Makes a Docker engine reachable. A running engine (Docker Desktop, a system
# service, DOCKER_HOST) is used as it is; only on a Linux host without one do we
# install Debian's engine and start it ourselves.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if docker info >/dev/null 2>&1; then
  exit 0
fi
[ -n "${DOCKER_HOST:-}" ] && die "DOCKER_HOST=$DOCKER_HOST is set but no engine answers there"
[ "$(uname -s)" = Linux ] || die "no Docker engine is running: start Docker Desktop and re-run"

command -v dockerd >/dev/null || apt_install docker.io
command -v docker >/dev/null || apt_install docker.io
is_root || die "no Docker engine is running and starting one needs root"

# Another process may be starting the engine right now (two set-ups in parallel):
# wait for its socket before deciding to start one, so that two engines never
# share /var/run/docker.sock.
if [ -S /var/run/docker.sock ] && pgrep -f "^dockerd --host unix:///var/run/docker.sock" >/dev/null; then
  say "waiting for the Docker engine that is starting"
else
  say "starting the Docker engine (log: $DATA_DIR/logs/dockerd.log)"
  # No bridge and no iptables: step containers use network none or host only.
  # setsid: the engine is not part of the control plane, and must outlive a kill of
  # the process group that started it (Ctrl-C or SIGKILL of `npm start`).
  setsid nohup dockerd --host unix:///var/run/docker.sock --bridge=none --iptables=false --ip-masq=false \
    </dev/null >"$DATA_DIR/logs/dockerd.log" 2>&1 &
fi
for _ in $(seq 1 60); do
  docker info >/dev/null 2>&1 && exit 0
  sleep 0.5
done
tail -20 "$DATA_DIR/logs/dockerd.log" >&2 || true
die "the Docker engine did not come up within 30 s"
