//! The PromQL Kiali runs for the graph, and the graph built from its answers.

use anyhow::Result;

use std::collections::BTreeSet;

use super::model::{Graph, Node, NodeKind, Options};
use crate::prometheus::{InstantSample, PromClient};

/// Kiali wraps every graph query in `round(.., 0.001)`.
fn kiali(query: String) -> String {
    format!("round({query},0.001)")
}

/// The queries, in the order they are run.
pub fn queries(o: &Options) -> Vec<(String, Source)> {
    let d = o.duration_secs;
    let mut out = vec![(
        kiali(format!(
            r#"sum(rate(kiali_ext_tcp_sent_total{{extension="{}"}} [{d}s])) by (dest_cluster, dest_namespace, dest_name, flags, secure, source_cluster, source_is_root, source_namespace, source_name) > 0"#,
            o.extension
        )),
        Source::KialiExtension,
    )];
    // Kiali's security appender adds `connection_security_policy` to the grouping.
    let group = "connection_security_policy,app,source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision,response_flags";
    let metric = "istio_tcp_received_bytes_total";
    for ns in &o.namespaces {
        out.push((
            kiali(format!(
                r#"sum(rate({metric}{{reporter="source",source_workload_namespace!="{ns}",destination_workload_namespace="unknown",destination_workload="unknown",destination_service=~"^.+\\.{ns}\\..+$"}} [{d}s])) by ({group}) > 0"#
            )),
            Source::Istio,
        ));
        out.push((
            kiali(format!(
                r#"sum(rate({metric}{{reporter="destination",destination_workload_namespace="{ns}"}} [{d}s])) by ({group}) > 0"#
            )),
            Source::Istio,
        ));
        out.push((
            kiali(format!(
                r#"sum(rate({metric}{{reporter="source",source_workload_namespace="{ns}"}} [{d}s])) by ({group}) > 0"#
            )),
            Source::Istio,
        ));
    }
    out.push((
        format!(
            r#"sum(rate(envoy_cluster_upstream_rq_completed{{cluster_name=~"outbound\\|.*"}} [{d}s])) by (namespace, workload, cluster_name) > 0"#
        ),
        Source::EnvoyHttp,
    ));
    out.push((
        format!(
            r#"sum(rate(envoy_cluster_upstream_cx_tx_bytes_total{{cluster_name=~"outbound\\|.*"}} [{d}s])) by (namespace, workload, cluster_name) > 0"#
        ),
        Source::EnvoyTcp,
    ));
    // Outbound clusters that did TLS handshakes (their connections are Istio mTLS).
    out.push((
        r#"sum(envoy_cluster_ssl_handshake{cluster_name=~"outbound\\|.*"}) by (namespace, workload, cluster_name) > 0"#.to_string(),
        Source::EnvoyTls,
    ));
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    KialiExtension,
    Istio,
    EnvoyHttp,
    EnvoyTcp,
    EnvoyTls,
}

/// Run the queries and build the graph.
pub async fn build(prom: &PromClient, o: &Options) -> Result<Graph> {
    let mut results = Vec::new();
    for (query, source) in queries(o) {
        results.push((source, prom.query(&query).await?));
    }
    let mut graph = from_samples(o, &results);
    graph.queries = queries(o).into_iter().map(|(q, _)| q).collect();
    Ok(graph)
}

/// The graph from query results (separate from the I/O, for tests).
pub fn from_samples(o: &Options, results: &[(Source, Vec<InstantSample>)]) -> Graph {
    let mut graph = Graph {
        duration_secs: o.duration_secs,
        ..Graph::default()
    };
    let node = |ns: &str, name: &str| Node {
        namespace: ns.to_string(),
        name: name.to_string(),
    };
    // Istio series may match more than one namespace query: Kiali dedups by time series.
    let mut seen_series = BTreeSet::new();
    let mut http_clusters = BTreeSet::new();
    let tls_clusters: BTreeSet<(String, String)> = results
        .iter()
        .filter(|(source, _)| *source == Source::EnvoyTls)
        .flat_map(|(_, samples)| samples)
        .map(|s| {
            (
                s.label("workload").to_string(),
                s.label("cluster_name").to_string(),
            )
        })
        .collect();
    for (source, samples) in results {
        for s in samples {
            match source {
                Source::EnvoyTls => {}
                Source::KialiExtension => {
                    let src = node(s.label("source_namespace"), s.label("source_name"));
                    let dst = node(s.label("dest_namespace"), s.label("dest_name"));
                    graph.add(
                        src,
                        NodeKind::Workload,
                        dst,
                        NodeKind::Topic,
                        "kafka",
                        s.value,
                        "B/s",
                        "kiali_ext_tcp_sent_total",
                        s.label("secure") == "true",
                    );
                }
                Source::Istio => {
                    if !seen_series.insert(format!("{:?}", s.labels)) {
                        continue;
                    }
                    let src = node(
                        s.label("source_workload_namespace"),
                        s.label("source_workload"),
                    );
                    let dst = node(
                        s.label("destination_workload_namespace"),
                        s.label("destination_workload"),
                    );
                    graph.add(
                        src,
                        NodeKind::Topic,
                        dst,
                        NodeKind::Workload,
                        "kafka",
                        s.value,
                        "B/s",
                        "istio_tcp_received_bytes_total",
                        s.label("connection_security_policy") == "mutual_tls",
                    );
                }
                Source::EnvoyHttp | Source::EnvoyTcp => {
                    let cluster = s.label("cluster_name");
                    let Some(dst) = cluster_destination(cluster) else {
                        continue;
                    };
                    if o.kafka_hosts
                        .iter()
                        .any(|h| cluster.ends_with(&format!("||{h}")))
                    {
                        continue;
                    }
                    let key = (s.label("workload").to_string(), cluster.to_string());
                    let secure = tls_clusters.contains(&key);
                    let (protocol, unit, metric) = if *source == Source::EnvoyHttp {
                        http_clusters.insert(key);
                        ("http", "req/s", "envoy_cluster_upstream_rq_completed")
                    } else if http_clusters.contains(&key) {
                        continue;
                    } else {
                        ("tcp", "B/s", "envoy_cluster_upstream_cx_tx_bytes_total")
                    };
                    let src = node(s.label("namespace"), s.label("workload"));
                    // An HTTP destination is a workload with a sidecar; a TCP one is a service.
                    let kind = if protocol == "http" {
                        NodeKind::Workload
                    } else {
                        NodeKind::Service
                    };
                    graph.add(
                        src,
                        NodeKind::Workload,
                        dst,
                        kind,
                        protocol,
                        s.value,
                        unit,
                        metric,
                        secure,
                    );
                }
            }
        }
    }
    graph
        .edges
        .sort_by(|a, b| (&a.source, &a.dest).cmp(&(&b.source, &b.dest)));
    graph
}

/// `outbound|27017||mongodb.pipeline.svc.cluster.local` -> pipeline/mongodb.
pub fn cluster_destination(cluster: &str) -> Option<Node> {
    let host = cluster.strip_prefix("outbound|")?.split("||").nth(1)?;
    let mut parts = host.split('.');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let namespace = parts.next().unwrap_or("default");
    Some(Node {
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}
