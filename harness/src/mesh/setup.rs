//! What every phase of `kiosk up` reads: the facts fixed before anything starts (the
//! flags, the bundle, the plan, the tools, the names the cluster gives its Services).

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::Value;

use super::args::UpArgs;
use super::ingress;
use super::names::{ClusterNames, JAEGER_HOST};
use super::plan::{self, Plan};
use super::tenancy;
use crate::bundle::{Bundle, KafkaConnector, PeerAuthentications};
use crate::components::jaeger;
use crate::components::kafka::{PLAIN_PORT, TLS_PORT};
use crate::components::pod;
use crate::paths;
use kiosk_filter::act::sasl::Mechanism;

/// What is read and checked before anything starts.
pub struct Checked {
    /// Where the Strimzi resources come from.
    pub strimzi: PathBuf,
    pub bundle: Bundle,
    pub policies: PeerAuthentications,
    pub plan: Plan,
    /// The sink's KafkaConnector.
    pub connector: KafkaConnector,
    /// The REST entry's ingress gateway, unless `--ingress none`.
    pub ingress: Option<ingress::Prepared>,
    /// The external Kafka and its tenants, with `--external-kafka`.
    pub external: Option<tenancy::Prepared>,
    /// The kiosk filter's module.
    pub wasm: PathBuf,
    /// This program: the pods' jobs and services run it.
    pub kiosk: PathBuf,
}

impl Checked {
    /// Everything that can be checked is checked before anything starts: the bundle, the
    /// plan, the tools, the rights pods need.
    pub fn check(args: &UpArgs) -> Result<Checked> {
        pod::preflight()?;
        let strimzi = args
            .strimzi
            .clone()
            .unwrap_or_else(crate::bundle::default_dir);
        let bundle = Bundle::read(&strimzi)?;
        let policies = crate::bundle::peer_authentication(&crate::bundle::default_istio_dir())?;
        let plan = Plan::pipeline(&bundle, usize::from(args.brokers));
        plan.check()?;
        let connector = bundle.connector(plan::SINK_CONNECTOR)?.clone();
        let ingress = match args.ingress.as_str() {
            "jwt" => Some(ingress::prepare(
                &crate::bundle::default_istio_dir(),
                &crate::bundle::default_realm_file(),
                std::time::Duration::from_secs(args.jwks_refresh),
            )?),
            _ => None,
        };
        let external = match args.external_kafka {
            true => Some(tenancy::prepare(
                strimzi.join("external"),
                crate::bundle::default_istio_dir().join("external-kafka"),
            )?),
            false => None,
        };
        let wasm = paths::filter_wasm()?;
        paths::envoy()?;
        paths::java()?;
        paths::kafka_libs()?;
        paths::connect_plugins()?;
        paths::secantusd()?;
        paths::prometheus()?;
        let kiosk = std::env::current_exe()?;
        Ok(Checked {
            strimzi,
            bundle,
            policies,
            plan,
            connector,
            ingress,
            external,
            wasm,
            kiosk,
        })
    }
}

/// The facts of this run every phase reads.
pub struct Setup {
    pub args: UpArgs,
    pub strimzi: PathBuf,
    pub bundle: Bundle,
    pub policies: PeerAuthentications,
    pub plan: Plan,
    pub connector: KafkaConnector,
    pub ingress: Option<ingress::Prepared>,
    pub external: Option<tenancy::Prepared>,
    pub wasm: PathBuf,
    pub kiosk: PathBuf,
    /// Where every process logs.
    pub run_dir: PathBuf,
    /// The producer's run id, which verify looks for.
    pub run_id: String,
    /// Names as the cluster has them.
    pub names: ClusterNames,
    /// Clients authenticate to Kafka with certificates (`--kafka-auth tls`).
    pub tls_clients: bool,
    /// The SASL mechanism the filter authenticates with, if any.
    pub sasl: Option<Mechanism>,
    /// The port clients dial: Strimzi's plain listener, or its TLS listener.
    pub client_port: u16,
    /// The apps' `--bootstrap`.
    pub kafka_bootstrap: String,
    pub with_registry: bool,
    pub with_tracing: bool,
    /// Where the filter may send the Kafka credential (`kafka_auth.upstreams`).
    pub kafka_upstreams: Value,
}

