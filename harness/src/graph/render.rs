//! The placed graph drawn: SVG, and a self-contained HTML page.

use std::fmt::Write as _;

use super::layout::*;
use super::model::{rate, Graph, NodeKind};

impl Graph {
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

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
