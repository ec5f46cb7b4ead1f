//! `kiosk dashboard`: the bundle's Grafana dashboard (`charts/kiosk-filter/dashboards/
//! kiosk-kafka.json`, the file the chart ships) drawn without Grafana: the same panels, in
//! the same grid, from the same PromQL, as one self-contained HTML page (the data and the
//! drawing script inline; nothing is fetched when it is opened).
//!
//! Grafana's variables are expanded as Grafana expands them: `$namespace` and `$topic` at
//! "All" (their `allValue`, `.*`), `$__rate_interval` as max(4 × scrape interval, step +
//! scrape interval).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::prometheus::PromClient;

/// The dashboard, as the chart ships it.
pub const DASHBOARD_JSON: &str =
    include_str!("../../charts/kiosk-filter/dashboards/kiosk-kafka.json");

/// One query of a panel.
#[derive(Clone, Debug, Serialize)]
pub struct Target {
    pub expr: String,
    pub legend: String,
}

/// A panel (or a row heading, with no targets).
#[derive(Clone, Debug, Serialize)]
pub struct Panel {
    pub title: String,
    pub description: String,
    /// `row` or `timeseries`.
    pub kind: String,
    pub unit: String,
    pub targets: Vec<Target>,
    /// Grafana's grid: x, y, w, h (24 columns).
    pub grid: [u64; 4],
}

/// The panels of a dashboard JSON in reading order (rows included), refusing a panel type
/// or variable this page cannot draw.
pub fn panels(dashboard: &Value) -> Result<Vec<Panel>> {
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let ty = v["type"].as_str().unwrap_or("");
        let name = v["name"].as_str().unwrap_or("");
        if ty == "query" && v["allValue"].as_str().is_none() {
            bail!("variable ${name}: no allValue (the page draws every variable at All)");
        }
        if !matches!(ty, "query" | "datasource") {
            bail!("variable ${name}: type {ty} is not drawn");
        }
    }
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().context("no panels")? {
        let kind = p["type"].as_str().unwrap_or("").to_string();
        if !matches!(kind.as_str(), "row" | "timeseries") {
            bail!("panel {}: type {kind} is not drawn", p["title"]);
        }
        let grid = ["x", "y", "w", "h"].map(|k| p["gridPos"][k].as_u64().unwrap_or(0));
        out.push(Panel {
            title: p["title"].as_str().unwrap_or("").to_string(),
            description: p["description"].as_str().unwrap_or("").to_string(),
            unit: p["fieldConfig"]["defaults"]["unit"]
                .as_str()
                .unwrap_or("short")
                .to_string(),
            targets: p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| Target {
                    expr: t["expr"].as_str().unwrap_or("").to_string(),
                    legend: t["legendFormat"].as_str().unwrap_or("").to_string(),
                })
                .collect(),
            kind,
            grid,
        });
    }
    out.sort_by_key(|p| (p.grid[1], p.grid[0]));
    Ok(out)
}

/// The dashboard the chart ships, parsed.
pub fn bundled() -> Result<Vec<Panel>> {
    panels(&serde_json::from_str(DASHBOARD_JSON).context("the dashboard JSON")?)
}

/// A query with Grafana's variables expanded: every query variable at All, and
/// `$__rate_interval` (and its `${...}` form) as given.
pub fn expand(expr: &str, dashboard: &Value, rate_interval: &str) -> String {
    let mut out = expr
        .replace("${__rate_interval}", rate_interval)
        .replace("$__rate_interval", rate_interval);
    for v in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(all)) = (v["name"].as_str(), v["allValue"].as_str()) {
            out = out
                .replace(&format!("${{{name}}}"), all)
                .replace(&format!("${name}"), all);
        }
    }
    out
}

/// Grafana's legend: `{{label}}` replaced by the series' label values.
pub fn legend(format: &str, labels: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = format;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find("}}") else {
            break;
        };
        let name = rest[at + 2..at + end].trim();
        out.push_str(labels.get(name).map_or("", String::as_str));
        rest = &rest[at + end + 2..];
    }
    out.push_str(rest);
    let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.trim_matches(|c: char| !c.is_alphanumeric()).is_empty() {
        // A series without the legend's labels (`or vector(0)`): Grafana shows the query.
        "none".to_string()
    } else {
        out
    }
}

