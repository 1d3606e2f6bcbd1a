{{- define "execsnoop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "execsnoop.fullname" -}}
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

{{- define "execsnoop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "execsnoop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "execsnoop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "execsnoop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "execsnoop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "execsnoop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "execsnoop.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* The gateway's OTLP endpoint the agents export to. */}}
{{- define "execsnoop.endpoint" -}}
{{- if .Values.otlp.endpoint }}
{{- .Values.otlp.endpoint }}
{{- else if .Values.gateway.enabled }}
{{- printf "%s-gateway.%s.svc:%d" (include "execsnoop.fullname" .) .Release.Namespace (int .Values.gateway.service.port) }}
{{- else }}
{{- printf "otel-gateway.%s.svc:4317" .Release.Namespace }}
{{- end }}
{{- end }}

{{/* A memory limit "<N>Mi" (values.schema.json enforces the form) as N. */}}
{{- define "execsnoop.mebibytes" -}}
{{- trimSuffix "Mi" . | int }}
{{- end }}
