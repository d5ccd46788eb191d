{{/* The release's objects are named fullname: the chart's name when the release's name contains it (helm install cloudxr-wss-proxy ... gives the kustomize base's names). */}}
{{- define "cxp.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Selects the release's proxy pods. The name is also the Prometheus job (the PodMonitor's jobLabel) that the alerts and the dashboard expect. */}}
{{- define "cxp.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "cxp.labels" -}}
{{ include "cxp.selectorLabels" . }}
{{ include "cxp.releaseLabels" . }}
{{- end -}}

{{/* The labels of everything the release makes, the runtimes' Service included. */}}
{{- define "cxp.releaseLabels" -}}
app.kubernetes.io/part-of: cloudxr
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "cxp.checkValues" -}}
{{- if and .Values.pool.enabled .Values.routing.enabled -}}
{{- fail "pool.enabled and routing.enabled exclude each other: a session either names its runtime or gets one" -}}
{{- end -}}
{{- if and .Values.auth.tokens.enabled .Values.auth.oidc.enabled -}}
{{- fail "auth.tokens.enabled and auth.oidc.enabled exclude each other: choose one way to authenticate" -}}
{{- end -}}
{{- if and .Values.routing.enabled (not .Values.routing.allow) -}}
{{- fail "routing.enabled needs routing.allow: the runtimes the proxy may dial" -}}
{{- end -}}
{{- if and .Values.acme.enabled (not .Values.acme.hostnames) -}}
{{- fail "acme.enabled needs acme.hostnames" -}}
{{- end -}}
{{- if and .Values.auth.oidc.enabled (not (and .Values.auth.oidc.issuer .Values.auth.oidc.audience)) -}}
{{- fail "auth.oidc.enabled needs auth.oidc.issuer and auth.oidc.audience" -}}
{{- end -}}
{{- end -}}
