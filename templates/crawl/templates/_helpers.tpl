{{/* resources: a component's requests and limits, from the budget plan. */}}
{{- define "crawl.resources" -}}
{{- $c := index .Values.components .name -}}
{{- if not $c }}{{ fail (printf "the budget plan has no component %q" .name) }}{{ end -}}
resources:
  requests: {memory: {{ $c.requestMemoryMi }}Mi, cpu: {{ $c.requestCPUm }}m}
  limits: {memory: {{ $c.limitMemoryMi }}Mi, cpu: {{ $c.limitCPUm }}m}
{{- end }}

{{/* labels of a component */}}
{{- define "crawl.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: crawlctl
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "crawl.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{/* scrape: pod annotations the in-cluster Prometheus scrapes by. */}}
{{- define "crawl.scrape" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: {{ .path | default "/metrics" | quote }}
{{- end }}

{{/* tokenSecret: the Secret called .name holding a component's token:
     .value if given, else the one already in the cluster (kept across
     upgrades), else a random one. */}}
{{- define "crawl.tokenSecret" -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .name }}
  labels: {{- include "crawl.labels" (dict "name" .component "root" .root) | nindent 4 }}
type: Opaque
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name }}
{{- if and (not .value) $existing }}
data:
  token: {{ index $existing.data "token" }} # kept across upgrades
{{- else }}
stringData:
  token: {{ .value | default (randAlphaNum 32) | quote }}
{{- end }}
{{- end }}

{{- define "crawl.kafka" -}}kafka-0.kafka.{{ .Release.Namespace }}.svc:9092{{- end }}
{{- define "crawl.redis" -}}redis.{{ .Release.Namespace }}.svc:6379{{- end }}
{{- define "crawl.target" -}}{{ .Values.target | default (printf "http://olsim.%s.svc:8081" .Release.Namespace) }}{{- end }}

{{/* runtimeContainer: a `crawlctl run <command>` container; env keys are
     flag names in CRAWLCTL_<FLAG> form (upper case, '_' for '-'). */}}
{{- define "crawl.runtimeContainer" -}}
- name: {{ .name }}
  image: {{ .root.Values.image }}
  imagePullPolicy: {{ .root.Values.imagePullPolicy }}
  args: ["run", {{ .command | quote }}]
  env:
    {{- range $k, $v := .env }}
    - {name: {{ printf "CRAWLCTL_%s" $k }}, value: {{ $v | quote }}}
    {{- end }}
    {{- if .tokenSecret }}
    - name: CRAWLCTL_TOKEN
      valueFrom: {secretKeyRef: {name: {{ .tokenSecret }}, key: token}}
    {{- end }}
  ports:
    - {containerPort: {{ .port }}, name: http}
    {{- if .adminPort }}
    - {containerPort: {{ .adminPort }}, name: admin}
    {{- end }}
  readinessProbe: {httpGet: {path: /readyz, port: {{ .adminPort | default .port }}}, periodSeconds: 5}
  {{- include "crawl.resources" (dict "Values" .root.Values "name" .name) | nindent 2 }}
{{- end }}
