"""Offline validation of the Kubernetes bundle (strimzi/, istio/, charts/, kind scripts).

No cluster, no Docker, no network: what can be proven here is proven here.
  1. Every chart is rendered with Helm's own engine (PyPI helm-python-sdk: libhelm_c, no helm
     binary) for its default values and each values file under its ci/, its values are checked
     against values.schema.json, and `helm lint --strict` runs through the same library.
  2. Every rendered object and every file under strimzi/ and istio/ is validated strictly
     (unknown fields are errors): built-in kinds against the Kubernetes JSON schemas of PyPI
     kubernetes-validate, custom resources against the openAPIV3Schema of the pinned CRDs
     (Strimzi 1.2.0, Istio 1.30.3, Kiali 2.29.0) read from $KIOSK_CRDS_DIR, default
     ../shared/crds (never copied into the repository). An object schema with `properties` and
     no x-kubernetes-preserve-unknown-fields is closed, as `kubectl apply --validate=strict`
     (except under allOf/anyOf/oneOf/not, which only validate values of a structural schema).
  3. Cross-object invariants: every topic a service uses has a KafkaTopic and an ACL for that
     service's KafkaUser (groups too); the WasmPlugin selects every Kafka client workload and no
     broker, and is pinned by digest or pulled Always; any two WasmPlugins of one module that may
     select one pod (same namespace or the root one, no label required with two values; no
     selector: every pod) carry the same vmConfig, since they share one Wasm VM there whose
     environment is that of whichever Envoy creates first (docs/wasm-vms.md); extraStatTags cover every label the filter
     emits (filter/contract/metrics.json, generated from the filter's code); pluginConfig has
     only fields the filter knows (filter/contract/plugin-config.schema.json) and names the
     Kiali CR's extension; DestinationRule credentialName Secrets live in the workload's
     namespace; every image is pinned; each plain manifest under strimzi/ and istio/ is applied
     by kind-up.sh or equal to what a chart renders. The REST entry's ingress requires a JWT
     of the Keycloak the chart deploys (issue 30): the gateway's RequestAuthentication names a
     realm Keycloak imports (issuer = its --hostname + /realms/<realm of the realm file>,
     jwksUri that realm's JWKS, audiences what its audience mapper gives with the Deployment's
     environment, a Service port reaching it), its AuthorizationPolicy requires a request
     principal in every rule; Keycloak runs outside the mesh, one pod, ready on the JWKS,
     imports the realm file byte for byte from a ConfigMap at /opt/keycloak/data/import with
     every placeholder without a default set and client secrets from a kept Secret (never
     inlined); the producer's --token-url is the realm's token endpoint, its --client-id a
     confidential client-credentials-only client of the realm whose tokens carry `sub` and an
     audience the gateway accepts, its secret the Secret key Keycloak imports;
     the filter's Grafana dashboard ships in a ConfigMap the Grafana chart's sidecar loads.
     One trace across the Kafka hops (docs/tracing.md): a mesh-wide Telemetry samples every
     request for providers istiod's values define, each `opentelemetry` over gRPC to the
     Service and port of Jaeger's OTLP gRPC receiver in the Jaeger addon kind-up.sh applies (as
     read from Istio 1.30.3's samples/addons/jaeger.yaml); every KafkaBridge has tracing.type
     opentelemetry and exports OTLP gRPC to that same service:port.
     Exactly once (docs/exactly-once.md): the KafkaUser each mirror runs as (a `kiosk mirror`
     container's; in strimzi/ alone, the user that writes events.mirror, with the mirror's
     defaults) may Write and Describe its transactional id (--transactional-id, else env
     KIOSK_TRANSACTIONAL_ID, $(VAR) expanded as the kubelet does, else <group>-<hostname>; a
     literal ACL equal to it or a prefix of its fixed part) and Read its group; that id is per
     instance (it includes the pod's name: fieldRef metadata.name, or the hostname left to the
     pod), since two producers with one id fence each other; every reader of what the mirror
     writes (its --to and --dead-letter-topic) reads read_committed: a KafkaConnector through
     its KafkaConnect's consumer.isolation.level or its own consumer.override.isolation.level
     (where the worker's override policy admits it), a KafkaBridge that may read them through
     spec.consumer.config, the kiosk consumers through services/src/kafka.rs consumer_config;
     the transaction state log fits the brokers (replication factor and min.isr);
     the validator's model of `kiosk mirror` (defaults, id) is read back from services/src/mirror.rs.
     Probes (docs/exactly-once.md, "Probes"): every container of a program that touches a health
     file (`kiosk-services mirror`: services/src/*.rs calling touch_while_healthy) names it
     (--health-file, else env KIOSK_HEALTH_FILE), in a directory it can write (the mount point
     of a writable emptyDir, or /tmp or /var/tmp on a root filesystem not read-only), and has a
     readiness probe running the image's binary (docker/kiosk.Dockerfile ENTRYPOINT) `health`
     on that same file with a --max-age of two touches or more, a liveness probe on it with a
     greater --max-age, any startup probe on it too, restartPolicy Always; no other kiosk
     program has a probe on a health file; the model (touch interval, flags, default age) is
     read back from services/src/health.rs.
     Pods as Strimzi 1.2.0 and Istio 1.30.3 make them (Strimzi's labels, StrimziPodSet pod names,
     the NetworkPolicies its operator generates; Istio's workload and canonical-service names,
     sidecar capture, PeerAuthentication precedence): every sidecar's workload, app and revision
     are what the filter and the expected Kiali edges say, one app per workload; Prometheus may
     scrape every sidecar through the NetworkPolicies; plain Kafka listeners take only Istio
     mTLS, TLS listeners pass untouched; credentials a StatefulSet keeps in its volume outlive
     a reinstall; the filter's istio_tcp_received_bytes_total can share Istio's family (same
     type, never the same series, every label Kiali groups by).
     Kafka credentials (docs/kafka-credentials.md), for the default install (SASL performed by
     the filter) and for `kind-up.sh --kafka-auth tls` (TLS client identity:
     istio/kafka-tls-client-identity/ with the charts' ci/ TLS values): no application
     container of any pod spec (every container but istio-proxy, and Strimzi's Bridge and
     Connect) holds a Kafka credential (env *SASL*/*JAAS*/*PASSWORD*, KAFKA_PROPERTIES with
     sasl./ssl./security.protocol, a KafkaUser's Secret by env, envFrom or volume); each
     KafkaUser is of the kind its listener requires; a WasmPlugin with kafka_auth takes both
     variables from the sidecar (vmConfig.env valueFrom: HOST, no value), performs what the
     listener requires, faces no re-authentication (connections.max.reauth.ms), and every pod
     it selects gives its istio-proxy the user's name and Secret (its pod spec's istio-proxy
     container, or Istio's injection template of istio/helm/istiod-values.yaml, rendered here
     for the pod in both sidecar modes); without kafka_auth no client dials a SASL listener.
     TLS client identity: each client of a listener requiring certificates has one MUTUAL
     DestinationRule for its own KafkaUser (a tls user), checking the broker's name, whose
     Secret a sync Deployment keeps from the User Operator's and Strimzi's cluster CA (its
     Roles allowing it), and istiod may serve it to that sidecar (list secrets, its own service
     account) while the application gets no API token.
     MongoDB credentials (docs/mongodb-credentials.md): no application container of any pod
     spec (every container but Istio's and mongod), no Strimzi Connect or Bridge container and
     no MongoDB sink connector holds a MongoDB credential (an env var named like a password or
     a MongoDB secret; a MongoDB URI, resolved through the bundle's Secrets and Strimzi's
     ${secrets:...}, with a user, password, authentication or TLS option; anything of a
     MongoDB certificate's Secret); mongod requires TLS, client certificates of the release's
     MongoDB CA and authentication, with the issuer's certificate, its port uncaptured by its
     sidecar and mTLS DISABLE on it, no password in its pod, X.509 users exactly the release's
     clients (their certificates' subjects, readWrite on the databases they use); each MongoDB
     client dials the MongoDB Service in plain MongoDB, is authenticated by a MongoDB
     WasmPlugin (MONGODB-X509) and has one MUTUAL DestinationRule pinning mongod's name with
     its own certificate: by credentialName when istiod may serve it to that sidecar and the
     application has no API token, else as files mounted into the sidecar only (Istio's
     injection template, rendered here); the MongoDB WasmPlugin matches only MongoDB's port,
     selects every client and no mongod or broker, and its pluginConfig is valid for the
     filter's contract (checked in full once the contract has `protocol` and `mongodb_auth`).
     The schema registry (docs/schema-registry.md): its pod has a sidecar capturing its port,
     which a Service names HTTP, and takes Istio mTLS only (a PeerAuthentication of its own);
     its AuthorizationPolicies, evaluated here as Istio would for every service account of the
     bundle and for outsiders, let exactly the pipeline's readers (found from what each
     workload runs: producer, mirror, verifier, the MongoDB sink) GET, only the producer's
     identity POST/PUT its subject, and nobody delete, change the global config or use
     Apicurio's own API, each principal a service account of the bundle; its storage (H2 in a
     file on a PersistentVolumeClaim, one replica, Recreate) outlives the pod; every schema user
     gets SCHEMA_REGISTRY_URL of its Service, and only identities that may read get it; the
     registration Job is a post-install/post-upgrade hook in the mesh with a native sidecar,
     runs as the producer's identity `kiosk-services register-schemas` from the kiosk services'
     image, waiting less long than it may run, the repository's schemas byte for byte (and
     charts/test-kafka-istio-mongo/files/schemas/ equals schemas/).
     An external Kafka (docs/external-kafka.md; strimzi/external/ and istio/external-kafka/, a
     bundle of their own until scripts/kind-up.sh applies them): Strimzi 1.2.0's standalone
     Topic and User Operators dial the ServiceEntry's host:port with SASL_SSL SCRAM-SHA-512,
     trust a CA from a Secret, take the admin credential from the platform's Secret and never
     write it where the User Operator logs it; every KafkaTopic/KafkaUser carries their label;
     one User Operator per tenant, beside the admin credential, watching the tenant's namespace
     where its KafkaUsers are (so each user's Secret is written where the sidecar reads it),
     ignoring every Kafka user outside `<tenant>-` (STRIMZI_IGNORED_USERS_PATTERN), with
     exactly Strimzi's install Role there and `get` on the CA, and no one else allowed to write
     KafkaUsers in a tenant namespace; tenants kept apart (every user and topic of one
     tenant, names and allowed ACLs under `<tenant>.`, no `*`, no shorter prefix, no cluster
     ACL, scram-sha-512 only); each tenant's DestinationRule originates TLS (SIMPLE or MUTUAL)
     to that host with a CA, its sni and name, selecting every pod its WasmPlugin selects; each
     tenant's WasmPlugin matches that port only and sends SASL only to the external cluster
     (`outbound|<port>||<host>`, no wildcard, no principal), its topic nodes in the
     ServiceEntry's namespace, with the module's one vmConfig.
  4. Programs of the bundle run here: the TLS client identity's certificate sync program
     against a stand-in Kubernetes API through the life of Strimzi's certificates (its Roles
     must allow each call); the MongoDB certificate issuer (with this machine's openssl)
     against the same stand-in through the life of its certificates (first start, renewal with
     mongod restarted, a CA renewal with both CAs trusted, a changed subject; its Role must
     allow each call), with TLS handshakes between `openssl s_server` holding mongod's
     certificate and `openssl s_client` presenting a client's (accepted; refused without one,
     with another CA's, or checking another name); the MongoDB pod's X.509 user script with
     Node.js against a stand-in of mongod's user commands; files/kiali_edges.py against a graph
     in Kiali 2.29.0's response shape (testdata/kiali-graph-pipeline.json) with and without an
     edge; `kiosk-services register-schemas` (the binary `cargo build -p kiosk-services --bin
     kiosk-services` builds), with the registration Job's arguments and schema files, against
     a stand-in of the registry's Confluent-compatible API (503 while starting, content ids,
     409 for an incompatible version under a model of Apicurio 3.3.3's JSON Schema rules): it
     sets BACKWARD, registers v1, has v2 judged compatible (not registered) and v3 refused,
     idempotently, and fails against a registry that enforces nothing, judges v2 incompatible,
     registers v3 though it judges it incompatible, refuses its writes (403) or never answers;
     then, where scripts/setup.sh installed it (and a Java 21+ is here), against Apicurio
     Registry 3.3.3 itself on an H2 file, rerun and restarted (the id kept), and with v1 an open
     content model (refused as the model says); with --prometheus, this machine's Prometheus
     scrapes a sidecar-shaped exposition.
  5. shellcheck on every scripts/*.sh; the kind scripts' --dry-run prints the commands and runs
     none (docker, kind, kubectl, helm, ... are replaced by stubs that record any call); their
     order, prerequisites and waits are read from what they print.
  6. Self-checks: deliberately wrong objects must be rejected, and each finding of issue 16 put
     back into the bundle or the scripts must be rejected, as must each way an application
     could come to hold a Kafka credential or a sidecar lack one (issue 14, both installs), and
     each way an application could come to hold a MongoDB credential, mongod accept a client
     without TLS, certificate or user, or a sidecar present no or another workload's certificate
     (issue 15), and each way the schema registry could admit the wrong identity, lose its
     schemas, or its users and registration Job be pointed wrong, a registration program that
     checks nothing or only registers v1, a registration Job that skips v2 or v3, schemas
     Apicurio would refuse, a chart copy of a schema or
     the plain policy differing from their source (issue 17), each way one trace across the
     Kafka hops could break (issue 18: provider, sampling, Jaeger addon, the Bridge's tracing),
     each way the gateway could trust tokens Keycloak does not issue as it checks them or
     Keycloak hold a guessable or inlined secret (issue 30: another issuer, jwksUri or token
     URL, audience, client or grant, a placeholder unset, a secret inlined or in the realm
     file, no import, no --hostname, a sidecar, two pods, readiness before the JWKS, the
     realm ConfigMap differing from the realm file),
     each way two WasmPlugins of the module could give their shared VM different environments
     (issue 24: the MongoDB plugin without vmConfig or with another env list, in the chart's
     render and in istio/), each way the mirror's transactions could be refused (its
     transactionalId ACL removed, on another prefix, literal, Describe or Write only, denied,
     its group ACL removed), two instances share a transactional id (a fixed one by env or
     argument, with 1 or 2 replicas, POD_NAME from another field, defined after its use or
     escaped, from a ConfigMap, a fixed hostname) or a reader of its topics see aborted records
     (Connect's isolation removed or read_uncommitted, a connector's override, refused under
     policy None, a KafkaBridge allowed to read them), in the kind installs and strimzi/ alone,
     each way the mirror's probes could miss a stuck mirror or restart a waiting one (a probe
     removed, on another file, not `health` of the image's binary; the env or argument naming
     another file; liveness --max-age not above readiness; readiness --max-age one touch; the
     file on a read-only root, a read-only or non-emptyDir volume, below the mount point; a
     health probe on `kiosk mongo-sink`), each way to let a tenant of the external Kafka reach
     the other's topics, leak the operators' admin credential, send SASL in plaintext or to
     another upstream, let one tenant's User Operator delete another's users, write a user's
     Secret out of its sidecar's reach or hold more than its grant (issue 27), or the validator
     proves nothing.
Exit status 0 when everything holds, 1 otherwise; every error names the file, object and path.

usage: .venv/bin/python scripts/validate-k8s.py [--k8s-version 1.34] [--prometheus] [-v]

The checks, one concern per module (each module's docstring says what it checks):
  common            paths, the charts and their release names, Report (counts and prints checks)
  render            Helm's engine: the charts rendered and linted, Istio's injection templates
  schema            CRD/OpenAPI validation (strict: unknown fields are errors)
  probe             the self-checks' machinery: a check run quietly, doctored copies, chart values
  contract          the filter's contract (filter/contract/*.json)
  k8s               Kubernetes objects as the kubelet and the API server read them
  services          the kiosk services image: its binary, subcommands, the program a container runs
  pods              pods as Strimzi and Istio make them; NetworkPolicies; workload and app names
  mesh              Istio's model: PeerAuthentication, AuthorizationPolicy, injection templates
  strimzi           Kafka clients, topics, ACLs, listeners
  fakeapi           a stand-in Kubernetes API for the programs run here
  mongodb           MongoDB credentials, mongod, its clients and WasmPlugins (issue 15)
  mongodb_programs  the MongoDB certificate issuer and the X.509 user script, run here
  credentials       Kafka credentials in the mesh, TLS client identity (issue 14)
  images            every image pinned
  manifests         strimzi/ and istio/: applied by kind-up.sh or equal to the charts' output
  kind              the kind scripts: what kind-up.sh applies and creates, --dry-run, shellcheck
  istio             WasmPlugins, the mesh config, DestinationRules, Wasm VMs (issue 24)
  exactly_once      the mirror's transactions and their readers
  external_kafka    an external Kafka (issue 27): standalone operators, tenants kept apart, TLS origination
  health            the mirror's probes on its health file
  tracing           one trace across the Kafka hops (issue 18)
  metrics           the filter's metrics beside Istio's, in Prometheus and Grafana
  kiali             files/kiali_edges.py on graphs in Kiali's shape
  keycloak          Keycloak as the bundle runs it: its container, the realm it imports, placeholders resolved
  rest              the REST entry: its ingress requires a Keycloak JWT, its sidecar admits its callers
  registry          the schema registry: access policy, storage, its users, the registration Job
  registration      kiosk-services register-schemas against stand-in and real registries
  selfcheck         the validator's own self-checks and the findings put back (issues 14-18)
  cli               the command: the order of the steps and their output lines
"""
