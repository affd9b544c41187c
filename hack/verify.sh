#!/usr/bin/env bash
# Formatting, vet, staticcheck and generated files: all must be clean.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export GOTOOLCHAIN=local
echo "verify: gofmt"
bad=$(gofmt -l $(git ls-files '*.go' | grep -v '^hack/tools/') 2>/dev/null || true)
if [ -n "$bad" ]; then
	echo "gofmt would change: $bad (run gofmt -w)" >&2
	exit 1
fi
echo "verify: go vet"
go vet ./...
go vet -tags e2e ./...
echo "verify: staticcheck"
(cd hack/tools/codegen && GOFLAGS=-mod=mod go build -o "$root/bin/staticcheck" honnef.co/go/tools/cmd/staticcheck)
bin/staticcheck ./...
bin/staticcheck -tags e2e ./...
echo "verify: go vet and staticcheck of hack/imagebuild (own module)"
(cd hack/imagebuild && go vet ./... && "$root/bin/staticcheck" ./...)
echo "verify: go vet and staticcheck of hack/monitoring (own module)"
(cd hack/monitoring && go vet ./... && "$root/bin/staticcheck" ./...)
echo "verify: go vet and staticcheck of hack/krew (own module)"
(cd hack/krew && go vet ./... && "$root/bin/staticcheck" ./...)
echo "verify: go vet and staticcheck of hack/chart (own module)"
(cd hack/chart && go vet ./... && "$root/bin/staticcheck" ./...)
echo "verify: generated files"
hack/verify-generated.sh
echo "verify: configuration reference and chart values (hack/update-docs.sh)"
hack/update-docs.sh -verify
echo "verify: Helm chart = config/ (hack/verify-chart.sh)"
hack/verify-chart.sh
