#!/usr/bin/env bash
# Backs up Draftsman's databases (its audit trail and Temporal's two) from the
# running compose deployment:
#   infra/ops/backup.sh [DEST]        DEST default: $DRAFTSMAN_BACKUP_DIR or ./backups
# Each run writes DEST/<UTC time>/<database>.dump (pg_dump custom format, compressed)
# and SHA256SUMS, checks that every dump can be read back, and only then gives the
# folder its final name; folders older than DRAFTSMAN_BACKUP_RETENTION_DAYS (default 14)
# are deleted afterwards. Set DRAFTSMAN_COMPOSE_PROD=1 for a --prod deployment.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dest="${1:-${DRAFTSMAN_BACKUP_DIR:-./backups}}"
retention="${DRAFTSMAN_BACKUP_RETENTION_DAYS:-14}"
[[ "$retention" =~ ^[0-9]+$ ]] || die "DRAFTSMAN_BACKUP_RETENTION_DAYS must be a number of days (got '$retention')"
mkdir -p "$dest"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
partial="$dest/.partial-$stamp"
final="$dest/$stamp"
mkdir "$partial"
trap 'rm -rf "$partial"' EXIT

for db in "${DATABASES[@]}"; do
  say "dumping $db"
  # pg_dump runs inside the database container, so its version matches the server's.
  dc exec -T postgres sh -c 'pg_dump -U "$POSTGRES_USER" --format=custom --compress=6 "$1"' sh "$db" >"$partial/$db.dump" \
    || die "pg_dump of $db failed"
  dc exec -T postgres pg_restore --list <"$partial/$db.dump" >/dev/null \
    || die "the dump of $db cannot be read back"
done
(cd "$partial" && sha256sum -- *.dump >SHA256SUMS)
mv "$partial" "$final"
trap - EXIT
say "backup written to $final ($(du -sh "$final" | cut -f1))"

# Retention: whole backup folders by age; never the one just written.
find "$dest" -mindepth 1 -maxdepth 1 -type d -name '20*T*Z' -mtime +"$retention" ! -path "$final" -print0 \
  | while IFS= read -r -d '' old; do say "deleting $old (older than $retention days)"; rm -rf "$old"; done
echo "$final"
