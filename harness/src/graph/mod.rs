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
//!
//! The queries and the graph built from their answers ([`query`]), the graph itself
//! ([`model`]), where things go ([`layout`]) and the drawing ([`render`]).

pub mod layout;
pub mod model;
pub mod query;
pub mod render;

pub use layout::{segment_hits, Placed};
pub use model::{Edge, Graph, Node, NodeKind, Options};
pub use query::{build, cluster_destination, from_samples, queries, Source};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::InstantSample;

    fn sample(labels: &[(&str, &str)], value: f64) -> InstantSample {
        InstantSample {
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
            ("pipeline/producer", "pipeline/keycloak", "http", false),
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
