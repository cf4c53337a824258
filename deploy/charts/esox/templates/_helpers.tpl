{{/* The chart's name, or nameOverride. */}}
{{- define "esox.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: fullnameOverride, else <release>-<name> (just <release> when it
contains the name). */}}
{{- define "esox.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "esox.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride }}
{{- end }}

{{- define "esox.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "esox.selectorLabels" -}}
app.kubernetes.io/name: {{ include "esox.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "esox.labels" -}}
helm.sh/chart: {{ include "esox.chart" . }}
{{ include "esox.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "esox.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "esox.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "esox.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/* "true" when the replicas elect a leader: asked for, or more than one replica. */}}
{{- define "esox.leaderElection" -}}
{{- if or .Values.leaderElect (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* The Lease's name, for the Role's resourceNames (esox's default when unset). */}}
{{- define "esox.leaseName" -}}
{{- default "esox-controller-leader" .Values.leaderElectionID }}
{{- end }}

{{/* A security context without the chart's `enabled` switch. */}}
{{- define "esox.securityContext" -}}
{{- toYaml (omit . "enabled") }}
{{- end }}

{{/* "true" when the ServiceMonitor is rendered (serviceMonitor.renderMode). */}}
{{- define "esox.renderServiceMonitor" -}}
{{- if .Values.serviceMonitor.enabled }}
{{- $served := .Capabilities.APIVersions.Has "monitoring.coreos.com/v1/ServiceMonitor" }}
{{- $mode := .Values.serviceMonitor.renderMode | default "skipIfMissing" }}
{{- if eq $mode "alwaysRender" }}true
{{- else if eq $mode "failIfMissing" }}
{{- if not $served }}{{ fail "serviceMonitor.enabled: the API server does not serve monitoring.coreos.com/v1 ServiceMonitor (install prometheus-operator's CRDs, or set serviceMonitor.renderMode=alwaysRender)" }}{{ end }}true
{{- else if eq $mode "skipIfMissing" }}
{{- if $served }}true{{ end }}
{{- else }}
{{- fail (printf "serviceMonitor.renderMode=%s: use skipIfMissing, failIfMissing or alwaysRender" $mode) }}
{{- end }}
{{- end }}
{{- end }}

{{/* ESO values esox cannot honour: fail rather than silently do something else. */}}
{{- define "esox.validate" -}}
{{- if .Values.scopedRBAC }}
{{- fail "scopedRBAC=true is not supported by esox: its RBAC is cluster-wide (scopedNamespace alone restricts what it watches)" }}
{{- end }}
{{- if not .Values.processClusterStore }}
{{- fail "processClusterStore=false is not supported by esox: it always serves ClusterSecretStores" }}
{{- end }}
{{- if not .Values.processSecretStore }}
{{- fail "processSecretStore=false is not supported by esox: it always serves SecretStores" }}
{{- end }}
{{- if .Values.genericTargets.resources }}
{{- fail "genericTargets.resources is not supported by esox: among generic targets it writes ConfigMaps only (genericTargets.enabled grants those)" }}
{{- end }}
{{- if or .Values.metrics.listen.secure.enabled .Values.metrics.listen.auth.enabled }}
{{- fail "metrics.listen.secure and metrics.listen.auth are not supported by esox: /metrics is plain HTTP (restrict it with networkPolicy)" }}
{{- end }}
{{- end }}
