# Helpers of the operations scripts. Sourced, never executed.
set -euo pipefail
OPS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPOSE_DIR="$(cd "$OPS/../compose" && pwd)"
DATABASES=(draftsman temporal temporal_visibility)

say() { printf '[draftsman] %s\n' "$*" >&2; }
die() { printf '[draftsman] error: %s\n' "$*" >&2; exit 1; }

# The compose wrapper, with --prod when DRAFTSMAN_COMPOSE_PROD=1 (and the files of
# DRAFTSMAN_COMPOSE_EXTRA_FILES, which the wrapper reads itself).
dc() {
  if [ "${DRAFTSMAN_COMPOSE_PROD:-}" = 1 ]; then "$COMPOSE_DIR/dc" --prod "$@"; else "$COMPOSE_DIR/dc" "$@"; fi
}

# Waits until every long-lived service reports healthy; fails after $1 seconds.
wait_healthy() {
  local timeout="$1" deadline services service id status pending
  deadline=$((SECONDS + timeout))
  services=(postgres temporal temporal-ui api worker)
  while :; do
    pending=()
    for service in "${services[@]}"; do
      id="$(dc ps -q "$service" 2>/dev/null | head -1)"
      status="$( [ -n "$id" ] && docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing)"
      [ "$status" = healthy ] || pending+=("$service=$status")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    [ $SECONDS -ge $deadline ] && die "not healthy after ${timeout}s: ${pending[*]}"
    sleep 2
  done
}
