//! The graph: nodes (workloads, topics, services) and the edges between them, merged by
//! namespace and name.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

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

impl Node {
    pub fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl Graph {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add(
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
    /// An edge's label in the picture.
    pub(super) fn edge_label(&self, e: &Edge) -> String {
        // Kiali draws a padlock; text as `to_text` writes it (a padlock glyph would need an
        // emoji font).
        format!(
            "{} {}{}",
            e.protocol,
            rate(e.rate, &e.unit),
            if e.secure { ", mTLS" } else { "" }
        )
    }

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

    pub(super) fn label(&self, n: &Node) -> String {
        match self.kind(n) {
            NodeKind::Topic => format!("{} (topic)", n.id()),
            NodeKind::Service => format!("{} (service)", n.id()),
            NodeKind::Workload => n.id(),
        }
    }
}

/// A rate as the graph writes it: bytes scaled to KiB/s or MiB/s, requests with two decimals.
pub(super) fn rate(value: f64, unit: &str) -> String {
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
