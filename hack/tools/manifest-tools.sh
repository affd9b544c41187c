#!/usr/bin/env bash
# Builds helm and kustomize, pinned in hack/tools/codegen/go.mod, into bin/
# (helm with the version information its own release build sets: the
# Kubernetes version that `helm template` assumes comes from it). Rebuilds
# only when the pins change. Prints the directory holding them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mod=$root/hack/tools/codegen
bin=$root/bin
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
stamp=$bin/.manifest-tools-$(cat "$mod/go.mod" "$mod/go.sum" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)
if [ -x "$bin/helm" ] && [ -x "$bin/kustomize" ] && [ -e "$stamp" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$bin"
version() { (cd "$mod" && go list -m -f '{{.Version}}' "$1"); }
helm_version=$(version helm.sh/helm/v3)
kustomize_version=$(version sigs.k8s.io/kustomize/kustomize/v5)
kube_minor=$(version k8s.io/client-go | cut -d. -f2)
echo "[tools] building helm $helm_version and kustomize $kustomize_version into $bin" >&2
go build -C "$mod" -trimpath -o "$bin/helm" -ldflags "-s -w \
	-X helm.sh/helm/v3/internal/version.version=$helm_version \
	-X helm.sh/helm/v3/internal/version.gitTreeState=clean \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$kube_minor \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
	-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$kube_minor" \
	helm.sh/helm/v3/cmd/helm
go build -C "$mod" -trimpath -o "$bin/kustomize" -ldflags "-s -w \
	-X sigs.k8s.io/kustomize/api/provenance.version=$kustomize_version" \
	sigs.k8s.io/kustomize/kustomize/v5
rm -f "$bin"/.manifest-tools-*
touch "$stamp"
echo "$bin"
