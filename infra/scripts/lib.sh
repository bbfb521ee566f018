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

# The newest Python 3.MINOR or later at hand that can make a virtual environment (python3.13,
# python3.12, pyenv's, then python3): its path, or a failure.
find_python() {
  local minor="$1" candidate
  for candidate in python3.14 python3.13 python3.12 \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[0-9]*/bin/python3 2>/dev/null | sort -rV) python3; do
    if "$candidate" -c "import sys, venv, ensurepip; assert sys.version_info >= (3, $minor)" >/dev/null 2>&1; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}
