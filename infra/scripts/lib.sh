# Shared helpers for the set-up scripts. Sourced, never executed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA_DIR="${DRAFTSMAN_DATA_DIR:-$ROOT/data}"
mkdir -p "$DATA_DIR/bin" "$DATA_DIR/logs"

say() { printf '[draftsman] %s\n' "$*" >&2; }
die() { printf '[draftsman] error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root || die "need root to install $*; install them yourself and re-run"
  command -v apt-get >/dev/null || die "no apt-get: install $* with your system's package manager"
  if [ ! -f "$DATA_DIR/.apt-updated" ]; then
    say "apt-get update"
    apt-get update -qq
    touch "$DATA_DIR/.apt-updated"
  fi
  say "installing $* (Debian packages)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >"$DATA_DIR/logs/apt.log" 2>&1 \
    || { tail -20 "$DATA_DIR/logs/apt.log" >&2; die "apt-get install $* failed"; }
}
