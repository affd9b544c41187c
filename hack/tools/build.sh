#!/usr/bin/env bash
# Builds the pinned test-bed binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok, kwokctl, kubectl for the e2e checks of what
# `kubectl describe`, `get` and `wait` show, and promtool for the alert rule
# tests) from the Go module proxy and caches them outside the work tree.
# Rebuilds only when a pin (go.mod/go.sum) changes.
#
# Prints the directory holding the binaries on its last line of stdout.
# Progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${LIBERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/liberator}
pins=$(cat "$here"/{kube,etcd,kwok,prometheus}/go.{mod,sum} "$here"/etcd/*.go "$here/build.sh" | sha256sum | cut -c1-16)
bin="$cache_root/tools/$pins/bin"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0

pin() { (cd "$here/$1" && go list -m -f '{{.Version}}' "$2"); }
kube_version=$(pin kube k8s.io/kubernetes)
kwok_version=$(pin kwok sigs.k8s.io/kwok)
kube_minor=$(echo "$kube_version" | cut -d. -f2)

log() { printf '[tools] %s\n' "$*" >&2; }

build() { # module dir, output name, package, ldflags[, build tags]
	local dir=$1 out=$2 pkg=$3 ldflags=$4 tags=${5:-}
	if [ -x "$bin/$out" ]; then
		return 0
	fi
	local start=$SECONDS logf="$cache_root/tools/$pins/$out.build.log"
	log "building $out ($pkg) ..."
	if ! (cd "$here/$dir" && go build -trimpath ${tags:+-tags "$tags"} -ldflags "-s -w $ldflags" -o "$bin/$out.tmp" "$pkg") >"$logf" 2>&1; then
		log "FAILED to build $out; log: $logf"
		tail -n 20 "$logf" >&2
		rm -f "$bin/$out.tmp"
		exit 1
	fi
	mv "$bin/$out.tmp" "$bin/$out"
	log "built $out in $((SECONDS - start))s"
}

mkdir -p "$bin"
kv="-X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kube_minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$kube_version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$kube_minor"
log "test-bed binaries: $bin (kubernetes $kube_version, kwok $kwok_version)"
build etcd etcd . ""
build kwok kwok sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$kwok_version"
build kwok kwokctl sigs.k8s.io/kwok/cmd/kwokctl "-X sigs.k8s.io/kwok/pkg/consts.Version=$kwok_version -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$kube_version"
build kube kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kv"
build kube kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kv"
build kube kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler "$kv"
build kube kubectl k8s.io/kubernetes/cmd/kubectl "$kv"
# promtool checks and tests rules: without the service discovery plugins
# (cloud SDKs), which it does not need, it builds in a fraction of the time.
build prometheus promtool github.com/prometheus/prometheus/cmd/promtool "" remove_all_sd
echo "$bin"
