#!/usr/bin/env bash
# Fails when the generated deepcopy functions or CRD differ from what the Go
# types produce (run hack/update-generated.sh to fix). Leaves the tree as it
# found it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/api" "$tmp/crd"
cp -a "$root/api/." "$tmp/api/"
cp -a "$root/config/crd/." "$tmp/crd/"
"$root/hack/update-generated.sh"
if ! diff -ru "$tmp/api" "$root/api" || ! diff -ru "$tmp/crd" "$root/config/crd"; then
	rm -rf "$root/api" "$root/config/crd"
	cp -a "$tmp/api" "$root/api"
	cp -a "$tmp/crd" "$root/config/crd"
	echo "generated files are out of date: run hack/update-generated.sh and commit the result" >&2
	exit 1
fi
echo "generated files are up to date"
