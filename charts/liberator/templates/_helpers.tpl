{{/*
Labels of every object, as in config/: the two liberator labels, and the
labels Helm charts carry (hack/verify-chart.sh ignores those when it compares
the chart with config/default).
*/}}
{{- define "liberator.labels" -}}
app.kubernetes.io/name: liberator
app.kubernetes.io/part-of: liberator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the controller workload and its pods. */}}
{{- define "liberator.controllerLabels" -}}
app.kubernetes.io/name: liberator
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: liberator
{{- end }}

{{/* The selector of the controller pods. Never change it: it is immutable. */}}
{{- define "liberator.selectorLabels" -}}
app.kubernetes.io/name: liberator
app.kubernetes.io/component: controller
{{- end }}

{{/*
The namespace of the controller and of every namespaced object: namespace.name,
or the release's (helm install -n). Templates use this, never
.Values.namespace.name (hack/verify-chart.sh checks it).
*/}}
{{- define "liberator.namespace" -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end }}

{{/* The namespace of the leader election Lease (and of the fence credentials). */}}
{{- define "liberator.leaderNamespace" -}}
{{- .Values.config.leaderElection.namespace | default (include "liberator.namespace" .) -}}
{{- end }}

{{/* The controller image: image.tag, or the chart's appVersion. */}}
{{- define "liberator.image" -}}
{{- include "liberator.checkTag" (list "image.tag" .Values.image.tag .) -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end }}

{{/*
Refuses the tag "latest": replicas and agents started at different times
would run different builds, and nobody could tell which.
*/}}
{{- define "liberator.checkTag" -}}
{{- $field := index . 0 -}}
{{- $tag := index . 1 -}}
{{- $top := index . 2 -}}
{{- if eq $tag "latest" -}}
{{- fail (printf "%s: \"latest\" is refused: name the build to run (empty: the chart's appVersion, %s), so that every replica and agent runs the same one" $field $top.Chart.AppVersion) -}}
{{- end -}}
{{- end }}

{{/* The controller config file, as the ConfigMap holds it. */}}
{{- define "liberator.configFile" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg.leaderElection "namespace" (include "liberator.leaderNamespace" .) -}}
{{- if and .Values.agent.enabled .Values.agent.fenceClass -}}
{{- $fc := deepCopy .Values.agent.fenceClass -}}
{{- $_ = set $fc "provider" "agent" -}}
{{- $_ = set $cfg.fencing "classes" (append ($cfg.fencing.classes | default list) $fc) -}}
{{- end -}}
{{- $_ = set $cfg "apiVersion" "config.liberator.dev/v1alpha1" -}}
{{- $_ = set $cfg "kind" "ControllerConfig" -}}
{{- toYaml $cfg -}}
{{- end }}

{{/* The port of a listen address such as ":8080" or "0.0.0.0:8080". */}}
{{- define "liberator.port" -}}
{{- $p := regexReplaceAll "^.*:" . "" -}}
{{- if not (regexMatch "^[0-9]+$" $p) -}}
{{- fail (printf "cannot take a port from the address %q: write it as \":PORT\" or \"HOST:PORT\"" .) -}}
{{- end -}}
{{- $p -}}
{{- end }}

{{/* Labels of the agent DaemonSet and its pods. */}}
{{- define "liberator.agentLabels" -}}
app.kubernetes.io/name: liberator
app.kubernetes.io/component: agent
app.kubernetes.io/part-of: liberator
{{- end }}

{{/* The selector of the agent pods. Never change it: it is immutable. */}}
{{- define "liberator.agentSelectorLabels" -}}
app.kubernetes.io/name: liberator
app.kubernetes.io/component: agent
{{- end }}

{{/* The agent image: agent.image, or the controller's where empty. */}}
{{- define "liberator.agentImage" -}}
{{- include "liberator.checkTag" (list "agent.image.tag" .Values.agent.image.tag .) -}}
{{- printf "%s:%s" (.Values.agent.image.repository | default .Values.image.repository) (.Values.agent.image.tag | default .Values.image.tag | default .Chart.AppVersion) -}}
{{- end }}

{{/* The name of the Secret with the agents' peer key. */}}
{{- define "liberator.agentPeerSecret" -}}
{{- .Values.agent.peerKey.existingSecret | default "liberator-agent-peer" -}}
{{- end }}

{{/*
Charts before namespace.name followed the release's namespace put liberator
in tkr-system whatever -n said. Upgrading such a release with namespace.name
empty would move everything to the release's namespace: Helm would delete
tkr-system (the chart created it) with the fence credentials in it, and for
a moment two controllers would hold two different leader Leases. Refuse, and
say how to keep the layout (docs/upgrade.md).
*/}}
{{- define "liberator.checkUpgrade" -}}
{{- if and .Release.IsUpgrade (not .Values.namespace.name) (ne .Release.Namespace "tkr-system") }}
{{- $old := lookup "v1" "ConfigMap" "tkr-system" "liberator-config" }}
{{- if and $old (eq (dig "metadata" "annotations" "meta.helm.sh/release-name" "" $old) .Release.Name) (eq (dig "metadata" "annotations" "meta.helm.sh/release-namespace" "" $old) .Release.Namespace) }}
{{- $ns := lookup "v1" "Namespace" "" "tkr-system" }}
{{- $create := eq (dig "metadata" "annotations" "meta.helm.sh/release-name" "" $ns) .Release.Name }}
{{- fail (printf "namespace.name: this release runs liberator in tkr-system, not in the release's namespace %s; keep it there with --set namespace.name=tkr-system%s (see docs/upgrade.md)" .Release.Namespace (ternary " --set namespace.create=true" "" $create)) }}
{{- end }}
{{- end }}
{{- end }}
