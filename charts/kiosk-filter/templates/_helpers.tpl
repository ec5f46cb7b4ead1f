{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "kiosk-filter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "kiosk-filter.labels" -}}
helm.sh/chart: {{ include "kiosk-filter.chart" . }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The pull policy: as set, else IfNotPresent for a digest and Always for a tag. */}}
{{- define "kiosk-filter.pullPolicy" -}}
{{- if .Values.image.pullPolicy -}}{{ .Values.image.pullPolicy }}
{{- else if .Values.image.digest -}}IfNotPresent
{{- else -}}Always
{{- end -}}
{{- end -}}

{{/* The module's OCI reference, pinned by digest or tag; `latest` and empty tags are refused. */}}
{{- define "kiosk-filter.url" -}}
{{- $img := .Values.image -}}
{{- if $img.digest -}}
{{- if not (hasPrefix "sha256:" $img.digest) -}}{{- fail "image.digest must start with sha256:" -}}{{- end -}}
{{- printf "oci://%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- if or (not $img.tag) (eq (toString $img.tag) "latest") -}}{{- fail "image.tag must be a fixed version (not empty, not latest), or set image.digest" -}}{{- end -}}
{{- printf "oci://%s:%s" $img.repository (toString $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* The filter's configuration: pluginConfig with kafka_auth from kafkaAuth (not from pluginConfig). */}}
{{- define "kiosk-filter.pluginConfig" -}}
{{- $cfg := deepCopy .Values.pluginConfig -}}
{{- if hasKey $cfg "kafka_auth" -}}{{- fail "set kafkaAuth (mechanism, usernameEnv, passwordEnv), not pluginConfig.kafka_auth: the chart renders both pluginConfig.kafka_auth and the WasmPlugin's vmConfig.env from it" -}}{{- end -}}
{{- if or (hasKey $cfg "protocol") (hasKey $cfg "mongodb_auth") -}}{{- fail "set mongodb (enabled, port, selector, auth.mechanism), not pluginConfig.protocol or pluginConfig.mongodb_auth: pluginConfig is the Kafka WasmPlugin's, and the chart renders a second WasmPlugin for MongoDB from mongodb" -}}{{- end -}}
{{- $auth := .Values.kafkaAuth -}}
{{- if ne $auth.mechanism "none" -}}
{{- if eq $auth.usernameEnv $auth.passwordEnv -}}{{- fail "kafkaAuth.usernameEnv and kafkaAuth.passwordEnv must differ" -}}{{- end -}}
{{- $_ := set $cfg "kafka_auth" (dict "mechanism" $auth.mechanism "username_env" $auth.usernameEnv "password_env" $auth.passwordEnv) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
