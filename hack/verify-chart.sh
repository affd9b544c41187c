#!/usr/bin/env bash
# Proves that the Helm chart (charts/liberator) installs what config/
# installs, and that its values schema turns bad values away:
#
#  1. `helm template -n tkr-system --set namespace.create=true` (the
#     release's namespace, and the chart creating it as config/namespace
#     does) with the default values and `kustomize build config/default`
#     give the same objects (both name the image of the chart's
#     appVersion, never latest), and so do `--set
#     mode=DaemonSet` and config/overlays/daemonset, and `--set
#     agent.enabled=true` (with the peer key Secret the user creates) and
#     config/overlays/agent (config/components/agent), and the monitoring
#     objects (templates/monitoring.yaml with metrics.serviceMonitor,
#     metrics.prometheusRule and metrics.dashboard enabled) and
#     config/prometheus. Both sides go through
#     hack/normalize-manifests (sorted, Helm-only labels dropped, the
#     controller config compared as the controller reads it); a difference
#     fails with a diff.
#  2. the chart's CRD is the generated one, and `helm lint --strict` passes;
#     the templates take the namespace from liberator.namespace (the
#     release's unless namespace.name says otherwise), the default values
#     create no Namespace; with agent.enabled and no existing Secret the
#     chart makes the peer key Secret (32 random bytes) and the agents mount
#     it.
#  3. every values file in hack/testdata/chart-values/valid renders, and the
#     controller accepts the config the chart writes from it.
#  4. every values file in hack/testdata/chart-values is rejected by
#     `helm template` with the schema message its "# want:" lines name.
#  5. the Go tests of hack/chart (`make chart`): the chart version made from
#     git describe is one helm accepts, the package pushed with `helm push`
#     to an OCI registry (in memory) carries Helm's media types and renders
#     from oci://; the release's namespace is honoured everywhere; the
#     security context (defaults, OpenShift's restricted-v2 values file),
#     extraEnv/extraVolumes/extraVolumeMounts and the CA bundle render where
#     they belong.
#
# helm and kustomize are built from the Go module proxy at the versions
# pinned in hack/tools/codegen/go.mod (hack/tools/manifest-tools.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export GOTOOLCHAIN=local
bin=$(hack/tools/manifest-tools.sh)
helm=$bin/helm
kustomize=$bin/kustomize
chart=charts/liberator
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/normalize" ./hack/normalize-manifests
failed=0
fail() {
	echo "verify-chart: $*" >&2
	failed=1
}

# 1. Same objects.
compare() { # name, kustomization, helm flags...
	local name=$1 dir=$2
	shift 2
	"$kustomize" build "$dir" >"$tmp/$name.kustomize.raw"
	"$helm" template liberator "$chart" --include-crds -n tkr-system --set namespace.create=true "$@" >"$tmp/$name.helm.raw"
	"$tmp/normalize" <"$tmp/$name.kustomize.raw" >"$tmp/$name.kustomize.yaml"
	"$tmp/normalize" <"$tmp/$name.helm.raw" >"$tmp/$name.helm.yaml"
	if ! diff -u --label "kustomize build $dir" --label "helm template $chart -n tkr-system --set namespace.create=true $*" \
		"$tmp/$name.kustomize.yaml" "$tmp/$name.helm.yaml"; then
		fail "the chart ($*) and $dir differ (above); change both, or the chart's defaults, so that they agree"
	else
		echo "verify-chart: helm template $chart -n tkr-system --set namespace.create=true $* = kustomize build $dir ($(grep -c '^--- ' "$tmp/$name.helm.yaml") objects)"
	fi
}
app_version=$(sed -n 's/^appVersion: "\(.*\)"$/\1/p' "$chart/Chart.yaml")
if [ -z "$app_version" ] || [ "$app_version" = latest ]; then
	fail "$chart/Chart.yaml: appVersion \"$app_version\": want the release's version (the default image tag)"
fi
compare default config/default
compare daemonset config/overlays/daemonset --set mode=DaemonSet
compare agent config/overlays/agent --set agent.enabled=true --set agent.peerKey.existingSecret=liberator-agent-peer
compare monitoring config/prometheus --show-only templates/monitoring.yaml \
	--set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true --set metrics.dashboard.enabled=true

