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
- name: AIBROKER_REDIS_URL
  value: {{ include "aibroker.redisUrl" . | quote }}
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
