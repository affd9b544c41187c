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

{{/* The namespace of the leader election Lease (and of the fence credentials). */}}
{{- define "liberator.leaderNamespace" -}}
{{- .Values.config.leaderElection.namespace | default .Values.namespace.name -}}
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
{{- printf "%s:%s" (.Values.agent.image.repository | default .Values.image.repository) (.Values.agent.image.tag | default .Values.image.tag) -}}
{{- end }}

{{/* The name of the Secret with the agents' peer key. */}}
{{- define "liberator.agentPeerSecret" -}}
{{- .Values.agent.peerKey.existingSecret | default "liberator-agent-peer" -}}
{{- end }}