impl Setup {
    /// The run's facts, the clients' authentication checked against the bundle (and
    /// the bundle's WasmPlugin); touches nothing.
    pub fn new(args: &UpArgs, checked: Checked, run_dir: PathBuf, now: u64) -> Result<Setup> {
        let Checked {
            strimzi,
            bundle,
            policies,
            plan,
            connector,
            ingress,
            external,
            wasm,
            kiosk,
        } = checked;
        let names = ClusterNames::of(&bundle)?;
        let tls_clients = args.kafka_auth == "tls";
        let sasl = match args.kafka_auth.as_str() {
            "scram-sha-512" => Some(Mechanism::ScramSha512),
            "plain" => Some(Mechanism::Plain),
            _ => None,
        };
        if tls_clients || sasl.is_some() {
            for w in plan.workloads.iter().filter(|w| w.kafka) {
                bundle.user(w.kafka_user.as_deref().unwrap_or_default())?;
            }
        }
        let tls_ends_at_kafka =
            policies.broker_ports.get(&TLS_PORT).map(String::as_str) == Some("DISABLE");
        if tls_clients && !tls_ends_at_kafka {
            bail!("--kafka-auth tls: the brokers' TLS listener ends at Kafka, so istio/ needs a PeerAuthentication with portLevelMtls {TLS_PORT}: DISABLE for the broker pods");
        }
        let kafka_upstreams = kafka_upstreams(sasl.is_some())?;
        let client_port = if tls_clients { TLS_PORT } else { PLAIN_PORT };
        let kafka_bootstrap = format!("{}:{client_port}", names.bootstrap_host);
        Ok(Setup {
            args: args.clone(),
            strimzi,
            bundle,
            policies,
            plan,
            connector,
            ingress,
            external,
            wasm,
            kiosk,
            run_dir,
            run_id: format!("run-{now}"),
            names,
            tls_clients,
            sasl,
            client_port,
            kafka_bootstrap,
            with_registry: args.schema_registry == "apicurio",
            with_tracing: tracing(&args.tracing)?,
            kafka_upstreams,
        })
    }

    /// Where the services send their spans (OTLP HTTP), in their environment.
    pub fn otlp_env(&self, env: &mut Vec<(String, String)>) {
        if self.with_tracing {
            let endpoint = format!("http://{JAEGER_HOST}:{}", jaeger::OTLP_HTTP_PORT);
            env.push((kiosk_services::otel::ENDPOINT_ENV.to_string(), endpoint));
        }
    }
}

/// Whether the run traces: `auto` traces when Jaeger is built, and says when it is not.
fn tracing(asked: &str) -> Result<bool> {
    match (asked, paths::jaeger()) {
        ("none", _) => Ok(false),
        (_, Ok(_)) => Ok(true),
        ("jaeger", Err(e)) => Err(e.context("--tracing jaeger")),
        (_, Err(_)) => {
            println!("kiosk: tracing off: Jaeger is not built (`scripts/setup.sh` builds it, about 4 minutes; `scripts/setup.sh --demo` leaves it out)");
            Ok(false)
        }
    }
}

/// Where the Kafka credential may go: the bundle's WasmPlugin says (the brokers' identity).
fn kafka_upstreams(sasl: bool) -> Result<Value> {
    let istio = crate::bundle::default_istio_dir();
    let config = crate::bundle::wasm_plugin_config(&istio, None, "kiosk")?;
    let upstreams = config["kafka_auth"]["upstreams"].clone();
    if sasl && upstreams.is_null() {
        bail!("{}: the WasmPlugin kiosk has no pluginConfig.kafka_auth.upstreams: the filter would send the credential nowhere", istio.display());
    }
    Ok(upstreams)
}