/// One drawn series.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A panel with its data.
#[derive(Clone, Debug, Serialize)]
pub struct Drawn {
    pub panel: Panel,
    /// The queries as run (variables expanded).
    pub queries: Vec<String>,
    pub series: Vec<Series>,
}

/// The window, step and rate interval of a page.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub end: f64,
    pub seconds: f64,
    /// Prometheus's scrape interval (the datasource's, in Grafana).
    pub scrape: f64,
}

impl Window {
    /// About 150 points per series, at least one per scrape.
    pub fn step(&self) -> f64 {
        (self.seconds / 150.0).max(self.scrape).ceil()
    }

    /// Grafana: max(4 × scrape interval, step + scrape interval).
    pub fn rate_interval(&self) -> String {
        format!(
            "{}s",
            (4.0 * self.scrape).max(self.step() + self.scrape).ceil()
        )
    }
}

/// Run every panel's queries over `window`.
pub async fn query(prom: &PromClient, window: Window) -> Result<Vec<Drawn>> {
    let dashboard: Value = serde_json::from_str(DASHBOARD_JSON)?;
    let mut out = Vec::new();
    for panel in panels(&dashboard)? {
        let mut drawn = Drawn {
            panel: panel.clone(),
            queries: Vec::new(),
            series: Vec::new(),
        };
        for t in &panel.targets {
            let q = expand(&t.expr, &dashboard, &window.rate_interval());
            let result = prom
                .query_range(&q, window.end - window.seconds, window.end, window.step())
                .await?;
            for (labels, points) in result {
                drawn.series.push(Series {
                    name: legend(&t.legend, &labels),
                    points,
                });
            }
            drawn.queries.push(q);
        }
        out.push(drawn);
    }
    Ok(out)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page: a 24-column grid as Grafana's, each panel an SVG chart drawn by the inline
/// script from the inline data. Each panel tells what it drew in `data-series` and
/// `data-points`; `body[data-drawn]` counts the panels with data once drawing is done.
pub fn to_html(drawn: &[Drawn], prometheus: &str, window: Window) -> String {
    let mut cells = String::new();
    for (i, d) in drawn.iter().enumerate() {
        let [_, _, w, h] = d.panel.grid;
        if d.panel.kind == "row" {
            let _ = writeln!(
                cells,
                r#"<h2 class="row" style="grid-column: span 24">{}</h2>"#,
                html_escape(&d.panel.title)
            );
            continue;
        }
        let queries: String = d
            .queries
            .iter()
            .map(|q| format!("<code>{}</code>", html_escape(q)))
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = writeln!(
            cells,
            r#"<section class="panel" id="p{i}" data-title="{}" style="grid-column: span {w}; min-height: {}px"><h3 title="{}">{}</h3><svg class="chart" viewBox="0 0 600 220" preserveAspectRatio="none"></svg><div class="legend"></div><details><summary>query</summary>{queries}</details></section>"#,
            html_escape(&d.panel.title),
            h * 34,
            html_escape(&d.panel.description),
            html_escape(&d.panel.title),
        );
    }
    let data: Vec<Value> = drawn
        .iter()
        .enumerate()
        .filter(|(_, d)| d.panel.kind != "row")
        .map(|(i, d)| {
            json!({
                "id": format!("p{i}"),
                "unit": d.panel.unit,
                "series": d.series,
                // One time range for every panel, as Grafana's.
                "t0": window.end - window.seconds,
                "t1": window.end
            })
        })
        .collect();
    // JSON inside <script>: `</` must not close the element.
    let data = serde_json::to_string(&data)
        .unwrap_or_default()
        .replace("</", "<\\/");
    let panels = drawn.iter().filter(|d| d.panel.kind != "row").count();
    format!(
        r##"<!doctype html>
<html><head><meta charset="utf-8"><title>kiosk dashboard</title>
<style>
body{{font-family:sans-serif;margin:16px;background:#f4f5f5;color:#222}}
h1{{font-size:20px;margin:0 0 4px}} .meta{{color:#555;font-size:12px;margin-bottom:8px}}
.grid{{display:grid;grid-template-columns:repeat(24,1fr);gap:8px}}
h2.row{{font-size:15px;margin:10px 0 0;border-bottom:1px solid #ccc}}
.panel{{background:#fff;border:1px solid #dcdcdc;border-radius:3px;padding:6px 8px;box-sizing:border-box}}
.panel h3{{font-size:13px;margin:0 0 4px}} svg.chart{{width:100%;height:190px;display:block}}
.legend{{font-size:11px;display:flex;flex-wrap:wrap;gap:2px 12px;margin-top:2px}}
.legend i{{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}}
details{{font-size:10px;color:#666}} code{{font-size:10px;word-break:break-all}}
.nodata{{fill:#999;font-size:16px}}
</style></head><body>
<h1>kiosk: Kafka per topic</h1>
<div class="meta">The bundle's Grafana dashboard (charts/kiosk-filter/dashboards/kiosk-kafka.json) from Prometheus {prom}: the last {secs:.0} s, step {step} s, $__rate_interval {ri}; {panels} panels.</div>
<div class="grid">
{cells}</div>
<script type="application/json" id="data">{data}</script>
<script>
(function () {{
  var NS = "http://www.w3.org/2000/svg";
  var colours = ["#7eb26d", "#eab839", "#6ed0e0", "#ef843c", "#e24d42", "#1f78c1", "#ba43a9", "#705da0", "#508642", "#cca300"];
  function fmt(v, unit) {{
    var a = Math.abs(v), s;
    if (unit === "Bps") {{
      if (a >= 1048576) s = (v / 1048576).toFixed(1) + " MiB/s";
      else if (a >= 1024) s = (v / 1024).toFixed(1) + " KiB/s";
      else s = v.toFixed(0) + " B/s";
      return s;
    }}
    if (a >= 1e6) s = (v / 1e6).toFixed(1) + "M";
    else if (a >= 1e3) s = (v / 1e3).toFixed(1) + "k";
    else if (a >= 10 || a === 0) s = v.toFixed(0);
    else s = v.toFixed(2);
    if (unit === "ms") return s + " ms";
    if (unit === "reqps") return s + " req/s";
    return s;
  }}
  function el(name, attrs, parent) {{
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    parent.appendChild(e);
    return e;
  }}
  var data = JSON.parse(document.getElementById("data").textContent);
  var drawn = 0;
  data.forEach(function (p) {{
    var section = document.getElementById(p.id), svg = section.querySelector("svg"), legend = section.querySelector(".legend");
    var W = 600, H = 220, L = 70, R = 10, T = 10, B = 24;
    var t0 = Infinity, t1 = -Infinity, vmax = 0, points = 0;
    p.series.forEach(function (s) {{ s.points.forEach(function (q) {{
      t0 = Math.min(t0, q[0]); t1 = Math.max(t1, q[0]); vmax = Math.max(vmax, q[1]); points++;
    }}); }});
    section.dataset.series = p.series.length;
    section.dataset.points = points;
    if (points === 0) {{
      var t = el("text", {{ x: W / 2, y: H / 2, "text-anchor": "middle", "class": "nodata" }}, svg);
      t.textContent = "No data";
      return;
    }}
    if (vmax <= 0) vmax = 1;
    if (p.t1 > p.t0) {{ t0 = p.t0; t1 = p.t1; }}
    if (t1 <= t0) {{ t0 -= 1; t1 += 1; }}
    var x = function (t) {{ return L + (t - t0) / (t1 - t0) * (W - L - R); }};
    var y = function (v) {{ return H - B - v / vmax * (H - T - B); }};
    for (var i = 0; i <= 4; i++) {{
      var v = vmax * i / 4;
      el("line", {{ x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e5e5e5" }}, svg);
      var lab = el("text", {{ x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#555" }}, svg);
      lab.textContent = fmt(v, p.unit);
    }}
    [t0, (t0 + t1) / 2, t1].forEach(function (t, i) {{
      var d = new Date(t * 1000), lab = el("text", {{ x: x(t), y: H - 6, "text-anchor": ["start", "middle", "end"][i], "font-size": 11, fill: "#555" }}, svg);
      lab.textContent = d.toTimeString().slice(0, 8);
    }});
    p.series.forEach(function (s, i) {{
      var c = colours[i % colours.length];
      if (s.points.length > 0) {{
        var d = s.points.map(function (q, j) {{ return (j ? "L" : "M") + x(q[0]).toFixed(1) + " " + y(q[1]).toFixed(1); }}).join(" ");
        el("path", {{ d: d, fill: "none", stroke: c, "stroke-width": 1.5, "vector-effect": "non-scaling-stroke", "class": "series" }}, svg);
      }}
      var item = document.createElement("span"), sw = document.createElement("i");
      sw.style.background = c;
      item.appendChild(sw);
      var last = s.points.length ? s.points[s.points.length - 1][1] : NaN;
      item.appendChild(document.createTextNode(s.name + (isNaN(last) ? "" : "  " + fmt(last, p.unit))));
      legend.appendChild(item);
    }});
    drawn++;
  }});
  document.body.dataset.drawn = drawn;
  document.body.dataset.panels = data.length;
}})();
</script>
</body></html>
"##,
        prom = html_escape(prometheus),
        secs = window.seconds,
        step = window.step(),
        ri = window.rate_interval(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_dashboard_has_every_panel_the_issue_lists() {
        let panels = bundled().unwrap();
        let text: String = panels
            .iter()
            .flat_map(|p| p.targets.iter().map(|t| t.expr.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        for metric in [
            "kafka_produced_records_total",
            "kafka_fetched_records_total",
            "kafka_produced_bytes_total",
            "kafka_fetched_bytes_total",
            "kafka_consumer_lag",
            "kafka_response_errors_total",
            "kafka_request_duration_milliseconds_bucket",
            "kafka_decode_errors_total",
            "envoy_http_jwt_authn_denied",
            "envoy_http_rbac",
        ] {
            assert!(text.contains(metric), "no panel reads {metric}");
        }
        // Every metric a panel reads is one the filter emits, or the gateway's.
        let contract: Value = serde_json::from_str(
            &std::fs::read_to_string(crate::paths::root().join("filter/contract/metrics.json"))
                .unwrap(),
        )
        .unwrap();
        let known: Vec<String> = contract["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_string())
            .collect();
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with("kafka_") {
                let base = word.trim_end_matches("_bucket");
                assert!(
                    known.iter().any(|k| k == base),
                    "{word} is not a filter metric"
                );
            }
        }
        // The grid: no two panels overlap.
        let cells: Vec<[u64; 4]> = panels.iter().map(|p| p.grid).collect();
        for (i, a) in cells.iter().enumerate() {
            for b in &cells[i + 1..] {
                let apart = a[0] + a[2] <= b[0]
                    || b[0] + b[2] <= a[0]
                    || a[1] + a[3] <= b[1]
                    || b[1] + b[3] <= a[1];
                assert!(apart, "panels at {a:?} and {b:?} overlap");
            }
        }
    }

    #[test]
    fn variables_expand_as_grafana_expands_them_at_all() {
        let dashboard: Value = serde_json::from_str(DASHBOARD_JSON).unwrap();
        let q = expand(
            r#"sum(rate(x{local_namespace=~"$namespace",topic=~"${topic}"}[$__rate_interval]))"#,
            &dashboard,
            "4s",
        );
        assert_eq!(q, r#"sum(rate(x{local_namespace=~".*",topic=~".*"}[4s]))"#);
        let w = Window {
            end: 0.0,
            seconds: 300.0,
            scrape: 1.0,
        };
        assert_eq!(w.step(), 2.0);
        assert_eq!(w.rate_interval(), "4s");
        let labels: BTreeMap<String, String> = [("topic".to_string(), "events".to_string())].into();
        assert_eq!(
            legend("{{topic}} → {{local_workload}}", &labels),
            "events →"
        );
        assert_eq!(legend("{{api}} {{error}}", &BTreeMap::new()), "none");
    }

    #[test]
    fn the_page_carries_its_data_inline_and_fetches_nothing() {
        let panels = bundled().unwrap();
        let drawn: Vec<Drawn> = panels
            .into_iter()
            .map(|panel| Drawn {
                series: vec![Series {
                    name: "a </script> b".into(),
                    points: vec![(1.0, 2.0), (2.0, 3.0)],
                }],
                queries: panel.targets.iter().map(|t| t.expr.clone()).collect(),
                panel,
            })
            .collect();
        let html = to_html(
            &drawn,
            "http://127.0.0.1:9090",
            Window {
                end: 10.0,
                seconds: 300.0,
                scrape: 1.0,
            },
        );
        assert!(!html.contains("a </script> b"), "data closes its script");
        for remote in [
            "src=\"http",
            "href=\"http",
            "@import",
            "fetch(",
            "XMLHttpRequest",
        ] {
            assert!(!html.contains(remote), "the page loads something: {remote}");
        }
    }
}
