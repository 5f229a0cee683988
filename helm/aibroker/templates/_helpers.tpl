{{- define "aibroker.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: aibroker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* An image reference: `image` (a service's own, or the chart's), its tag defaulting to the
     chart's appVersion. Called with (dict "image" ... "root" $). */}}
{{- define "aibroker.image" -}}
{{ .image.repository }}:{{ .image.tag | default .root.Chart.AppVersion }}
{{- end }}

{{/* Restricted Pod Security (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
     the pod's part, then a container's. The image's user is 10001 (Dockerfile). */}}
{{- define "aibroker.podSecurity" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end }}

{{- define "aibroker.containerSecurity" -}}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end }}

{{/* What a process writes, with the root filesystem read-only: /tmp, and the home directory
     (the model caches of Hugging Face, torch, vLLM and Paddle live under it). */}}
{{- define "aibroker.scratchVolumes" -}}
- name: tmp
  emptyDir: {sizeLimit: {{ .Values.scratch.tmpSize }}}
- name: home
  emptyDir: {sizeLimit: {{ .Values.scratch.homeSize }}}
{{- end }}

{{- define "aibroker.scratchMounts" -}}
- {name: tmp, mountPath: /tmp}
- {name: home, mountPath: /home/aibroker}
{{- end }}

{{- define "aibroker.selector" -}}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end }}

{{/* The Strimzi Kafka cluster the topics belong to. */}}
{{- define "aibroker.kafkaCluster" -}}
{{- if .Values.kafka.strimzi.deploy -}}{{ .Release.Name }}-kafka{{- else -}}{{ .Values.kafka.strimzi.cluster }}{{- end -}}
{{- end }}

{{- define "aibroker.bootstrap" -}}
{{- if .Values.kafka.strimzi.deploy -}}{{ .Release.Name }}-kafka-kafka-bootstrap:9092{{- else -}}{{ .Values.kafka.bootstrap }}{{- end -}}
{{- end }}

{{- define "aibroker.redisUrl" -}}
{{- if .Values.redis.deploy -}}redis://{{ .Release.Name }}-redis:6379/0{{- else -}}{{ .Values.redis.url }}{{- end -}}
{{- end }}

{{/* A pool's engine, as its dispatch topic and consumer group name it (aibroker/routes.py). */}}
{{- define "aibroker.engine" -}}
{{- get (dict "embeddings" "embed" "ocr" "ocr" "vllm" "vllm") . -}}
{{- end }}

{{/* The `aibroker` arguments of a service: its own, or its pool's. */}}
{{- define "aibroker.args" -}}
{{- if .pool -}}
{{- if eq .pool.kind "external" -}}
{{ list "consumer" "external" | toJson }}
{{- else -}}
{{ list "consumer" .pool.kind "--model" .pool.model | toJson }}
{{- end -}}
{{- else -}}
{{ .args | toJson }}
{{- end -}}
{{- end }}

{{/* Every dispatch topic, without the prefix: one per external provider, one per local model
     (TopicNames.dispatch / dispatch_local). A JSON list. */}}
{{- define "aibroker.dispatchTopics" -}}
{{- $topics := list -}}
{{- if include "aibroker.openaiEnabled" . -}}
{{- $topics = append $topics "dispatch.openai" -}}
{{- end -}}
{{- range $name, $_ := .Values.providers.extra -}}
{{- $topics = append $topics (printf "dispatch.%s" $name) -}}
{{- end -}}
{{- range $kind, $models := .Values.localModels -}}
{{- range $name, $_ := $models -}}
{{- $topics = append $topics (printf "dispatch.%s.%s" (include "aibroker.engine" $kind) (lower $name)) -}}
{{- end -}}
{{- end -}}
{{ $topics | toJson }}
{{- end }}

{{/* "true" when the `openai` provider is on: a base URL, and a key in the values or in
     `providers.existingSecret` (as AIBROKER_OPENAI_API_KEY). */}}
{{- define "aibroker.openaiEnabled" -}}
{{- with .Values.providers -}}
{{- if and .openai.baseUrl (or .openai.apiKey .existingSecret) -}}true{{- end -}}
{{- end -}}
{{- end }}

{{/* The environment variable that carries the key of `providers.extra` entry NAME from
     `providers.existingSecret` (Kubernetes expands `$(VAR)` in AIBROKER_PROVIDERS with it). */}}
{{- define "aibroker.keyVar" -}}
AIB_PROVIDER_KEY_{{ . | upper | replace "-" "_" | replace "." "_" }}
{{- end }}

