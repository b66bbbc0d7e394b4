{{/* Chart name. */}}
{{- define "gdask.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified release name (<release>-gdask unless the release already contains it). */}}
{{- define "gdask.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "gdask.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels selecting every pod of this release (used by the NetworkPolicy). */}}
{{- define "gdask.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gdask.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gdask.labels" -}}
helm.sh/chart: {{ include "gdask.chart" . }}
{{ include "gdask.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gdask
{{- end -}}

{{- define "gdask.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository .Values.image.tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{- define "gdask.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "gdask.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Plain TCP only on request: without tls.enabled the scheduler, workers and
coordinator talk unencrypted and unauthenticated, acceptable only inside one
trusted namespace. Rendering fails unless tls.allowPlainTCP acknowledges that.
*/}}
{{- define "gdask.requireTLS" -}}
{{- if and (not .Values.tls.enabled) (not .Values.tls.allowPlainTCP) -}}
{{- fail "tls.enabled is false: the cluster would run plain, unauthenticated TCP. Set tls.enabled=true (tls.secretName or tls.certManager.enabled; docs/deployment.md), or tls.allowPlainTCP=true to acknowledge plain TCP inside one trusted namespace" -}}
{{- end -}}
{{- end -}}

{{- define "gdask.protocol" -}}
{{- if .Values.tls.enabled -}}tls{{- else -}}tcp{{- end -}}
{{- end -}}

{{/* The scheduler's in-cluster address (ClusterIP Service). */}}
{{- define "gdask.schedulerAddress" -}}
{{- printf "%s://%s-scheduler:8786" (include "gdask.protocol" .) (include "gdask.fullname" .) -}}
{{- end -}}

{{- define "gdask.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "gdask.fullname" .)) .Values.tls.secretName -}}
{{- end -}}

{{- define "gdask.storesClaim" -}}
{{- default (printf "%s-stores" (include "gdask.fullname" .)) .Values.stores.existingClaim -}}
{{- end -}}

{{/* dask scheduler/worker TLS flags. */}}
{{- define "gdask.tlsArgs" -}}
{{- if .Values.tls.enabled -}}
- --tls-ca-file
- /etc/gdask/tls/ca.crt
- --tls-cert
- /etc/gdask/tls/tls.crt
- --tls-key
- /etc/gdask/tls/tls.key
{{- end }}
{{- end -}}

{{/* Environment shared by all containers. */}}
{{- define "gdask.env" -}}
- name: DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION
  value: {{ ternary "True" "False" .Values.tls.enabled | quote }}
{{- if .Values.tls.enabled }}
- name: GDASK_TLS_CA
  value: /etc/gdask/tls/ca.crt
- name: GDASK_TLS_CERT
  value: /etc/gdask/tls/tls.crt
- name: GDASK_TLS_KEY
  value: /etc/gdask/tls/tls.key
{{- end }}
{{- end -}}

{{- define "gdask.tlsVolumeMount" -}}
{{- if .Values.tls.enabled -}}
- name: tls
  mountPath: /etc/gdask/tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "gdask.tlsVolume" -}}
{{- if .Values.tls.enabled -}}
- name: tls
  secret:
    secretName: {{ include "gdask.tlsSecretName" . }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "gdask.podSpecCommon" -}}
serviceAccountName: {{ include "gdask.serviceAccountName" . }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
