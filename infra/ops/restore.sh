#!/usr/bin/env bash
# Restores a backup made by backup.sh into the running compose deployment:
#   infra/ops/restore.sh BACKUP_FOLDER
# Checks the checksums first, stops the services that use the databases, replaces
# each database's contents, starts them again and waits until every service is
# healthy (DRAFTSMAN_RESTORE_HEALTH_TIMEOUT seconds, default 120). Asks first unless
# DRAFTSMAN_ASSUME_YES=1. Set DRAFTSMAN_COMPOSE_PROD=1 for a --prod deployment.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

src="${1:-}"
[ -n "$src" ] && [ -d "$src" ] || die "usage: restore.sh BACKUP_FOLDER (a folder written by backup.sh)"
[ -f "$src/SHA256SUMS" ] || die "$src has no SHA256SUMS: not a complete backup"
(cd "$src" && sha256sum --quiet -c SHA256SUMS) || die "checksums of $src do not match"
for db in "${DATABASES[@]}"; do [ -s "$src/$db.dump" ] || die "$src/$db.dump is missing"; done

if [ "${DRAFTSMAN_ASSUME_YES:-}" != 1 ]; then
  read -r -p "Replace the databases with the backup in $src? Jobs since then are lost. [y/N] " answer
  [ "$answer" = y ] || [ "$answer" = Y ] || die "nothing restored"
fi

say "stopping the services that use the databases"
dc stop worker api temporal-ui temporal
for db in "${DATABASES[@]}"; do
  say "restoring $db"
  dc exec -T postgres sh -c 'pg_restore -U "$POSTGRES_USER" --clean --if-exists --no-owner --single-transaction -d "$1"' sh "$db" \
    <"$src/$db.dump" || die "pg_restore of $db failed; the services stay stopped (start them with 'dc up -d')"
done
say "starting the services"
dc up -d
wait_healthy "${DRAFTSMAN_RESTORE_HEALTH_TIMEOUT:-120}"
say "restored $src; every service is healthy"
