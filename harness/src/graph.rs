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
//! extension edge and a workload-shaped node on the Istio edge (docs/metrics.md, "Kiali edges"). Edges
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

    /// Layers by longest path from a source (a cycle is cut at the node count), each edge
    /// spanning several layers routed through a slot in every layer between (a dummy
    /// node, so it never passes over a node), layers ordered by barycentre sweeps, and
    /// each node on the median row of its predecessors (a chain stays on one row).
    /// Edges leave and enter nodes horizontally, so a node's labels below it are never
    /// crossed; an edge's label sits above its longest horizontal run, or on its slope.
    pub fn place(&self) -> Placed {
        let mut nodes: Vec<Node> = Vec::new();
        for e in &self.edges {
            for n in [&e.source, &e.dest] {
                if !nodes.contains(n) {
                    nodes.push(n.clone());
                }
            }
        }
        nodes.sort();
        let index = |n: &Node| nodes.iter().position(|m| m == n).unwrap_or(0);
        let count = nodes.len();
        // Back edges: those closing a cycle in a depth-first search from the sources (Kafka
        // Connect writes and reads its own topics); they are left out of the ranking and
        // drawn leftwards.
        let edge_ends: Vec<(usize, usize)> = self
            .edges
            .iter()
            .map(|e| (index(&e.source), index(&e.dest)))
            .collect();
        let mut back = vec![false; edge_ends.len()];
        {
            fn visit(n: usize, ends: &[(usize, usize)], state: &mut [u8], back: &mut [bool]) {
                state[n] = 1;
                for (k, &(s, d)) in ends.iter().enumerate() {
                    if s != n {
                        continue;
                    }
                    match state[d] {
                        0 => visit(d, ends, state, back),
                        1 => back[k] = true,
                        _ => {}
                    }
                }
                state[n] = 2;
            }
            let mut state = vec![0u8; count];
            let sources: Vec<usize> = (0..count)
                .filter(|n| !edge_ends.iter().any(|&(_, d)| d == *n))
                .chain(0..count)
                .collect();
            for n in sources {
                if state[n] == 0 {
                    visit(n, &edge_ends, &mut state, &mut back);
                }
            }
        }
        let mut rank = vec![0usize; count];
        for _ in 0..count {
            let mut changed = false;
            for (k, &(s, d)) in edge_ends.iter().enumerate() {
                if !back[k] && rank[s] + 1 > rank[d] {
                    rank[d] = rank[s] + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Chains of slots: real nodes, then one dummy per layer an edge passes.
        let mut ranks = rank.clone();
        let mut chains: Vec<Vec<usize>> = Vec::new();
        for e in &self.edges {
            let (s, d) = (index(&e.source), index(&e.dest));
            let mut chain = vec![s];
            if rank[d] > rank[s] {
                for r in rank[s] + 1..rank[d] {
                    ranks.push(r);
                    chain.push(ranks.len() - 1);
                }
            }
            chain.push(d);
            chains.push(chain);
        }
        let slots = ranks.len();
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); slots];
        let mut succs: Vec<Vec<usize>> = vec![Vec::new(); slots];
        for chain in &chains {
            for w in chain.windows(2) {
                if ranks[w[1]] > ranks[w[0]] {
                    preds[w[1]].push(w[0]);
                    succs[w[0]].push(w[1]);
                }
            }
        }
        let layers_n = ranks.iter().max().map_or(0, |m| m + 1);
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layers_n];
        for (slot, r) in ranks.iter().enumerate() {
            layers[*r].push(slot);
        }
        let mut order = vec![0.0f64; slots];
        let renumber = |layers: &Vec<Vec<usize>>, order: &mut Vec<f64>| {
            for layer in layers {
                for (i, s) in layer.iter().enumerate() {
                    order[*s] = i as f64;
                }
            }
        };
        renumber(&layers, &mut order);
        for _ in 0..4 {
            for (down, r) in (1..layers_n)
                .map(|r| (true, r))
                .chain((0..layers_n.saturating_sub(1)).rev().map(|r| (false, r)))
            {
                let mut keyed: Vec<(f64, usize)> = layers[r]
                    .iter()
                    .map(|&s| {
                        let near = if down { &preds[s] } else { &succs[s] };
                        let key = if near.is_empty() {
                            order[s]
                        } else {
                            near.iter().map(|n| order[*n]).sum::<f64>() / near.len() as f64
                        };
                        (key, s)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                layers[r] = keyed.into_iter().map(|(_, s)| s).collect();
                renumber(&layers, &mut order);
            }
        }
        // Rows: the median of the predecessors' rows, below the previous slot of the layer.
        let mut row = vec![0usize; slots];
        for layer in &layers {
            let mut next = 0usize;
            for &s in layer {
                let mut above: Vec<usize> = preds[s].iter().map(|p| row[*p]).collect();
                above.sort_unstable();
                let want = above
                    .get(above.len().saturating_sub(1) / 2)
                    .copied()
                    .unwrap_or(0);
                row[s] = want.max(next);
                next = row[s] + 1;
            }
        }
        let at = |s: usize| {
            (
                MARGIN_X + ranks[s] as f64 * COLUMN,
                MARGIN_Y + row[s] as f64 * ROW,
            )
        };
        let mut placed = Placed::default();
        for (i, n) in nodes.iter().enumerate() {
            placed.nodes.insert(n.clone(), at(i));
        }
        let rows = row.iter().max().map_or(1, |m| m + 1);
        let bottom = MARGIN_Y + (rows as f64 - 0.4) * ROW;
        for chain in &chains {
            let mut pts: Vec<(f64, f64)> = Vec::new();
            let mut push = |p: (f64, f64)| {
                if pts.last() != Some(&p) {
                    pts.push(p);
                }
            };
            for w in chain.windows(2) {
                let ((xa, ya), (xb, yb)) = (at(w[0]), at(w[1]));
                let start = if w[0] < count { xa + RADIUS } else { xa };
                let end = if w[1] < count { xb - RADIUS } else { xb };
                if ranks[w[1]] + 1 == ranks[w[0]] {
                    // A cycle's edge back to the layer before: leftwards, below the edge
                    // the other way.
                    // Its change of row next to the target, where the edges out of it
                    // change theirs: the run by the source keeps room for labels.
                    let (ya, yb) = (ya + BACK, yb + BACK);
                    push((xa - RADIUS, ya));
                    if ya != yb {
                        push((xb + RUN + SLOPE, ya));
                        push((xb + RUN, yb));
                    }
                    push((xb + RADIUS, yb));
                } else if ranks[w[1]] <= ranks[w[0]] {
                    // Any other edge back: round below the picture.
                    push((xa + RADIUS, ya));
                    push((xa + RUN, ya));
                    push((xa + RUN, bottom));
                    push((xb - RUN, bottom));
                    push((xb - RUN, yb));
                    push((xb - RADIUS, yb));
                } else if ya == yb {
                    push((start, ya));
                    push((end, yb));
                } else {
                    // Out past the node's name, a steep slope, then a long run in: the
                    // label fits on the run.
                    push((start, ya));
                    push((xa + RUN, ya));
                    push((xa + RUN + SLOPE, yb));
                    push((end, yb));
                }
            }
            placed.edges.push(pts);
        }
        // Labels: for each edge, the first free spot among candidates on its segments
        // (longest first; above, then below the line; centred, then towards either end): one
        // no other edge crosses and that overlaps no node and no label placed before.
        let nodes_boxes = node_boxes(&placed);
        for (i, e) in self.edges.iter().enumerate() {
            let text = self.edge_label(e);
            let width = text_width(&text, LABEL_SIZE);
            let pts = &placed.edges[i];
            let mut segments: Vec<((f64, f64), (f64, f64))> =
                pts.windows(2).map(|w| (w[0], w[1])).collect();
            segments.sort_by(|x, y| seg_len(y).total_cmp(&seg_len(x)));
            let mut candidates = Vec::new();
            for (a, b) in &segments {
                for f in [0.5, 0.65, 0.35, 0.8, 0.2] {
                    let (x, y) = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
                    candidates.push((x, y - 8.0));
                    candidates.push((x, y + LABEL_SIZE + 4.0));
                }
            }
            // What a spot would break: edges crossing it, nodes and labels under it.
            let conflicts = |&(x, y): &(f64, f64)| {
                let bx = label_box(x, y, width);
                let crossed = placed
                    .edges
                    .iter()
                    .enumerate()
                    .filter(|(j, other)| {
                        *j != i && other.windows(2).any(|w| segment_hits(w[0], w[1], bx))
                    })
                    .count();
                crossed
                    + nodes_boxes
                        .iter()
                        .filter(|(_, nb)| overlap(bx, *nb))
                        .count()
                    + placed
                        .labels
                        .iter()
                        .filter(|(_, lx, ly, lw)| overlap(bx, label_box(*lx, *ly, *lw)))
                        .count()
            };
            // The first free spot, else the least bad.
            let (x, y) = candidates
                .iter()
                .map(|c| (conflicts(c), *c))
                .min_by_key(|(n, _)| *n)
                .map_or((0.0, 0.0), |(_, c)| c);
            placed.labels.push((text, x, y, width));
        }
        placed.width = MARGIN_X * 2.0 + (layers_n.max(1) - 1) as f64 * COLUMN;
        placed.height = MARGIN_Y + (rows as f64 - 1.0) * ROW + 80.0;
        placed
    }

    fn edge_label(&self, e: &Edge) -> String {
        // Kiali draws a padlock; text as `to_text` writes it (a padlock glyph would need an
        // emoji font).
        format!(
            "{} {}{}",
            e.protocol,
            rate(e.rate, &e.unit),
            if e.secure { ", mTLS" } else { "" }
        )
    }

    /// What a picture would get wrong: an edge crossing a node (its shape or its labels)
    /// or another edge's label, labels overlapping nodes or each other. Widths are
    /// estimated here; the browser test measures the drawn page.
    pub fn layout_problems(&self) -> Vec<String> {
        let p = self.place();
        let boxes = node_boxes(&p);
        let label_box = |(_, x, y, w): &(String, f64, f64, f64)| label_box(*x, *y, *w);
        let mut problems = Vec::new();
        for (i, pts) in p.edges.iter().enumerate() {
            let e = &self.edges[i];
            let name = format!("edge {} -> {}", e.source.id(), e.dest.id());
            for w in pts.windows(2) {
                for (what, b) in &boxes {
                    if segment_hits(w[0], w[1], *b) {
                        problems.push(format!("{name} crosses {what}"));
                    }
                }
                for (j, l) in p.labels.iter().enumerate() {
                    if j != i && segment_hits(w[0], w[1], label_box(l)) {
                        problems.push(format!("{name} crosses the label {:?}", l.0));
                    }
                }
            }
        }
        for (i, l) in p.labels.iter().enumerate() {
            let a = label_box(l);
            for (what, b) in &boxes {
                if overlap(a, *b) {
                    problems.push(format!("label {:?} overlaps {what}", l.0));
                }
            }
            for m in &p.labels[i + 1..] {
                if overlap(a, label_box(m)) {
                    problems.push(format!("labels {:?} and {:?} overlap", l.0, m.0));
                }
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }

    /// A picture: workloads are circles, topics hexagons, services triangles (as in
    /// Kiali), edges coloured by protocol and labelled with their rate.
    pub fn to_svg(&self) -> String {
        let p = self.place();
        let (w, h) = (p.width, p.height);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        s.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>"##);
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        for (i, (e, pts)) in self.edges.iter().zip(&p.edges).enumerate() {
            let colour = match e.protocol.as_str() {
                "kafka" => "#1f77b4",
                "http" => "#2ca02c",
                _ => "#7f7f7f",
            };
            let points: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
            let _ = writeln!(
                s,
                r#"<polyline class="edge" data-edge="{i}" points="{}" fill="none" stroke="{colour}" stroke-width="2" stroke-linejoin="round" marker-end="url(#arrow)"/>"#,
                points.join(" ")
            );
            let (text, x, y, _) = &p.labels[i];
            let _ = writeln!(
                s,
                r#"<text class="edge-label" data-edge="{i}" x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="{LABEL_SIZE}" fill="{colour}" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"#,
                xml(text)
            );
        }
        for (n, (x, y)) in &p.nodes {
            let (x, y) = (*x, *y);
            let shape = match self.kind(n) {
                NodeKind::Workload => format!(
                    r##"<circle class="node-shape" cx="{x}" cy="{y}" r="22" fill="#e8f1fb" stroke="#1f4e79" stroke-width="2"/>"##
                ),
                NodeKind::Topic => {
                    let pts: Vec<String> = (0..6)
                        .map(|i| {
                            let a = std::f64::consts::PI / 3.0 * i as f64;
                            format!("{:.1},{:.1}", x + 24.0 * a.cos(), y + 24.0 * a.sin())
                        })
                        .collect();
                    format!(
                        r##"<polygon class="node-shape" points="{}" fill="#fff4e0" stroke="#b36b00" stroke-width="2"/>"##,
                        pts.join(" ")
                    )
                }
                NodeKind::Service => format!(
                    r##"<polygon class="node-shape" points="{x},{} {},{} {},{}" fill="#eef7ee" stroke="#2d6a2d" stroke-width="2"/>"##,
                    y - 24.0,
                    x - 22.0,
                    y + 16.0,
                    x + 22.0,
                    y + 16.0
                ),
            };
            let _ = write!(s, r#"<g class="node" data-node="{}">"#, xml(&n.id()));
            s.push_str(&shape);
            let _ = write!(
                s,
                r#"<text class="node-name" x="{x}" y="{}" text-anchor="middle" font-size="{NAME_SIZE}" font-weight="bold">{}</text>"#,
                y + 42.0,
                xml(&n.name)
            );
            let _ = writeln!(
                s,
                r##"<text class="node-name" x="{x}" y="{}" text-anchor="middle" font-size="{NAME_SIZE}" fill="#666">{}</text></g>"##,
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

/// Where [`Graph::place`] puts things: node centres, each edge's polyline (in the order of
/// `Graph::edges`) and its label (text, centre x, baseline y, estimated width).
#[derive(Clone, Debug, Default)]
pub struct Placed {
    pub nodes: BTreeMap<Node, (f64, f64)>,
    pub edges: Vec<Vec<(f64, f64)>>,
    pub labels: Vec<(String, f64, f64, f64)>,
    pub width: f64,
    pub height: f64,
}

/// Layer spacing, row spacing, margins, where edges start from a node's centre, and the
/// horizontal run before an edge turns (past the widest node name's half).
const COLUMN: f64 = 340.0;
const ROW: f64 = 120.0;
const MARGIN_X: f64 = 100.0;
const MARGIN_Y: f64 = 60.0;
const RADIUS: f64 = 27.0;
const RUN: f64 = 80.0;
/// The horizontal extent of an edge's change of row, and how far below its row an edge
/// back runs.
const SLOPE: f64 = 50.0;
const BACK: f64 = 10.0;
const LABEL_SIZE: f64 = 12.0;
const NAME_SIZE: f64 = 12.0;

/// A generous estimate of a sans-serif text's width (the browser test measures it).
fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | ' ' | '/') {
                0.58
            } else if c.is_ascii() {
                0.7
            } else {
                1.25
            }
        })
        .sum::<f64>()
        * size
}

/// The boxes of every node's shape and of its name and namespace below it.
fn node_boxes(p: &Placed) -> Vec<(String, [f64; 4])> {
    let mut boxes = Vec::new();
    for (n, (x, y)) in &p.nodes {
        boxes.push((
            format!("node {}", n.id()),
            [x - 25.0, y - 25.0, x + 25.0, y + 25.0],
        ));
        let w = text_width(&n.name, NAME_SIZE).max(text_width(&n.namespace, NAME_SIZE));
        boxes.push((
            format!("the name of {}", n.id()),
            [x - w / 2.0, y + 30.0, x + w / 2.0, y + 60.0],
        ));
    }
    boxes
}

/// The box of an edge label centred at `x` with its baseline at `y`.
fn label_box(x: f64, y: f64, width: f64) -> [f64; 4] {
    [x - width / 2.0, y - LABEL_SIZE, x + width / 2.0, y + 3.0]
}

fn seg_len(s: &((f64, f64), (f64, f64))) -> f64 {
    let (a, b) = s;
    ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
}

fn overlap(a: [f64; 4], b: [f64; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// Whether segment `a`-`b` passes through the inside of box `[x0, y0, x1, y1]`
/// (Liang-Barsky clipping; touching an edge of the box does not count).
pub fn segment_hits(a: (f64, f64), b: (f64, f64), r: [f64; 4]) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r[0]),
        (dx, r[2] - a.0),
        (-dy, a.1 - r[1]),
        (dy, r[3] - a.1),
    ] {
        if p == 0.0 {
            if q <= 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t1 - t0 > 1e-6
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

    /// The local mesh's graph as `kiosk up` draws it (gateway, issuer, verify reading both
    /// topics and the collection, Connect's own topics both ways).
    fn pipeline(extra: bool) -> Graph {
        let mut g = Graph::default();
        let n = |id: &str| {
            let (ns, name) = id.split_once('/').unwrap();
            Node {
                namespace: ns.into(),
                name: name.into(),
            }
        };
        let mut edges = vec![
            (
                "pipeline/producer",
                "istio-ingress/istio-ingressgateway",
                "http",
                false,
            ),
            ("pipeline/producer", "pipeline/kiosk-issuer", "http", false),
            (
                "istio-ingress/istio-ingressgateway",
                "pipeline/rest",
                "http",
                true,
            ),
            ("pipeline/rest", "kafka/events", "kafka", true),
            ("kafka/events", "pipeline/mirror", "kafka", true),
            ("pipeline/mirror", "kafka/events.mirror", "kafka", true),
            (
                "kafka/events.mirror",
                "pipeline/kiosk-connect",
                "kafka",
                true,
            ),
            ("pipeline/kiosk-connect", "pipeline/mongodb", "tcp", true),
            ("pipeline/verify", "pipeline/mongodb", "tcp", true),
        ];
        if extra {
            edges.extend([
                ("kafka/events", "pipeline/verify", "kafka", true),
                ("kafka/events.mirror", "pipeline/verify", "kafka", true),
                (
                    "pipeline/kiosk-connect",
                    "kafka/kiosk-connect-offsets",
                    "kafka",
                    true,
                ),
                (
                    "kafka/kiosk-connect-status",
                    "pipeline/kiosk-connect",
                    "kafka",
                    true,
                ),
                // Connect writes and reads its own topics: cycles.
                (
                    "pipeline/kiosk-connect",
                    "kafka/kiosk-connect-status",
                    "kafka",
                    true,
                ),
                (
                    "pipeline/kiosk-connect",
                    "kafka/kiosk-connect-configs",
                    "kafka",
                    true,
                ),
                (
                    "kafka/kiosk-connect-configs",
                    "pipeline/kiosk-connect",
                    "kafka",
                    true,
                ),
                // What `kiosk graph` drew before it knew the bundle's bootstrap host.
                (
                    "pipeline/kiosk-connect",
                    "kafka/kiosk-kafka-bootstrap",
                    "tcp",
                    true,
                ),
            ]);
        }
        for (a, b, proto, secure) in edges {
            let (ka, kb) = match proto {
                "kafka" if a.starts_with("kafka/") => (NodeKind::Topic, NodeKind::Workload),
                "kafka" => (NodeKind::Workload, NodeKind::Topic),
                "tcp" => (NodeKind::Workload, NodeKind::Service),
                _ => (NodeKind::Workload, NodeKind::Workload),
            };
            let unit = if proto == "http" { "req/s" } else { "B/s" };
            g.add(n(a), ka, n(b), kb, proto, 2345.0, unit, "m", secure);
        }
        g
    }

    #[test]
    fn no_edge_crosses_a_node_or_another_edges_label() {
        for extra in [false, true] {
            let g = pipeline(extra);
            let problems = g.layout_problems();
            assert!(problems.is_empty(), "{problems:#?}\n{}", g.to_svg());
            // verify's edge to MongoDB no longer runs across the picture on the chain's row.
            let p = g.place();
            let verify = p.nodes[&Node {
                namespace: "pipeline".into(),
                name: "verify".into(),
            }];
            let mirror = p.nodes[&Node {
                namespace: "pipeline".into(),
                name: "mirror".into(),
            }];
            if !extra {
                assert_ne!(verify.1, mirror.1, "verify shares the chain's row");
            }
        }
        // The checker itself finds a crossing: a segment through a node's label.
        assert!(segment_hits(
            (0.0, 10.0),
            (100.0, 10.0),
            [40.0, 0.0, 60.0, 20.0]
        ));
        assert!(!segment_hits(
            (0.0, 30.0),
            (100.0, 30.0),
            [40.0, 0.0, 60.0, 20.0]
        ));
        assert!(
            !segment_hits((0.0, 20.0), (100.0, 20.0), [40.0, 0.0, 60.0, 20.0]),
            "touching"
        );
    }
}
