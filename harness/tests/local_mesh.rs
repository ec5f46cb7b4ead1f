//! The local mesh in a box, through the real `kiosk` CLI: `kiosk up` brings up tansu,
//! SecantusDB, Prometheus and one Envoy sidecar per workload, runs the pipeline with 1000
//! records and prints verify's result and the graph; then this test checks the data, the
//! graph edges and the per-topic counters itself, that a second `kiosk up` refuses, and
//! that `kiosk down` stops every process it started.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kiosk_harness::mesh::{read_state, State};
use kiosk_harness::prometheus::PromClient;
use serde_json::Value;

const RECORDS: u64 = 1000;

/// A fresh home for this test's mesh under `target/test-runs/` (kept for inspection).
fn run_dir(test: &str) -> PathBuf {
    let dir = kiosk_harness::paths::root()
        .join("target/test-runs")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kiosk() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiosk"))
}

/// Runs `kiosk down` when the test ends, however it ends.
struct Down(PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = Command::new(kiosk())
            .arg("--home")
            .arg(&self.0)
            .arg("down")
            .status();
    }
}

fn wait_for_line(log: &Path, child: &mut Child, needle: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("kiosk up exited ({status}) before {needle:?}:\n{text}");
        }
        assert!(
            start.elapsed() < timeout,
            "no {needle:?} after {timeout:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn kiosk_up_runs_the_pipeline_with_real_sidecars_and_draws_the_graph() {
    kiosk_harness::paths::filter_wasm().expect("run scripts/build-filter.sh first");
    let home = run_dir("local_mesh");
    let _down = Down(home.clone());
    let out_path = home.join("kiosk-up.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut up = Command::new(kiosk())
        .arg("--home")
        .arg(&home)
        .args(["up", "--records", &RECORDS.to_string()])
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let printed = wait_for_line(
        &out_path,
        &mut up,
        "kiosk: the mesh is up",
        Duration::from_secs(400),
    );
    println!("{printed}");
    assert!(
        printed.contains(&format!("verify: PASS ({RECORDS} records")),
        "{printed}"
    );
    let state: State = read_state(&home).unwrap().expect("mesh.json while up");
    assert_eq!(state.phase, "verified");

    // A second `kiosk up` refuses, naming the running one, and starts nothing.
    let second = Command::new(kiosk())
        .arg("--home")
        .arg(&home)
        .args(["up", "--once"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(
        said.contains("already running") && said.contains("kiosk down"),
        "{said}"
    );
    assert_eq!(
        read_state(&home).unwrap().unwrap().processes,
        state.processes
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The collection holds exactly the records, read here without the pipeline's code.
        let credentials: Value = serde_json::from_slice(
            &std::fs::read(state.run_dir.join("mongodb-credentials.json")).unwrap(),
        )
        .unwrap();
        let uri = format!(
            "mongodb://{}:{}@127.0.0.1:{}/?authSource=admin&directConnection=true",
            credentials["user"].as_str().unwrap(),
            credentials["password"].as_str().unwrap(),
            state.mongodb_port.unwrap()
        );
        let client = mongodb::Client::with_uri_str(&uri).await.unwrap();
        let events = client
            .database("pipeline")
            .collection::<mongodb::bson::Document>("events");
        let count = events
            .count_documents(mongodb::bson::doc! {})
            .await
            .unwrap();
        assert_eq!(count, RECORDS);
        let one = events
            .find_one(mongodb::bson::doc! { "_id": "order-000500" })
            .await
            .unwrap()
            .expect("record 500");
        assert_eq!(
            one.get_document("value")
                .unwrap()
                .get_i64("id")
                .unwrap_or_else(|_| {
                    one.get_document("value")
                        .unwrap()
                        .get_i32("id")
                        .unwrap()
                        .into()
                }),
            500
        );

        // Per-topic record counters from the sidecars, producing and consuming side.
        let prom = PromClient::new(state.prometheus.as_deref().unwrap()).unwrap();
        for (metric, topic, workload) in [
            ("kafka_produced_records_total", "events", "rest"),
            ("kafka_fetched_records_total", "events", "mirror"),
            ("kafka_produced_records_total", "events.mirror", "mirror"),
            ("kafka_fetched_records_total", "events.mirror", "mongo-sink"),
        ] {
            let q = format!(r#"sum({metric}{{topic="{topic}",workload="{workload}"}})"#);
            assert_eq!(prom.sum(&q).await.unwrap(), RECORDS as f64, "{q}");
        }
    });

    // The graph, through the CLI, has every edge of the pipeline.
    let graph = Command::new(kiosk())
        .arg("--home")
        .arg(&home)
        .args(["graph", "--json", "--duration", "300"])
        .output()
        .unwrap();
    assert!(
        graph.status.success(),
        "{}",
        String::from_utf8_lossy(&graph.stderr)
    );
    let graph: Value = serde_json::from_slice(&graph.stdout).unwrap();
    let edges: Vec<(String, String, String)> = graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = |n: &Value| {
                format!(
                    "{}/{}",
                    n["namespace"].as_str().unwrap(),
                    n["name"].as_str().unwrap()
                )
            };
            (
                id(&e["source"]),
                id(&e["dest"]),
                e["protocol"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [
        ("pipeline/producer", "pipeline/rest", "http"),
        ("pipeline/rest", "kafka/events", "kafka"),
        ("kafka/events", "pipeline/mirror", "kafka"),
        ("pipeline/mirror", "kafka/events.mirror", "kafka"),
        ("kafka/events.mirror", "pipeline/mongo-sink", "kafka"),
        ("pipeline/mongo-sink", "pipeline/mongodb", "tcp"),
    ] {
        let found = edges
            .iter()
            .any(|(s, d, p)| (s.as_str(), d.as_str(), p.as_str()) == expected);
        assert!(found, "missing edge {expected:?} in {edges:?}");
    }
    assert!(state.run_dir.join("graph.svg").is_file());

    // `kiosk down` stops exactly what `kiosk up` started, and `kiosk up` exits cleanly.
    let down = Command::new(kiosk())
        .arg("--home")
        .arg(&home)
        .arg("down")
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let start = Instant::now();
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "kiosk up still runs after kiosk down"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(status.success(), "kiosk up exited with {status}");
    let alive: Vec<_> = state.processes.iter().filter(|p| p.is_alive()).collect();
    assert!(
        alive.is_empty(),
        "still running after kiosk down: {alive:?}"
    );
    assert!(read_state(&home).unwrap().is_none(), "mesh.json removed");
    let mut rest = String::new();
    let _ = std::fs::File::open(&out_path)
        .unwrap()
        .read_to_string(&mut rest);
    assert!(rest.contains("kiosk: stopping (SIGTERM)"), "{rest}");
}
