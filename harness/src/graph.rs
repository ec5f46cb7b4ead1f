//! `kiosk graph`: the traffic graph Kiali would draw, from the same PromQL Kiali runs.
//!
//! - Kafka producer -> topic: Kiali Extensions' TCP query (`kiali_ext_tcp_sent_total`).
//! - Kafka topic -> consumer: Kiali's Istio TCP queries for each namespace (with Kiali's
//!   default "sent" TCP rate it reads `istio_tcp_received_bytes_total`: L4 telemetry is
//!   named from the other end).
//! - HTTP and plain TCP (into `rest`, out to MongoDB): the sidecars' own Envoy cluster
//!   stats, `outbound|<port>||<host>`, read per scraped workload.
//!
//! Nodes are merged by namespace and name: in Kiali a topic is a service node on the
//! extension edge and a workload-shaped node on the Istio edge (see the README). Edges
//! carried over Istio mTLS are marked secure, as Kiali draws its padlock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::prometheus::{PromClient, Sample};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Node {
    pub namespace: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    Workload,
    Topic,
    Service,
}

#[derive(Clone, Debug, Serialize)]
pub struct Edge {
    pub source: Node,
    pub dest: Node,
    /// `kafka`, `http` or `tcp`.
    pub protocol: String,
    pub rate: f64,
    /// `B/s` or `req/s`.
    pub unit: String,
    /// The metric the edge came from.
    pub metric: String,
    /// Istio mTLS on the whole edge (Kiali's padlock): `secure="true"` on the extension
    /// series, `connection_security_policy="mutual_tls"` on the Istio series, TLS
    /// handshakes on the sidecar's outbound cluster for HTTP and TCP.
    pub secure: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Graph {
    pub edges: Vec<Edge>,
    pub kinds: BTreeMap<String, NodeKind>,
    pub queries: Vec<String>,
    pub duration_secs: u64,
}

/// What to ask for.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespaces to graph (Kiali's namespace selection).
    pub namespaces: Vec<String>,
    /// The Kiali extension name (the filter's `kiali.extension`).
    pub extension: String,
    /// Rate window, seconds (Kiali's graph duration).
    pub duration_secs: u64,
    /// Hosts whose opaque TCP edges the Kafka edges replace.
    pub kafka_hosts: Vec<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            namespaces: vec!["pipeline".into(), "kafka".into()],
            extension: "kafka".into(),
            duration_secs: 60,
            kafka_hosts: vec!["kafka-bootstrap.kafka.svc.cluster.local".into()],
        }
    }
}

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
pub fn from_samples(o: &Options, results: &[(Source, Vec<Sample>)]) -> Graph {
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

impl Node {
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl Graph {
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        source: Node,
        source_kind: NodeKind,
        dest: Node,
        dest_kind: NodeKind,
        protocol: &str,
        rate: f64,
        unit: &str,
        metric: &str,
        secure: bool,
    ) {
        // A node seen as a topic or service anywhere keeps that kind.
        for (n, k) in [(&source, source_kind), (&dest, dest_kind)] {
            let e = self.kinds.entry(n.id()).or_insert(k);
            *e = (*e).max(k);
        }
        if let Some(e) = self
            .edges
            .iter_mut()
            .find(|e| e.source == source && e.dest == dest && e.protocol == protocol)
        {
            e.rate += rate;
            // Secure only if every series of the edge is.
            e.secure &= secure;
            return;
        }
        self.edges.push(Edge {
            source,
            dest,
            protocol: protocol.to_string(),
            rate,
            unit: unit.to_string(),
            metric: metric.to_string(),
            secure,
        });
    }

    pub fn has_edge(&self, source: &str, dest: &str) -> bool {
        self.edges
            .iter()
            .any(|e| e.source.id() == source && e.dest.id() == dest)
    }

    pub fn kind(&self, node: &Node) -> NodeKind {
        self.kinds
            .get(&node.id())
            .copied()
            .unwrap_or(NodeKind::Workload)
    }

    /// The edges as text, one per line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let width = self
            .edges
            .iter()
            .map(|e| self.label(&e.source).len())
            .max()
            .unwrap_or(0);
        for e in &self.edges {
            let _ = writeln!(
                out,
                "  {:<width$}  --{} {}{}-->  {}",
                self.label(&e.source),
                e.protocol,
                rate(e.rate, &e.unit),
                if e.secure { ", mTLS" } else { "" },
                self.label(&e.dest),
            );
        }
        if self.edges.is_empty() {
            out.push_str("  (no traffic in the window)\n");
        }
        out
    }

    fn label(&self, n: &Node) -> String {
        match self.kind(n) {
            NodeKind::Topic => format!("{} (topic)", n.id()),
            NodeKind::Service => format!("{} (service)", n.id()),
            NodeKind::Workload => n.id(),
        }
    }

    /// Columns by longest path from a source (a cycle is cut at the node count).
    fn layout(&self) -> BTreeMap<Node, (usize, usize)> {
        let mut nodes: BTreeSet<Node> = BTreeSet::new();
        for e in &self.edges {
            nodes.insert(e.source.clone());
            nodes.insert(e.dest.clone());
        }
        let mut rank: BTreeMap<Node, usize> = nodes.iter().map(|n| (n.clone(), 0)).collect();
        for _ in 0..nodes.len() {
            let mut changed = false;
            for e in &self.edges {
                let r = rank[&e.source] + 1;
                if r > rank[&e.dest] && r < nodes.len() {
                    rank.insert(e.dest.clone(), r);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        rank.into_iter()
            .map(|(n, r)| {
                let row = rows.entry(r).or_default();
                *row += 1;
                (n, (r, *row - 1))
            })
            .collect()
    }

    /// A picture: workloads are circles, topics hexagons, services triangles (as in
    /// Kiali), edges coloured by protocol and labelled with their rate.
    pub fn to_svg(&self) -> String {
        let pos = self.layout();
        let xy = |n: &Node| {
            let (col, row) = pos[n];
            (90.0 + col as f64 * 190.0, 80.0 + row as f64 * 130.0)
        };
        let cols = pos.values().map(|p| p.0).max().unwrap_or(0) + 1;
        let rows = pos.values().map(|p| p.1).max().unwrap_or(0) + 1;
        let (w, h) = (cols as f64 * 190.0 + 40.0, rows as f64 * 130.0 + 60.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        s.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>"##);
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        for e in &self.edges {
            let ((x1, y1), (x2, y2)) = (xy(&e.source), xy(&e.dest));
            let (dx, dy) = (x2 - x1, y2 - y1);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let (ux, uy) = (dx / len, dy / len);
            let (sx, sy, ex, ey) = (
                x1 + ux * 26.0,
                y1 + uy * 26.0,
                x2 - ux * 28.0,
                y2 - uy * 28.0,
            );
            let colour = match e.protocol.as_str() {
                "kafka" => "#1f77b4",
                "http" => "#2ca02c",
                _ => "#7f7f7f",
            };
            let _ = writeln!(
                s,
                r#"<line x1="{sx:.1}" y1="{sy:.1}" x2="{ex:.1}" y2="{ey:.1}" stroke="{colour}" stroke-width="2" marker-end="url(#arrow)"/>"#
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{colour}">{}{} {}</text>"#,
                (sx + ex) / 2.0,
                (sy + ey) / 2.0 - 6.0,
                // Kiali's padlock.
                if e.secure { "\u{1F512} " } else { "" },
                e.protocol,
                xml(&rate(e.rate, &e.unit))
            );
        }
        for n in pos.keys() {
            let (x, y) = xy(n);
            let shape = match self.kind(n) {
                NodeKind::Workload => format!(
                    r##"<circle cx="{x}" cy="{y}" r="22" fill="#e8f1fb" stroke="#1f4e79" stroke-width="2"/>"##
                ),
                NodeKind::Topic => {
                    let pts: Vec<String> = (0..6)
                        .map(|i| {
                            let a = std::f64::consts::PI / 3.0 * i as f64;
                            format!("{:.1},{:.1}", x + 24.0 * a.cos(), y + 24.0 * a.sin())
                        })
                        .collect();
                    format!(
                        r##"<polygon points="{}" fill="#fff4e0" stroke="#b36b00" stroke-width="2"/>"##,
                        pts.join(" ")
                    )
                }
                NodeKind::Service => format!(
                    r##"<polygon points="{x},{} {},{} {},{}" fill="#eef7ee" stroke="#2d6a2d" stroke-width="2"/>"##,
                    y - 24.0,
                    x - 22.0,
                    y + 16.0,
                    x + 22.0,
                    y + 16.0
                ),
            };
            s.push_str(&shape);
            let _ = writeln!(
                s,
                r#"<text x="{x}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
                y + 42.0,
                xml(&n.name)
            );
            let _ = writeln!(
                s,
                r##"<text x="{x}" y="{}" text-anchor="middle" fill="#666">{}</text>"##,
                y + 56.0,
                xml(&n.namespace)
            );
        }
        s.push_str("</svg>\n");
        s
    }

    /// A page with the picture, the edges and the queries behind them.
    pub fn to_html(&self, prometheus: &str) -> String {
        let mut rows = String::new();
        for e in &self.edges {
            let _ = writeln!(
                rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                xml(&self.label(&e.source)),
                xml(&self.label(&e.dest)),
                e.protocol,
                xml(&rate(e.rate, &e.unit)),
                e.metric
            );
        }
        let queries: String = self
            .queries
            .iter()
            .map(|q| format!("<li><code>{}</code></li>\n", xml(q)))
            .collect();
        format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>kiosk graph</title>\n<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:4px 10px;text-align:left}}code{{font-size:11px}}</style></head><body>\n<h1>kiosk traffic graph</h1>\n<p>From Prometheus {}, rates over the last {} s, with the queries Kiali runs for its graph.</p>\n{}\n<table><tr><th>source</th><th>destination</th><th>protocol</th><th>rate</th><th>metric</th></tr>\n{}</table>\n<h2>Queries</h2><ol>{}</ol></body></html>\n",
            xml(prometheus),
            self.duration_secs,
            self.to_svg(),
            rows,
            queries
        )
    }
}

fn rate(value: f64, unit: &str) -> String {
    if unit == "B/s" {
        if value >= 1024.0 * 1024.0 {
            format!("{:.1} MiB/s", value / 1024.0 / 1024.0)
        } else if value >= 1024.0 {
            format!("{:.1} KiB/s", value / 1024.0)
        } else {
            format!("{value:.0} B/s")
        }
    } else {
        format!("{value:.2} {unit}")
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    #[test]
    fn cluster_names_give_the_destination_service() {
        let n = cluster_destination("outbound|27017||mongodb.pipeline.svc.cluster.local").unwrap();
        assert_eq!(n.id(), "pipeline/mongodb");
        assert!(cluster_destination("inbound|8080||").is_none());
    }

    #[test]
    fn samples_become_one_chain_with_kinds_and_no_duplicates() {
        let o = Options::default();
        let ext = sample(
            &[
                ("source_namespace", "pipeline"),
                ("source_name", "rest"),
                ("dest_namespace", "kafka"),
                ("dest_name", "events"),
            ],
            10.0,
        );
        let istio = sample(
            &[
                ("source_workload_namespace", "kafka"),
                ("source_workload", "events"),
                ("destination_workload_namespace", "pipeline"),
                ("destination_workload", "mirror"),
            ],
            5.0,
        );
        let http = sample(
            &[
                ("namespace", "pipeline"),
                ("workload", "producer"),
                (
                    "cluster_name",
                    "outbound|8080||rest.pipeline.svc.cluster.local",
                ),
            ],
            2.0,
        );
        let http_bytes = sample(
            &[
                ("namespace", "pipeline"),
                ("workload", "producer"),
                (
                    "cluster_name",
                    "outbound|8080||rest.pipeline.svc.cluster.local",
                ),
            ],
            900.0,
        );
        let kafka_bytes = sample(
            &[
                ("namespace", "pipeline"),
                ("workload", "rest"),
                (
                    "cluster_name",
                    "outbound|9092||kafka-bootstrap.kafka.svc.cluster.local",
                ),
            ],
            900.0,
        );
        let mongo = sample(
            &[
                ("namespace", "pipeline"),
                ("workload", "mongo-sink"),
                (
                    "cluster_name",
                    "outbound|27017||mongodb.pipeline.svc.cluster.local",
                ),
            ],
            300.0,
        );
        let g = from_samples(
            &o,
            &[
                (Source::KialiExtension, vec![ext]),
                (Source::Istio, vec![istio.clone()]),
                (Source::Istio, vec![istio]),
                (Source::EnvoyHttp, vec![http]),
                (Source::EnvoyTcp, vec![http_bytes, kafka_bytes, mongo]),
            ],
        );
        assert_eq!(g.edges.len(), 4, "{}", g.to_text());
        assert!(g.has_edge("pipeline/producer", "pipeline/rest"));
        assert!(g.has_edge("pipeline/rest", "kafka/events"));
        assert!(g.has_edge("kafka/events", "pipeline/mirror"));
        assert!(g.has_edge("pipeline/mongo-sink", "pipeline/mongodb"));
        let istio_edge = g.edges.iter().find(|e| e.dest.name == "mirror").unwrap();
        assert_eq!(
            istio_edge.rate, 5.0,
            "a series matched by two queries counts once"
        );
        assert_eq!(g.kinds["kafka/events"], NodeKind::Topic);
        assert_eq!(g.kinds["pipeline/mongodb"], NodeKind::Service);
        let svg = g.to_svg();
        assert!(svg.starts_with("<svg") && svg.contains("mongo-sink") && svg.ends_with("</svg>\n"));
    }
}
