{{/* Prefix of the chart's own objects: fullnameOverride, else the release name. */}}
{{- define "tkim.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "tkim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "tkim.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tkim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kiosk
{{- end -}}

{{/* Selector labels of one component: (dict "ctx" $ "component" "mirror"). */}}
{{- define "tkim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tkim.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The labels that name a pod's workload and app to Istio, Kiali and the kiosk filter:
     (dict "name" "kiosk-mirror" "fixedPodNames" false). Istio takes the canonical service (its app,
     which Kiali's app graph groups by) from service.istio.io/canonical-name, else
     app.kubernetes.io/name, else app (istio/istio pkg/kube/labels/labels.go), and the chart's selector
     labels carry app.kubernetes.io/name = the chart's name on every pod: without canonical-name
     every pod of the chart would be one app. The kiosk filter reports `app`. Pods whose names
     are not generated (Strimzi's StrimziPodSets: kiosk-connect-0) would report the pod name as
     their workload (pkg/kube/util.go, GetDeployMetaFromPod): service.istio.io/workload-name
     overrides it. */}}
{{- define "tkim.istioLabels" -}}
app: {{ .name }}
service.istio.io/canonical-name: {{ .name }}
{{- if .fixedPodNames }}
service.istio.io/workload-name: {{ .name }}
{{- end }}
{{- end -}}

{{/* A pinned image reference: (dict "image" .Values.images.kiosk "what" "images.kiosk"). */}}
{{- define "tkim.image" -}}
{{- $img := .image -}}
{{- if $img.digest -}}
{{- if not (hasPrefix "sha256:" $img.digest) -}}{{- fail (printf "%s.digest must start with sha256:" .what) -}}{{- end -}}
{{- printf "%s@%s" $img.repository $img.digest -}}
{{- else -}}
{{- if or (not $img.tag) (eq (toString $img.tag) "latest") -}}{{- fail (printf "%s.tag must be a fixed version (not empty, not latest), or set %s.digest" .what .what) -}}{{- end -}}
{{- printf "%s:%s" $img.repository (toString $img.tag) -}}
{{- end -}}
{{- end -}}

{{/* KafkaUser name of a service. */}}
{{- define "tkim.kafkaUser" -}}
{{- printf "%s%s" .ctx.Values.kafka.userPrefix .service -}}
{{- end -}}

{{/* The bootstrap servers the Kafka clients dial: the plain listener (SASL performed by the
     filter), or the TLS listener (TLS client identity: the sidecar originates Kafka's TLS). */}}
{{- define "tkim.bootstrapServers" -}}
{{- if eq .Values.kafka.authentication "tls" -}}{{ .Values.kafka.tlsBootstrapServers }}{{- else -}}{{ .Values.kafka.bootstrapServers }}{{- end -}}
{{- end -}}

{{/* Environment of a kiosk service that talks to Kafka: where Kafka is, and nothing else. The
     application holds no Kafka credential and no TLS setting (docs/kafka-credentials.md): its
     sidecar authenticates the connection as the pod's KafkaUser. (dict "ctx" $) */}}
{{- define "tkim.kafkaEnv" -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ include "tkim.bootstrapServers" .ctx | quote }}
{{- end -}}

{{/* The transactional.id of a service writing in Kafka transactions (`kiosk mirror`): the given
     prefix followed by the pod's name, KIOSK_TRANSACTIONAL_ID=<prefix>$(POD_NAME) (the kubelet
     expands $(POD_NAME), defined just before). Stable across the pod's restarts, distinct between
     replicas: two producers with one id would fence each other (docs/exactly-once.md). Its
     KafkaUser may Write and Describe transactional ids with that prefix (kafka-users.yaml).
     Argument: the prefix. */}}
{{- define "tkim.transactionalIdEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: KIOSK_TRANSACTIONAL_ID
  value: {{ printf "%s$(POD_NAME)" . | quote }}
{{- end -}}

{{/* Readiness by progress (services/src/health.rs; docs/exactly-once.md, "Probes"). A service
     that reports its progress touches a health file; `kiosk-services health --file F --max-age S`,
     run by the kubelet in the container, fails once F is missing or older than S. The file lives
     on the emptyDir `health` (the containers' root filesystem is read-only), in memory: a touch
     never waits on a slow disk. The probes exec the image's binary, the ENTRYPOINT of
     docker/kiosk.Dockerfile (exec probes do not go through the ENTRYPOINT).
     tkim.healthFile, tkim.healthEnv, tkim.healthVolumeMount: argument the component ("mirror"). */}}
{{- define "tkim.healthDir" -}}
/var/run/kiosk/health
{{- end -}}

{{- define "tkim.healthFile" -}}
{{ include "tkim.healthDir" . }}/{{ . }}
{{- end -}}

{{- define "tkim.healthEnv" -}}
- name: KIOSK_HEALTH_FILE
  value: {{ include "tkim.healthFile" . | quote }}
{{- end -}}

{{- define "tkim.healthVolumeMount" -}}
- name: health
  mountPath: {{ include "tkim.healthDir" . }}
{{- end -}}

{{- define "tkim.healthVolume" -}}
- name: health
  emptyDir:
    medium: Memory
    sizeLimit: 1Mi
{{- end -}}

{{/* One exec probe on the component's health file: (dict "component" "mirror" "maxAge" 30
     "probe" (dict "periodSeconds" 10 "failureThreshold" 3)). */}}
{{- define "tkim.healthProbe" -}}
exec:
  command:
    - /usr/local/bin/kiosk-services
    - health
    - --file
    - {{ include "tkim.healthFile" .component }}
    - --max-age
    - {{ .maxAge | quote }}
periodSeconds: {{ .probe.periodSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}

{{/* The container's startup, readiness and liveness probes, all on its health file:
     (dict "component" "mirror" "health" .Values.mirror.health "values" "mirror"). The startup probe runs the
     readiness command; liveness allows the file a much greater age than readiness (a mirror
     not ready for a while is left to retry; one stuck for minutes is restarted). */}}
{{- define "tkim.healthProbes" -}}
{{- $h := .health -}}
{{- if le (int $h.liveness.maxAgeSeconds) (int $h.readiness.maxAgeSeconds) -}}
{{- fail (printf "%s.health.liveness.maxAgeSeconds (%v) must exceed readiness.maxAgeSeconds (%v): the kubelet would restart the %s before calling it not ready" (.values | default .component) $h.liveness.maxAgeSeconds $h.readiness.maxAgeSeconds .component) -}}
{{- end -}}
startupProbe:
  {{- include "tkim.healthProbe" (dict "component" .component "maxAge" $h.readiness.maxAgeSeconds "probe" $h.startup) | nindent 2 }}
readinessProbe:
  {{- include "tkim.healthProbe" (dict "component" .component "maxAge" $h.readiness.maxAgeSeconds "probe" $h.readiness) | nindent 2 }}
livenessProbe:
  {{- include "tkim.healthProbe" (dict "component" .component "maxAge" $h.liveness.maxAgeSeconds "probe" $h.liveness) | nindent 2 }}
{{- end -}}

{{/* The pod label naming the KafkaUser the pod's sidecar authenticates as: the
     DestinationRule of TLS client identity selects on it, and Istio's injection template
     kiosk-kafka-credentials reads it (Strimzi's pods). (dict "ctx" $ "service" "mirror") */}}
{{- define "tkim.kafkaUserLabel" -}}
kiosk.io/kafka-user: {{ include "tkim.kafkaUser" . }}
{{- end -}}

{{/* With SASL performed by the filter: a container named istio-proxy, which Istio merges into
     the sidecar it injects (image `auto`: the injector's), with the environment the kiosk
     WasmPlugin's vmConfig.env reads (valueFrom: HOST): the KafkaUser's name, and its password
     from the Secret the User Operator writes (expanded by the kubelet into the sidecar only;
     the application's containers never see it). Nothing with TLS client identity. One list
     item, or nothing. (dict "ctx" $ "service" "mirror") */}}
{{- define "tkim.kafkaProxy" -}}
{{- if ne .ctx.Values.kafka.authentication "tls" -}}
{{- $user := include "tkim.kafkaUser" . -}}
- name: istio-proxy
  image: auto
  env:
    - name: KIOSK_KAFKA_USERNAME
      value: {{ $user | quote }}
    - name: KIOSK_KAFKA_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ $user }}
          key: password
{{- end -}}
{{- end -}}

{{/* With SASL performed by the filter, for pods whose spec is Strimzi's (no container can be
     added): Istio's injection template kiosk-kafka-credentials (istio/helm/istiod-values.yaml)
     gives the injected istio-proxy the same environment as tkim.kafkaProxy, from the pod's
     kiosk.io/kafka-user label. Templates run in the order named, `sidecar` first. */}}
{{- define "tkim.kafkaCredentialsTemplate" -}}
inject.istio.io/templates: sidecar,kiosk-kafka-credentials
{{- end -}}

{{/* The service account of a Kafka client the chart runs: one per workload, so that TLS
     client identity can let just these sidecars read their certificate (istiod asks whether
     the sidecar's service account may list secrets), and no API token in the pod (the sidecar
     uses its own projected istio-token), so the application cannot use that permission. */}}
{{- define "tkim.serviceAccount" -}}
{{- printf "%s-%s" (include "tkim.fullname" .ctx) .component -}}
{{- end -}}

{{/* The MongoDB Secret (key `uri`, which holds no credential: docs/mongodb-credentials.md) and service. */}}
{{- define "tkim.mongoSecret" -}}
{{- printf "%s-mongodb" (include "tkim.fullname" .) -}}
{{- end -}}
{{- define "tkim.mongoService" -}}
{{- printf "%s-mongodb" (include "tkim.fullname" .) -}}
{{- end -}}
{{/* The MongoDB service's name in the cluster: what the apps dial, the server certificate's
     name, the clients' DestinationRules' host and SNI. */}}
{{- define "tkim.mongoHost" -}}
{{- printf "%s.%s.svc.cluster.local" (include "tkim.mongoService" .) .Release.Namespace -}}
{{- end -}}
{{/* The URI every MongoDB client gets: where MongoDB is, and nothing else. No user, no
     password, no TLS option: the client's sidecar originates TLS with the workload's
     certificate and the kiosk filter authenticates the connection with it (MONGODB-X509). */}}
{{- define "tkim.mongoUri" -}}
{{- printf "mongodb://%s:%v/?directConnection=true" (include "tkim.mongoHost" .) .Values.mongodb.port -}}
{{- end -}}

{{/* MONGODB_URI from the Secret. */}}
{{- define "tkim.mongoEnv" -}}
- name: MONGODB_URI
  valueFrom:
    secretKeyRef:
      name: {{ include "tkim.mongoSecret" . }}
      key: uri
{{- end -}}

{{/* The MongoDB client workloads of the release, by Istio workload name: the sink (Kafka
     Connect's pods, or `kiosk mongo-sink`) and the helm test's Jobs (the producer empties the
     collection first, the verifier reads it). Each has a client certificate (Secret
     <workload>-mongodb-tls), an X.509 user named by its subject, and a DestinationRule. A JSON
     list. */}}
{{- define "tkim.mongoClients" -}}
{{- $fullname := include "tkim.fullname" . -}}
{{- list (include "tkim.sinkWorkload" .) (printf "%s-test-producer" $fullname) (printf "%s-test-verify" $fullname) | toJson -}}
{{- end -}}
{{/* A MongoDB client's certificate Secret: (dict "ctx" $ "workload" "kiosk-connect"). */}}
{{- define "tkim.mongoClientSecret" -}}
{{- printf "%s-mongodb-tls" .workload -}}
{{- end -}}
{{/* A MongoDB client's certificate subject, RFC 2253 as MongoDB names the X.509 user
     (openssl x509 -subject -nameopt RFC2253): CN the workload, OU the namespace, O the
     clients' organisation. (dict "ctx" $ "workload" "kiosk-connect") */}}
{{- define "tkim.mongoClientDN" -}}
{{- printf "CN=%s,OU=%s,O=%s" .workload .ctx.Release.Namespace .ctx.Values.mongodb.tls.clientOrganization -}}
{{- end -}}
{{/* The labels of a MongoDB client's pods: the one the kiosk-filter chart's MongoDB
     WasmPlugin selects, and the workload whose certificate its sidecar presents (the
     DestinationRule's workloadSelector). (dict "ctx" $ "workload" "kiosk-connect") */}}
{{- define "tkim.mongoClientLabels" -}}
{{ toYaml .ctx.Values.mongodbClientLabels }}
kiosk.io/mongodb-user: {{ .workload }}
{{- end -}}
{{/* Istio's injection templates for a pod Strimzi writes (no container can be added): the
     Kafka credential (SASL performed by the filter) and the MongoDB client certificate
     mounted into the sidecar only. Templates run in the order named, `sidecar` first. */}}
{{- define "tkim.strimziInjectTemplates" -}}
inject.istio.io/templates: {{ if ne .Values.kafka.authentication "tls" }}sidecar,kiosk-kafka-credentials,kiosk-mongodb-client-tls{{ else }}sidecar,kiosk-mongodb-client-tls{{ end }}
{{- end -}}

{{/* Workload (Kiali node) names. */}}
{{- define "tkim.restWorkload" -}}
{{- if eq .Values.rest.implementation "bridge" -}}{{ printf "%s-bridge" .Values.rest.bridgeName }}{{- else -}}{{ printf "%s-rest" (include "tkim.fullname" .) }}{{- end -}}
{{- end -}}
{{- define "tkim.restService" -}}
{{- if eq .Values.rest.implementation "bridge" -}}{{ printf "%s-bridge-service" .Values.rest.bridgeName }}{{- else -}}{{ printf "%s-rest" (include "tkim.fullname" .) }}{{- end -}}
{{- end -}}
{{- define "tkim.sinkWorkload" -}}
{{- if eq .Values.sink.implementation "connect" -}}{{ printf "%s-connect" .Values.sink.connect.name }}{{- else -}}{{ printf "%s-mongo-sink" (include "tkim.fullname" .) }}{{- end -}}
{{- end -}}

{{/* Where the producer posts. */}}
{{- define "tkim.producerUrl" -}}
{{- if .Values.test.producerUrl -}}{{ .Values.test.producerUrl }}
{{- else if .Values.rest.gateway.enabled -}}{{ .Values.rest.gateway.url }}
{{- else -}}{{ printf "http://%s.%s.svc.cluster.local:%v" (include "tkim.restService" .) .Release.Namespace .Values.rest.port }}
{{- end -}}
{{- end -}}

{{/* Keycloak, the identity provider the ingress gateway trusts (keycloak-*.yaml): its
     Deployment's and Service's name, the host of its URL (rest.gateway.jwt.keycloak.name, as
     istio/request-authentication-rest-ingress-jwt.yaml and the local mesh name it). */}}
{{- define "tkim.keycloakName" -}}
{{- .Values.rest.gateway.jwt.keycloak.name -}}
{{- end -}}
{{/* The realm file Keycloak imports (files/keycloak/realm-kiosk.json; at its first start with
     the data claim, at each start on the emptyDir), the one source of the realm: the chart's
     ConfigMap holds it as is, and the local mesh reads the same file. */}}
{{- define "tkim.realmFile" -}}
files/keycloak/realm-kiosk.json
{{- end -}}
{{/* The realm's name, read from the realm file. */}}
{{- define "tkim.realmName" -}}
{{- $realm := fromJson (.Files.Get (include "tkim.realmFile" .)) -}}
{{- if not $realm.realm -}}{{- fail (printf "%s: no realm name (`realm`)" (include "tkim.realmFile" .)) -}}{{- end -}}
{{- $realm.realm -}}
{{- end -}}
{{/* Keycloak's origin, as every pod reaches it and as it pins its URLs (--hostname): the
     issuer, the JWKS and the token endpoint are under it whatever Host a request carries. */}}
{{- define "tkim.keycloakOrigin" -}}
{{- printf "http://%s.%s.svc.cluster.local:%v" (include "tkim.keycloakName" .) .Release.Namespace .Values.rest.gateway.jwt.keycloak.port -}}
{{- end -}}
{{/* The issuer: the realm's URL, the JWT `iss`. Its JWKS is <issuer>/protocol/openid-connect/certs,
     its token endpoint <issuer>/protocol/openid-connect/token. */}}
{{- define "tkim.issuerUrl" -}}
{{- printf "%s/realms/%s" (include "tkim.keycloakOrigin" .) (include "tkim.realmName" .) -}}
{{- end -}}
{{/* The Secret Keycloak's credentials live in, made once and kept (keycloak-secret.yaml). */}}
{{- define "tkim.keycloakSecretName" -}}
{{- include "tkim.keycloakName" . -}}
{{- end -}}
{{/* Its data: the producer's client secret (key producer-client-secret: env
     KIOSK_PRODUCER_SECRET of Keycloak, which the realm file's ${KIOSK_PRODUCER_SECRET} takes at
     import; the producer's mounted file) and the bootstrap admin's (admin-username,
     admin-password: the master realm's admin, for the admin API, e.g. a key rotation). As a JSON
     object: the kept Secret's values (lookup), else new random ones, made once per rendering
     (memoised in .Values._keycloakSecret) so that keycloak-secret.yaml and the Deployment's
     checksum see the same values. */}}
{{- define "tkim.keycloakSecretData" -}}
{{- if not (hasKey .Values "_keycloakSecret") -}}
{{- $data := dict "admin-username" "admin" "admin-password" (randAlphaNum 32) "producer-client-secret" (randAlphaNum 40) -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "tkim.keycloakSecretName" .) -}}
{{- if $existing -}}
{{- range $k, $v := ($existing.data | default dict) -}}
{{- $_ := set $data $k ($v | b64dec) -}}
{{- end -}}
{{- end -}}
{{- $_ := set .Values "_keycloakSecret" $data -}}
{{- end -}}
{{- toJson (get .Values "_keycloakSecret") -}}
{{- end -}}

{{/* The graph edges the test requires, one "from -> to" per line. */}}
{{- define "tkim.expectedEdges" -}}
{{- $ns := .Release.Namespace -}}
{{- $tns := .Values.kafka.topicNamespace -}}
{{- $rest := include "tkim.restWorkload" . -}}
{{- $sink := include "tkim.sinkWorkload" . -}}
{{- $mirror := printf "%s-mirror" (include "tkim.fullname" .) -}}
*/* -> {{ $ns }}/{{ $rest }}
{{ $ns }}/{{ $rest }} -> {{ $tns }}/{{ .Values.topics.events.topicName }}
{{ $tns }}/{{ .Values.topics.events.topicName }} -> {{ $ns }}/{{ $mirror }}
{{ $ns }}/{{ $mirror }} -> {{ $tns }}/{{ .Values.topics.mirror.topicName }}
{{ $tns }}/{{ .Values.topics.mirror.topicName }} -> {{ $ns }}/{{ $sink }}
{{ $ns }}/{{ $sink }} -> {{ $ns }}/{{ include "tkim.mongoService" . }}
{{- range .Values.test.kiali.extraEdges }}
{{ . }}
{{- end }}
{{- end -}}

{{/* Where a MongoDB client's sidecar finds its certificate when it cannot be given the Secret
     by name (Kafka Connect: see mongodb-client-destination-rule-sink.yaml): the directory Istio's
     injection template kiosk-mongodb-client-tls (istio/helm/istiod-values.yaml) mounts the
     workload's Secret at, in the istio-proxy container only. */}}
{{- define "tkim.mongoSidecarCertDir" -}}
/etc/kiosk/mongodb-tls
{{- end -}}

{{/* The DestinationRule by which a MongoDB client's sidecar originates TLS to mongod with the
     workload's certificate: (dict "ctx" $ "workload" "kiosk-connect" "files" false). MUTUAL on
     MongoDB's port of its Service; SNI and the name checked are the Service's, which the server
     certificate carries (for TCP Istio sets no SNI and checks no name unless told). `files`
     false: credentialName, the workload's Secret, which istiod serves to the sidecar (only
     with a workloadSelector, and only to a sidecar whose service account may list secrets in
     its namespace); true: the same Secret as files mounted into the sidecar. The
     workloadSelector ties each certificate to that workload's pods. */}}
{{- define "tkim.mongoDestinationRule" -}}
{{- $ctx := .ctx -}}
{{- $host := include "tkim.mongoHost" $ctx -}}
{{- $dir := include "tkim.mongoSidecarCertDir" $ctx -}}
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: {{ .workload }}-mongodb-tls
  labels:
    {{- include "tkim.labels" $ctx | nindent 4 }}
spec:
  host: {{ $host }}
  workloadSelector:
    matchLabels:
      kiosk.io/mongodb-user: {{ .workload }}
  trafficPolicy:
    portLevelSettings:
      - port:
          number: {{ $ctx.Values.mongodb.port }}
        tls:
          mode: MUTUAL
          {{- if .files }}
          clientCertificate: {{ $dir }}/tls.crt
          privateKey: {{ $dir }}/tls.key
          caCertificates: {{ $dir }}/ca.crt
          {{- else }}
          credentialName: {{ include "tkim.mongoClientSecret" . }}
          {{- end }}
          sni: {{ $host }}
          subjectAltNames:
            - {{ $host }}
{{- end -}}

{{/* The schema registry (docs/schema-registry.md). The URL of its Confluent-compatible API, what
     the services get as SCHEMA_REGISTRY_URL. */}}
{{- define "tkim.schemaRegistryUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%v/apis/ccompat/v7" .Values.schemaRegistry.name .Release.Namespace .Values.schemaRegistry.port -}}
{{- end -}}
{{/* The subject of the events topic's record values (Confluent's TopicNameStrategy). */}}
{{- define "tkim.schemaSubject" -}}
{{- printf "%s-value" .Values.topics.events.topicName -}}
{{- end -}}
{{/* SCHEMA_REGISTRY_URL for a service that reads or writes schemas; nothing when the registry
     is disabled. */}}
{{- define "tkim.schemaRegistryEnv" -}}
{{- if .Values.schemaRegistry.enabled -}}
- name: SCHEMA_REGISTRY_URL
  value: {{ include "tkim.schemaRegistryUrl" . | quote }}
{{- end -}}
{{- end -}}
{{/* An Istio principal (the SPIFFE identity of a service account without spiffe://):
     (dict "ctx" $ "sa" "kiosk-mirror"). */}}
{{- define "tkim.principal" -}}
{{- printf "%s/ns/%s/sa/%s" .ctx.Values.schemaRegistry.trustDomain .ctx.Release.Namespace .sa -}}
{{- end -}}
{{/* Who may register schemas: the producer's service account. The registration Job runs as it
     too (registering is the producer's right, exercised before it produces). */}}
{{- define "tkim.schemaWriterServiceAccount" -}}
{{- include "tkim.serviceAccount" (dict "ctx" . "component" "test-producer") -}}
{{- end -}}
{{/* Who may read schemas, as a JSON list of [service account, workload] pairs: the producer
     (looks up the id it writes), the mirror (resolves each record's id and validates), the
     sink (Kafka Connect's pods, service account <connect>-connect made by Strimzi, or
     `kiosk mongo-sink`) and the verifier. Not the REST entry: it passes the bytes through. */}}
{{- define "tkim.schemaReaders" -}}
{{- $fullname := include "tkim.fullname" . -}}
{{- $sink := list (printf "%s-connect" .Values.sink.connect.name) (include "tkim.sinkWorkload" .) -}}
{{- if eq .Values.sink.implementation "kiosk" -}}
{{- $sink = list (include "tkim.serviceAccount" (dict "ctx" . "component" "mongo-sink")) (include "tkim.sinkWorkload" .) -}}
{{- end -}}
{{- list
      (list (include "tkim.schemaWriterServiceAccount" .) (printf "%s-test-producer" $fullname))
      (list (include "tkim.serviceAccount" (dict "ctx" . "component" "mirror")) (printf "%s-mirror" $fullname))
      $sink
      (list (include "tkim.serviceAccount" (dict "ctx" . "component" "test-verify")) (printf "%s-test-verify" $fullname))
    | toJson -}}
{{- end -}}