# 2. CRD copy and lint.
if ! cmp -s config/crd/bases/liberator.dev_takeovers.yaml "$chart/crds/liberator.dev_takeovers.yaml"; then
	fail "$chart/crds/liberator.dev_takeovers.yaml differs from config/crd/bases: run hack/update-generated.sh"
fi
if ! "$helm" lint --strict "$chart" >"$tmp/lint" 2>&1; then
	cat "$tmp/lint" >&2
	fail "helm lint --strict $chart failed"
fi
if "$helm" template liberator "$chart" -n tkr-system | grep -q '^kind: Namespace$'; then
	fail "the default values render a Namespace: helm install -n NAMESPACE --create-namespace would find it owned by no release"
fi
if grep -n '\.Values\.namespace\.name' "$chart"/templates/* | grep -v '/_helpers.tpl:'; then
	fail "the templates above read .Values.namespace.name: use include \"liberator.namespace\" . (the release's namespace when it is empty)"
fi
# The peer key: made by the chart unless agent.peerKey.existingSecret names
# one, and mounted by the agents either way.
peer_key_check() { # rendered manifests, expected Secret name, whether the chart makes it
	local y=$1 name=$2 makes=$3 key
	if ! grep -q "secretName: $name\$" "$y"; then
		fail "agent.peerKey: the agent DaemonSet does not mount the Secret $name"
	fi
	key=$(awk '/^kind: Secret$/ {s=1} s && /^  key: / {print $2; exit}' "$y")
	if [ "$makes" = no ]; then
		if grep -q '^kind: Secret$' "$y"; then
			fail "agent.peerKey.existingSecret=$name still renders a Secret"
		fi
	elif [ -z "$key" ]; then
		fail "agent.enabled=true without agent.peerKey.existingSecret renders no peer key Secret"
	elif [ "$(printf '%s' "$key" | base64 -d | base64 -d | wc -c)" -lt 32 ]; then
		fail "the chart's peer key is shorter than 32 bytes"
	fi
}
"$helm" template liberator "$chart" --set agent.enabled=true >"$tmp/agent-secret.yaml"
peer_key_check "$tmp/agent-secret.yaml" liberator-agent-peer yes
"$helm" template liberator "$chart" --set agent.enabled=true --set agent.peerKey.existingSecret=my-peer-key >"$tmp/agent-existing.yaml"
peer_key_check "$tmp/agent-existing.yaml" my-peer-key no

# 3. Valid values files.
for f in hack/testdata/chart-values/valid/*.yaml; do
	if ! "$helm" template liberator "$chart" -n tkr-system -f "$f" >"$tmp/valid.raw" 2>"$tmp/valid.err"; then
		cat "$tmp/valid.err" >&2
		fail "$f: helm template failed"
	elif ! "$tmp/normalize" <"$tmp/valid.raw" >/dev/null; then
		fail "$f: the chart writes a config the controller rejects (above)"
	fi
done

# 4. Bad values files.
n=0
for f in hack/testdata/chart-values/*.yaml; do
	n=$((n + 1))
	if "$helm" template liberator "$chart" -f "$f" >/dev/null 2>"$tmp/err"; then
		fail "$f: helm template accepted values it must reject"
		continue
	fi
	while IFS= read -r want; do
		if ! grep -qF -- "$want" "$tmp/err"; then
			fail "$f: the error does not say \"$want\"; it says: $(cat "$tmp/err")"
		fi
	done < <(sed -n 's/^# want: //p' "$f")
	if ! grep -q '^# want: ' "$f"; then
		fail "$f has no \"# want:\" line"
	fi
done
echo "verify-chart: $n bad values files rejected with the expected messages"

# 5. make chart: version, OCI artifact, rendering checks.
if ! LIBERATOR_HELM=$helm go -C hack/chart test -count=1 ./...; then
	fail "go -C hack/chart test failed (above)"
fi

if [ "$failed" != 0 ]; then
	exit 1
fi
echo "verify-chart: the chart is in step with config/"
