//! Live tier: the per-topic dashboard (issue 18). Every panel's PromQL of the bundle's
//! Grafana dashboard parses (promtool); after a real `kiosk up`, every query returns data
//! from the local Prometheus, and `kiosk dashboard`'s page, opened in headless Chromium,
//! draws every panel with data (a screenshot is kept). `kiosk graph`'s page gets the same
//! browser test: measured in the browser, no edge crosses a node or another edge's label.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{attr, dump_dom, eventually, kiosk_run, run_dir, screenshot, tags, Mesh, ONE_MESH};
use kiosk_harness::dashboard;
use serde_json::Value;

/// The dashboard's queries with Grafana's variables expanded (as Grafana sends them).
fn queries(rate_interval: &str) -> Vec<(String, String)> {
    let board: Value = serde_json::from_str(dashboard::DASHBOARD_JSON).unwrap();
    dashboard::bundled()
        .unwrap()
        .into_iter()
        .flat_map(|p| {
            let board = board.clone();
            let title = p.title.clone();
            p.targets.into_iter().map(move |t| {
                (
                    title.clone(),
                    dashboard::expand(&t.expr, &board, rate_interval),
                )
            })
        })
        .collect()
}

/// `promtool check rules` on the queries as recording rules: whether each parses.
fn promtool_check(dir: &Path, exprs: &[String]) -> (bool, String) {
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({ "record": format!("kiosk:dashboard_query_{i}"), "expr": e }))
        .collect();
    // JSON is YAML.
    let file = dir.join("dashboard-rules.yml");
    let doc = serde_json::json!({ "groups": [{ "name": "kiosk-dashboard", "rules": rules }] });
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool (scripts/setup.sh installs Debian's prometheus)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn every_panel_query_parses_with_promtool() {
    let dir = run_dir("dashboard_promtool");
    let exprs: Vec<String> = queries("1m").into_iter().map(|(_, q)| q).collect();
    assert!(exprs.len() >= 13, "{exprs:?}");
    let (ok, said) = promtool_check(&dir, &exprs);
    assert!(ok, "{said}");
    assert!(
        said.contains(&format!("{} rules found", exprs.len())),
        "{said}"
    );
    // And promtool would say so of a query that does not parse.
    let (ok, said) = promtool_check(&dir, &["sum(rate(kafka_requests_total[1m])".into()]);
    assert!(!ok, "a broken query passed: {said}");
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn the_dashboard_page_draws_every_panel_and_the_graph_page_crosses_nothing() {
    let _one = ONE_MESH.lock().unwrap_or_else(|e| e.into_inner());
    let home = run_dir("dashboard_live");
    let mesh = Mesh::up(&home, &["--records", "2400", "--rate", "80"]);
    let run = mesh.state.run_dir.clone();
    let prom = mesh.prometheus();
    let rt = tokio::runtime::Runtime::new().unwrap();

    // A request without a token and one with a bad token, so the ingress panels show
    // refusals too.
    for auth in [None, Some("Authorization: Bearer not.a.jwt")] {
        let mut c = mesh.in_pod("producer");
        c.args(["curl", "-s", "-o", "/dev/null", "-X", "POST"]);
        if let Some(a) = auth {
            c.args(["-H", a]);
        }
        c.arg("http://istio-ingressgateway.istio-ingress.svc.cluster.local/topics/events");
        c.output().unwrap();
    }

    // Every query returns data from the local Prometheus.
    let window = 600.0;
    eventually(
        "the ingress refusals scraped",
        Duration::from_secs(20),
        || {
            rt.block_on(prom.sum("sum(envoy_http_jwt_authn_denied) + sum(envoy_http_rbac{authz_enforce_result=\"denied\"})"))
            .unwrap_or(0.0)
            >= 2.0
        },
    );
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut empty = Vec::new();
    for (title, q) in queries("10s") {
        let series = rt
            .block_on(prom.query_range(&q, end - window, end, 2.0))
            .unwrap();
        if series.iter().all(|(_, points)| points.is_empty()) {
            empty.push(format!("{title}: {q}"));
        }
    }
    assert!(empty.is_empty(), "queries without data: {empty:#?}");

    // `kiosk dashboard` draws the page; Chromium runs its script: every panel drew data.
    let (ok, said) = kiosk_run(&home, &["dashboard", "--window", "90"]);
    assert!(ok, "{said}");
    let page = run.join("dashboard.html");
    let panels = dashboard::bundled()
        .unwrap()
        .into_iter()
        .filter(|p| p.kind != "row")
        .count();
    let dom = dump_dom(&page);
    let sections = tags(&dom, "section", "class=\"panel\"");
    assert_eq!(sections.len(), panels, "{dom:.3000}");
    for s in &sections {
        let points: usize = attr(s, "data-points")
            .unwrap_or_default()
            .parse()
            .unwrap_or(0);
        assert!(points > 0, "a panel drew no data: {s}");
    }
    let body = tags(&dom, "body", "data-drawn");
    assert_eq!(
        body.first().and_then(|b| attr(b, "data-drawn")),
        Some(panels.to_string()),
        "{body:?}"
    );
    assert!(dom.matches("class=\"series\"").count() >= panels);
    screenshot(&page, &home.join("dashboard.png"), 1400, 1900);

    // graph.html, measured in the browser: no edge crosses a node (its shape or its name)
    // or another edge's label; labels overlap nothing.
    let (ok, said) = kiosk_run(&home, &["graph", "--duration", "300"]);
    assert!(ok, "{said}");
    let graph = run.join("graph.html");
    let checked = home.join("graph-check.html");
    let html = std::fs::read_to_string(&graph).unwrap();
    std::fs::write(
        &checked,
        html.replace(
            "</body>",
            &format!("<script>{LAYOUT_CHECK}</script></body>"),
        ),
    )
    .unwrap();
    let dom = dump_dom(&checked);
    let body = tags(&dom, "body", "data-layout-problems");
    let body = body.first().expect("the layout check ran");
    let counted = attr(body, "data-checked").unwrap();
    let [edges, obstacles, labels]: [usize; 3] = counted
        .split('/')
        .map(|n| n.parse().unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    assert!(
        edges >= 9 && obstacles >= 30 && labels == edges,
        "{counted}"
    );
    let problems = attr(body, "data-layout-problems")
        .unwrap()
        .replace("&quot;", "\"");
    assert_eq!(problems, "[]", "graph.html: {problems}");
    // The whole picture: its width and height, and the page's heading.
    let size = |name: &str, default: f64| {
        tags(&html, "svg", "viewBox")
            .first()
            .and_then(|t| attr(t, name))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(default) as u32
    };
    let (w, h) = (size("width", 1400.0) + 80, size("height", 500.0) + 200);
    screenshot(&graph, &home.join("graph.png"), w, h);
    mesh.down();
}

/// Measures the drawn graph with the browser's own text metrics (getBBox): every edge
/// polyline segment against every node shape and name and every other edge's label, and
/// labels against nodes and each other. Writes what it found into the body's attributes.
const LAYOUT_CHECK: &str = r#"
(function () {
  function box(e) { var b = e.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; }
  function overlap(a, b) { return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]; }
  function hits(a, b, r) {
    var dx = b[0] - a[0], dy = b[1] - a[1], t0 = 0, t1 = 1;
    var tests = [[-dx, a[0] - r[0]], [dx, r[2] - a[0]], [-dy, a[1] - r[1]], [dy, r[3] - a[1]]];
    for (var i = 0; i < 4; i++) {
      var p = tests[i][0], q = tests[i][1];
      if (p === 0) { if (q <= 0) return false; }
      else { var t = q / p; if (p < 0) t0 = Math.max(t0, t); else t1 = Math.min(t1, t); }
    }
    return t1 - t0 > 1e-6;
  }
  var obstacles = [], labels = [], edges = [], problems = [];
  document.querySelectorAll("g.node").forEach(function (g) {
    g.querySelectorAll(".node-shape, .node-name").forEach(function (e) {
      obstacles.push([g.getAttribute("data-node") + " " + (e.textContent || "shape"), box(e)]);
    });
  });
  document.querySelectorAll("text.edge-label").forEach(function (t) {
    labels.push([t.getAttribute("data-edge"), t.textContent, box(t)]);
  });
  document.querySelectorAll("polyline.edge").forEach(function (p) {
    var pts = p.getAttribute("points").trim().split(/\s+/).map(function (s) { return s.split(",").map(Number); });
    edges.push([p.getAttribute("data-edge"), pts]);
  });
  edges.forEach(function (e) {
    for (var i = 0; i + 1 < e[1].length; i++) {
      var a = e[1][i], b = e[1][i + 1];
      obstacles.forEach(function (o) { if (hits(a, b, o[1])) problems.push("edge " + e[0] + " crosses " + o[0]); });
      labels.forEach(function (l) { if (l[0] !== e[0] && hits(a, b, l[2])) problems.push("edge " + e[0] + " crosses the label " + l[1]); });
    }
  });
  labels.forEach(function (l, i) {
    obstacles.forEach(function (o) { if (overlap(l[2], o[1])) problems.push("label " + l[1] + " overlaps " + o[0]); });
    labels.slice(i + 1).forEach(function (m) { if (overlap(l[2], m[2])) problems.push("labels " + l[1] + " and " + m[1] + " overlap"); });
  });
  document.body.setAttribute("data-checked", edges.length + "/" + obstacles.length + "/" + labels.length);
  document.body.setAttribute("data-layout-problems", JSON.stringify(problems));
})();
"#;
