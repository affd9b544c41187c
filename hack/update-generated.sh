#!/usr/bin/env bash
# Regenerates the deepcopy functions and the Takeover CRD from api/v1alpha1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root/hack/tools/codegen"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
go tool controller-gen \
	object:headerFile="$root/hack/boilerplate.go.txt" paths="$root/api/..." \
	crd:crdVersions=v1 output:crd:artifacts:config="$root/config/crd/bases"
# The Helm chart installs the same CRD from its crds/ directory.
cp "$root/config/crd/bases/liberator.dev_takeovers.yaml" "$root/charts/liberator/crds/"
