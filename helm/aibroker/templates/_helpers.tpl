{{- define "aibroker.labels" -}}
app.kubernetes.io/name: aibroker
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "aibroker.env" -}}
- name: AIBROKER_KAFKA_BOOTSTRAP
  value: {{ .Values.kafka.bootstrap | quote }}
- name: AIBROKER_KAFKA_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: AIBROKER_KAFKA_PARTITIONS
  value: {{ .Values.kafka.partitions | quote }}
- name: AIBROKER_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
- name: AIBROKER_REDIS_URL
  value: {{ .Values.redis.url | quote }}
- name: AIBROKER_EMBEDDINGS_MODELS
  value: {{ .Values.localModels.embeddings | quote }}
- name: AIBROKER_OCR_MODELS
  value: {{ .Values.localModels.ocr | quote }}
- name: AIBROKER_VLLM_MODELS
  value: {{ .Values.localModels.vllm | quote }}
{{- end }}
