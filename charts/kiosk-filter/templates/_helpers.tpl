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
{{- if not (or $auth.brokerPrincipals $auth.brokerClusters) -}}{{- fail "kafkaAuth.brokerPrincipals (or brokerClusters) must name the brokers: the filter sends the credential to no other upstream" -}}{{- end -}}
{{- $upstreams := dict "principals" ($auth.brokerPrincipals | default list) -}}
{{- with $auth.brokerClusters -}}{{- $_ := set $upstreams "clusters" . -}}{{- end -}}
{{- $_ := set $cfg "kafka_auth" (dict "mechanism" $auth.mechanism "username_env" $auth.usernameEnv "password_env" $auth.passwordEnv "upstreams" $upstreams) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The vmConfig of EVERY WasmPlugin of this chart's module (the Kafka one and the MongoDB one):
     the union of the environment variables any of them reads, each from the istio-proxy
     container's environment (valueFrom: HOST). Today that is the Kafka credential of kafkaAuth
     (the chart has no MongoDB SCRAM: mongodb.auth is MONGODB-X509 or none, which read no
     variable); a variable a later plugin reads joins this list, never one plugin's own.
     Why one list for all (docs/wasm-vms.md): Envoy keys a Wasm VM by its vm_id, its VM
     configuration and its code, not by its environment, and Istio sets no vm_id, so on a pod
     both plugins select (Kafka Connect, the verifier) the two plugins share one VM, created
     with the env of whichever plugin Envoy happens to create first; istiod sends them in no
     fixed order. With identical vmConfigs the order cannot matter. One plugin per protocol is
     kept (rather than one plugin serving both): each keeps its own port match and its own
     plain pluginConfig, and a platform selects Kafka clients and MongoDB clients separately.
     Empty when no plugin reads a variable (kafkaAuth.mechanism none): no vmConfig at all. */}}
{{- define "kiosk-filter.vmConfig" -}}
{{- $env := list -}}
{{- $auth := .Values.kafkaAuth -}}
{{- if ne $auth.mechanism "none" -}}
{{- $env = append $env (dict "name" $auth.usernameEnv "valueFrom" "HOST") -}}
{{- $env = append $env (dict "name" $auth.passwordEnv "valueFrom" "HOST") -}}
{{- end -}}
{{- if $env -}}
{{- toYaml (dict "env" $env) -}}
{{- end -}}
{{- end -}}
