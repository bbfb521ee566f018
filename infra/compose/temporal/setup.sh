#!/bin/sh
# One-shot set-up of the Temporal server, run by the compose file in the admin-tools
# image. Both modes are idempotent and run on every `up`:
#   schema     create Temporal's databases if missing and bring their schema to the
#              version of the tools (uses DB, POSTGRES_SEEDS, DB_PORT, POSTGRES_USER,
#              POSTGRES_PWD or POSTGRES_PWD_FILE, DBNAME, VISIBILITY_DBNAME)
#   namespace  create TEMPORAL_NAMESPACE if missing (uses TEMPORAL_ADDRESS, TEMPORAL_RETENTION)
set -eu

schema() {
  if [ -n "${POSTGRES_PWD_FILE:-}" ]; then POSTGRES_PWD="$(cat "$POSTGRES_PWD_FILE")"; fi
  export SQL_PLUGIN="${DB:-postgres12}" SQL_HOST="$POSTGRES_SEEDS" SQL_PORT="${DB_PORT:-5432}"
  export SQL_USER="$POSTGRES_USER" SQL_PASSWORD="$POSTGRES_PWD"
  dir=/etc/temporal/schema/postgresql/v12
  for pair in "${DBNAME:-temporal}:temporal" "${VISIBILITY_DBNAME:-temporal_visibility}:visibility"; do
    db="${pair%%:*}" kind="${pair#*:}"
    # create-database fails when the database exists; -q turns that into a no-op.
    temporal-sql-tool --db "$db" -q create-database
    temporal-sql-tool --db "$db" setup-schema -v 0.0
    temporal-sql-tool --db "$db" update-schema -d "$dir/$kind/versioned"
    echo "schema of $db is up to date"
  done
}

namespace() {
  ns="${TEMPORAL_NAMESPACE:-default}"
  if temporal operator namespace describe -n "$ns" >/dev/null 2>&1; then
    echo "namespace $ns exists"
  else
    temporal operator namespace create -n "$ns" --retention "${TEMPORAL_RETENTION:-720h}"
    echo "namespace $ns created"
  fi
}

case "${1:-}" in
  schema) schema ;;
  namespace) namespace ;;
  *) echo "usage: setup.sh schema|namespace" >&2; exit 2 ;;
esac
