{{/* The agent's collector configuration, before configOverride. */}}
{{- define "execsnoop.agentConfig" -}}
{{- $limit := include "execsnoop.mebibytes" .Values.agent.resources.limits.memory | int }}
{{- $processors := list "memory_limiter" }}
receivers:
  execsnoop:
    {{- toYaml .Values.receiver | nindent 4 }}
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: {{ div (mul $limit .Values.agent.memoryLimiter.limitPercent) 100 }}
    spike_limit_mib: {{ div (mul $limit .Values.agent.memoryLimiter.spikePercent) 100 }}
  {{- if .Values.agent.k8sAttributes.enabled }}
  {{- $processors = append $processors "k8s_attributes" }}
  k8s_attributes:
    auth_type: serviceAccount
    # Watch only this node's pods: an agent per node caches no more.
    filter:
      node_from_env_var: K8S_NODE_NAME
    # The receiver puts container.id and k8s.pod.uid (both from the
    # process's cgroup path) on each record's resource. container.id
    # matches once the container is in the pod's status; the pod uid
    # matches from the pod's first exec.
    pod_association:
      - sources:
          - from: resource_attribute
            name: container.id
      - sources:
          - from: resource_attribute
            name: k8s.pod.uid
    extract:
      metadata:
        {{- toYaml .Values.agent.k8sAttributes.metadata | nindent 8 }}
      {{- with .Values.agent.k8sAttributes.labels }}
      labels:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.agent.k8sAttributes.annotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- end }}
  {{- if .Values.agent.nodeNameOnAllRecords }}
  {{- $processors = append $processors "resource/node" }}
  resource/node:
    attributes:
      - key: k8s.node.name
        value: ${env:K8S_NODE_NAME}
        action: upsert
  {{- end }}
exporters:
  otlp_grpc:
    endpoint: {{ include "execsnoop.endpoint" . }}
    compression: {{ .Values.otlp.compression }}
    # A request never exceeds otlp.maxRequestMiB of OTLP protobuf (before
    # compression): the gateway's max_recv_msg_size_mib must be at least that.
    sending_queue:
      batch:
        {{- include "execsnoop.requestBatch" (dict "timeout" .Values.agent.batch.timeout "mib" .Values.otlp.maxRequestMiB) | nindent 8 }}
    tls:
      {{- if .Values.otlp.tls.enabled }}
      ca_file: /etc/otelcol-execsnoop/tls/{{ .Values.otlp.tls.caFile }}
      {{- if .Values.otlp.tls.certFile }}
      cert_file: /etc/otelcol-execsnoop/tls/{{ .Values.otlp.tls.certFile }}
      key_file: /etc/otelcol-execsnoop/tls/{{ .Values.otlp.tls.keyFile }}
      {{- end }}
      {{- with .Values.otlp.tls.serverName }}
      server_name_override: {{ . }}
      {{- end }}
      insecure_skip_verify: {{ .Values.otlp.tls.insecureSkipVerify }}
      {{- else }}
      insecure: true
      {{- end }}
extensions:
  health_check:
    endpoint: 0.0.0.0:{{ .Values.agent.healthCheckPort }}
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: {{ .Values.agent.logLevel }}
      encoding: json
  pipelines:
    logs:
      receivers: [execsnoop]
      processors: {{ toJson $processors }}
      exporters: [otlp_grpc]
    {{- if .Values.traces.enabled }}
    # Process spans: the same receiver (one set of kernel programs) and
    # the same processors, so spans carry the records' pod metadata.
    traces:
      receivers: [execsnoop]
      processors: {{ toJson $processors }}
      exporters: [otlp_grpc]
    {{- end }}
{{- end }}

{{/* Exporter batching bounded by bytes (dict: timeout, mib): at least half
the bound, at most the bound. */}}
{{- define "execsnoop.requestBatch" -}}
flush_timeout: {{ .timeout }}
sizer: bytes
min_size: {{ div (mul .mib 1048576) 2 }}
max_size: {{ mul .mib 1048576 }}
{{- end }}
