#!/usr/bin/env bash
# Regenerates what is written from the config types in internal/config: the
# configuration reference (docs/configuration.md) and the config block of the
# Helm chart's values.yaml and values.schema.json.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export GOTOOLCHAIN=local
go run ./hack/gen-config-doc "$@"