{{/* AIBROKER_PROVIDERS as JSON, from the `providers.extra` map. An entry's `apiKeyFrom` (a key
     of `providers.existingSecret`) becomes `$(AIB_PROVIDER_KEY_<NAME>)`; with `redact`, every
     key is a placeholder (the topics Job needs the names only). */}}
{{- define "aibroker.providersJson" -}}
{{- $out := dict -}}
{{- range $name, $provider := .root.Values.providers.extra -}}
{{- $entry := omit $provider "apiKeyFrom" -}}
{{- if $.redact -}}
{{- $_ := set $entry "api_key" "unused-for-topics" -}}
{{- else if $provider.apiKeyFrom -}}
{{- $_ := set $entry "api_key" (printf "$(%s)" (include "aibroker.keyVar" $name)) -}}
{{- end -}}
{{- $_ := set $out $name $entry -}}
{{- end -}}
{{ $out | toJson }}
{{- end }}

{{/* Whether every `providers.extra` key comes from `providers.existingSecret` ("true"), so
     AIBROKER_PROVIDERS holds no secret and goes in the pods' env; otherwise it is kept in the
     release's Secret. Mixing the two is refused. */}}
{{- define "aibroker.providersFromSecret" -}}
{{- $from := 0 -}}
{{- $inline := 0 -}}
{{- range $name, $provider := .Values.providers.extra -}}
{{- if $provider.apiKeyFrom -}}
{{- if not $.Values.providers.existingSecret -}}
{{- fail (printf "providers.extra.%s.apiKeyFrom needs providers.existingSecret" $name) -}}
{{- end -}}
{{- $from = add1 $from -}}
{{- else -}}
{{- $inline = add1 $inline -}}
{{- end -}}
{{- end -}}
{{- if and $from $inline -}}
{{- fail "providers.extra: give every api_key inline or every one by apiKeyFrom, not both" -}}
{{- end -}}
{{- if $from -}}true{{- end -}}
{{- end }}

{{/* The provider variables that do not live in the release's Secret: the `apiKeyFrom` keys
     of `providers.existingSecret`, then AIBROKER_PROVIDERS that refers to them. */}}
{{- define "aibroker.providersEnv" -}}
{{- if include "aibroker.providersFromSecret" . }}
{{- range $name, $provider := .Values.providers.extra }}
- name: {{ include "aibroker.keyVar" $name }}
  valueFrom:
    secretKeyRef: {name: {{ $.Values.providers.existingSecret | quote }}, key: {{ $provider.apiKeyFrom | quote }}}
{{- end }}
- name: AIBROKER_PROVIDERS
  value: {{ include "aibroker.providersJson" (dict "root" .) | quote }}
{{- end }}
{{- end }}

{{/* Rolls the pods when what the release's Secret is made of changes (the Secret is read at
     start only). A hash of the values behind it, not of the Secret: a generated envelope
     secret would change it on every `helm template`. */}}
{{- define "aibroker.configChecksum" -}}
{{- list .Values.providers .Values.auth | toJson | sha256sum -}}
{{- end }}

{{- define "aibroker.env" -}}
- name: AIBROKER_KAFKA_BOOTSTRAP
  value: {{ include "aibroker.bootstrap" . | quote }}
- name: AIBROKER_KAFKA_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: AIBROKER_KAFKA_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: AIBROKER_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: AIBROKER_KAFKA_MAX_MESSAGE_BYTES
  value: {{ .Values.kafka.maxMessageBytes | int | quote }}
{{- with .Values.kafka.security }}
- name: AIBROKER_KAFKA_SECURITY_PROTOCOL
  value: {{ .protocol | quote }}
{{- if hasPrefix "SASL_" .protocol }}
- name: AIBROKER_KAFKA_SASL_MECHANISM
  value: {{ .saslMechanism | quote }}
- name: AIBROKER_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ .saslSecret | quote }}, key: {{ .usernameKey | quote }}}
- name: AIBROKER_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .saslSecret | quote }}, key: {{ .passwordKey | quote }}}
{{- end }}
{{- if .caSecret }}
- name: AIBROKER_KAFKA_SSL_CAFILE
  value: /etc/aibroker/kafka-ca/{{ .caKey }}
{{- end }}
{{- if .clientCertSecret }}
- name: AIBROKER_KAFKA_SSL_CERTFILE
  value: /etc/aibroker/kafka-client/{{ .clientCertKey }}
- name: AIBROKER_KAFKA_SSL_KEYFILE
  value: /etc/aibroker/kafka-client/{{ .clientKeyKey }}
{{- end }}
{{- end }}
- name: AIBROKER_REDIS_URL
  value: {{ include "aibroker.redisUrl" . | quote }}
