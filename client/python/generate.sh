#!/usr/bin/env bash
# Writes src/draftsman_client/models.py from the OpenAPI document (pydantic v2 models).
# Usage: generate.sh [document] [output]; `npm run openapi` runs it, and the client's
# test (test/e2e/python-client.e2e.ts) fails while the committed models are stale.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
doc="${1:-$here/../../docs/openapi.json}"
out="${2:-$here/src/draftsman_client/models.py}"
codegen="${DATAMODEL_CODEGEN:-$here/../../data/tools/python-client/bin/datamodel-codegen}"
if [ ! -x "$codegen" ]; then
  echo "generate.sh: $codegen is missing; run bash infra/scripts/ensure-python-client.sh" >&2
  exit 1
fi
"$codegen" --input "$doc" --input-file-type openapi --output "$out" \
  --output-model-type pydantic_v2.BaseModel --target-python-version 3.10 \
  --use-annotated --field-constraints --use-standard-collections --use-union-operator \
  --extra-fields allow --ignore-enum-constraints --use-schema-description --use-field-description \
  --collapse-root-models --use-type-alias-type --use-double-quotes --disable-timestamp --formatters builtin \
  --custom-file-header '# Generated from docs/openapi.json by client/python/generate.sh: do not edit.' \
  2> >(grep -v "UserWarning\|warn_about_dropped_constraints" >&2 || true)
