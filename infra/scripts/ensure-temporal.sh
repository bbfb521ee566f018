#!/usr/bin/env bash
# Makes the Temporal CLI (which embeds the dev server and the Web UI) available at
# $DATA_DIR/bin/temporal. An existing `temporal` on PATH is linked, otherwise it is
# built from its Go module: there is no binary download to depend on.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-v1.5.1}"
target="$DATA_DIR/bin/temporal"

[ -x "$target" ] && exit 0
if command -v temporal >/dev/null; then
  ln -sf "$(command -v temporal)" "$target"
  exit 0
fi
command -v go >/dev/null || die "the Temporal CLI is missing and Go (>= 1.25) is needed to build it: install Go or put 'temporal' on PATH"
say "building the Temporal CLI $TEMPORAL_CLI_VERSION from its Go module (the first build takes minutes)"
GOBIN="$DATA_DIR/bin" CGO_ENABLED=0 go install "github.com/temporalio/cli/cmd/temporal@$TEMPORAL_CLI_VERSION" \
  || die "building the Temporal CLI failed"
