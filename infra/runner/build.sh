#!/usr/bin/env bash
# Builds the runner image (default draftsman-runner:latest) if it is missing.
#   DRAFTSMAN_RUNNER_BUILD=auto|dockerfile|rootfs   (default auto)
# auto uses the Dockerfile when its base image is already present locally and the
# debootstrap root filesystem otherwise, so that set-up never depends on a registry.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

IMAGE="${DRAFTSMAN_RUNNER_IMAGE:-draftsman-runner:latest}"
BASE_IMAGE="${DRAFTSMAN_RUNNER_BASE_IMAGE:-debian:bookworm-slim}"
MODE="${DRAFTSMAN_RUNNER_BUILD:-auto}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Bumped with every change of what the image holds (2: socat, for the network holder):
# an image of an older version is built again.
VERSION=2
have="$(docker image inspect -f '{{ index .Config.Labels "org.draftsman.runner" }}' "$IMAGE" 2>/dev/null || true)"
if [ "$have" = "$VERSION" ] && [ "${1:-}" != --force ]; then
  exit 0
fi
if [ -n "$have" ]; then say "$IMAGE is of version $have; building version $VERSION"; fi
if [ "$MODE" = auto ]; then
  if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then MODE=dockerfile; else MODE=rootfs; fi
fi

case "$MODE" in
  dockerfile)
    say "building $IMAGE from infra/runner/Dockerfile"
    docker build --force-rm --build-arg "BASE_IMAGE=$BASE_IMAGE" -t "$IMAGE" "$HERE"
    ;;
  rootfs)
    is_root || die "building $IMAGE from a root filesystem needs root (or set DRAFTSMAN_RUNNER_BUILD=dockerfile)"
    command -v debootstrap >/dev/null || apt_install debootstrap
    rootfs="$(mktemp -d "$DATA_DIR/runner-rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    say "building $IMAGE from a Debian root filesystem (about a minute)"
    debootstrap --variant=minbase --include=git,ca-certificates,openssh-client,socat bookworm "$rootfs" \
      >"$DATA_DIR/logs/debootstrap.log" 2>&1 \
      || { tail -20 "$DATA_DIR/logs/debootstrap.log" >&2; die "debootstrap failed"; }
    chroot "$rootfs" sh -c 'groupadd -g 1000 runner && useradd -u 1000 -g 1000 -d /home/runner -m -s /bin/sh runner'
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
    mkdir -p "$rootfs/workspace" && chown 1000:1000 "$rootfs/workspace"
    tar -C "$rootfs" -c . | docker import \
      -c 'USER 1000:1000' -c 'WORKDIR /workspace' \
      -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      -c 'ENV HOME=/home/runner' -c "LABEL org.draftsman.runner=\"$VERSION\"" \
      - "$IMAGE" >/dev/null
    ;;
  *) die "DRAFTSMAN_RUNNER_BUILD must be auto, dockerfile or rootfs (got '$MODE')" ;;
esac
say "built $IMAGE"
