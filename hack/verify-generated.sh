#!/usr/bin/env bash
# Fails when the generated deepcopy functions or CRD differ from what the Go
# types produce (run hack/update-generated.sh to fix). Leaves the tree as it
# found it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/api" "$tmp/crd" "$tmp/chartcrds"
cp -a "$root/api/." "$tmp/api/"
cp -a "$root/config/crd/." "$tmp/crd/"
cp -a "$root/charts/liberator/crds/." "$tmp/chartcrds/"
"$root/hack/update-generated.sh"
if ! diff -ru "$tmp/api" "$root/api" || ! diff -ru "$tmp/crd" "$root/config/crd" ||
	! diff -ru "$tmp/chartcrds" "$root/charts/liberator/crds"; then
	rm -rf "$root/api" "$root/config/crd" "$root/charts/liberator/crds"
	cp -a "$tmp/api" "$root/api"
	cp -a "$tmp/crd" "$root/config/crd"
	cp -a "$tmp/chartcrds" "$root/charts/liberator/crds"
	echo "generated files are out of date: run hack/update-generated.sh and commit the result" >&2
	exit 1
fi
echo "generated files are up to date"