- name: AIBROKER_AUTH_REQUIRE_SIGNED_ENVELOPES
  value: {{ .Values.auth.requireSignedEnvelopes | quote }}
{{- with .Values.auth.jwtIssuers }}
- name: AIBROKER_AUTH_JWT_ISSUERS
  value: {{ . | toJson | quote }}
{{- end }}
{{- with .Values.auth.corsOrigins }}
- name: AIBROKER_INGRESS_CORS_ORIGINS
  value: {{ . | toJson | quote }}
{{- end }}
- name: AIBROKER_BATCH_FILES_DIR
  value: /var/lib/aibroker/files
{{- with .Values.files.s3Bucket }}
- name: AIBROKER_BATCH_S3_BUCKET
  value: {{ . | quote }}
{{- end }}
{{- with .Values.files.s3EndpointUrl }}
- name: AIBROKER_BATCH_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: AIBROKER_EMBEDDINGS_MODELS
  value: {{ .Values.localModels.embeddings | default dict | toJson | quote }}
- name: AIBROKER_OCR_MODELS
  value: {{ .Values.localModels.ocr | default dict | toJson | quote }}
- name: AIBROKER_VLLM_MODELS
  value: {{ .Values.localModels.vllm | default dict | toJson | quote }}
- name: AIBROKER_OFFLOAD_POLICY
  value: {{ .Values.offload.policy | quote }}
- name: AIBROKER_OFFLOAD_TENANT_POLICY
  value: {{ .Values.offload.tenantPolicy | default dict | toJson | quote }}
- name: AIBROKER_OFFLOAD_ALIAS_POLICY
  value: {{ .Values.offload.aliasPolicy | default dict | toJson | quote }}
- name: AIBROKER_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
- name: AIBROKER_METRICS_HOST
  value: "0.0.0.0"
{{- with .Values.vectors.qdrantUrl }}
- name: AIBROKER_EMBEDDINGS_QDRANT_URL
  value: {{ . | quote }}
- name: AIBROKER_RAG_QDRANT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.otel.endpoint }}
- name: AIBROKER_OTEL_ENDPOINT
  value: {{ . | quote }}
- name: AIBROKER_OTEL_SAMPLE_RATIO
  value: {{ $.Values.otel.sampleRatio | quote }}
{{- end }}
{{- end }}

{{/* The Kafka CA and client certificate, from their Secrets (Strimzi's cluster CA secret and a
KafkaUser's secret fit as they are). */}}
{{- define "aibroker.kafkaVolumes" -}}
{{- with .Values.kafka.security }}
{{- if .caSecret }}
- name: kafka-ca
  secret: {secretName: {{ .caSecret | quote }}}
{{- end }}
{{- if .clientCertSecret }}
- name: kafka-client
  secret: {secretName: {{ .clientCertSecret | quote }}}
{{- end }}
{{- end }}
{{- end }}

{{- define "aibroker.kafkaMounts" -}}
{{- with .Values.kafka.security }}
{{- if .caSecret }}
- {name: kafka-ca, mountPath: /etc/aibroker/kafka-ca, readOnly: true}
{{- end }}
{{- if .clientCertSecret }}
- {name: kafka-client, mountPath: /etc/aibroker/kafka-client, readOnly: true}
{{- end }}
{{- end }}
{{- end }}

{{/* Uploaded files and batch outputs (AIBROKER_BATCH_FILES_DIR): `files.existingClaim` (a
     ReadWriteMany volume every ingress and batch runner shares), else a pod's own emptyDir
     (one replica only; or set `files.s3Bucket`). */}}
{{- define "aibroker.filesVolume" -}}
- name: files
  {{- if .Values.files.existingClaim }}
  persistentVolumeClaim: {claimName: {{ .Values.files.existingClaim | quote }}}
  {{- else }}
  emptyDir: {}
  {{- end }}
{{- end }}

{{/* The envelope secret: the value given, else the one this release's Secret holds, else new. */}}
{{- define "aibroker.envelopeSecret" -}}
{{- if .Values.auth.envelopeSecret -}}
{{- .Values.auth.envelopeSecret -}}
{{- else -}}
{{- $found := lookup "v1" "Secret" .Release.Namespace (printf "%s-providers" .Release.Name) -}}
{{- if and $found $found.data (hasKey $found.data "AIBROKER_AUTH_ENVELOPE_SECRET") -}}
{{- index $found.data "AIBROKER_AUTH_ENVELOPE_SECRET" | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}
{{- end -}}
