{{- define "aibroker.labels" -}}
app.kubernetes.io/name: aibroker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
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
{{- if and .Values.providers.openai.baseUrl .Values.providers.openai.apiKey -}}
{{- $topics = append $topics "dispatch.openai" -}}
{{- end -}}
{{- with .Values.providers.extra -}}
{{- range $name, $_ := fromJson . -}}
{{- $topics = append $topics (printf "dispatch.%s" $name) -}}
{{- end -}}
{{- end -}}
{{- range $kind, $models := .Values.localModels -}}
{{- with $models -}}
{{- range $name, $_ := fromJson . -}}
{{- $topics = append $topics (printf "dispatch.%s.%s" (include "aibroker.engine" $kind) (lower $name)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{ $topics | toJson }}
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
  value: {{ . | quote }}
{{- end }}
{{- with .Values.auth.corsOrigins }}
- name: AIBROKER_INGRESS_CORS_ORIGINS
  value: {{ . | quote }}
{{- end }}
- name: AIBROKER_EMBEDDINGS_MODELS
  value: {{ .Values.localModels.embeddings | quote }}
- name: AIBROKER_OCR_MODELS
  value: {{ .Values.localModels.ocr | quote }}
- name: AIBROKER_VLLM_MODELS
  value: {{ .Values.localModels.vllm | quote }}
- name: AIBROKER_METRICS_PORT
  value: {{ .Values.metrics.port | quote }}
- name: AIBROKER_METRICS_HOST
  value: "0.0.0.0"
{{- with .Values.vectors.qdrantUrl }}
- name: AIBROKER_EMBEDDINGS_QDRANT_URL
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
{{- if or .caSecret .clientCertSecret }}
volumes:
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
{{- end }}

{{- define "aibroker.kafkaMounts" -}}
{{- with .Values.kafka.security }}
{{- if or .caSecret .clientCertSecret }}
volumeMounts:
  {{- if .caSecret }}
  - {name: kafka-ca, mountPath: /etc/aibroker/kafka-ca, readOnly: true}
  {{- end }}
  {{- if .clientCertSecret }}
  - {name: kafka-client, mountPath: /etc/aibroker/kafka-client, readOnly: true}
  {{- end }}
{{- end }}
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
