//! Helpers of the live mesh tests: a mesh of their own through the real `kiosk` CLI, the
//! run's files, and headless Chromium (Debian's `chromium`) for the pages.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kiosk_harness::mesh::{read_state, State};

/// One mesh at a time: two on two cores would only time each other out.
pub static ONE_MESH: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A fresh home for a test's mesh under `target/test-runs/` (kept for inspection).
pub fn run_dir(test: &str) -> PathBuf {
    kiosk_harness::paths::run_dir(test).unwrap()
}

pub fn kiosk() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiosk"))
}

/// `kiosk --home <home> <args>`, its status and everything it printed.
pub fn kiosk_run(home: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(kiosk())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `kiosk --home <home> <args>`: its status, standard output and standard error apart.
pub fn kiosk_output(home: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(kiosk())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A running mesh: `kiosk down` when dropped, however the test ends.
pub struct Mesh {
    pub home: PathBuf,
    pub up: Child,
    pub printed: String,
    pub state: State,
}

impl Mesh {
    /// `kiosk up <args>` (kept up), waiting until the mesh is up and verify passed.
    pub fn up(home: &Path, args: &[&str]) -> Mesh {
        kiosk_harness::paths::filter_wasm().expect("run scripts/build-filter.sh first");
        let out_path = home.join("kiosk-up.out");
        let out = std::fs::File::create(&out_path).unwrap();
        let mut up = Command::new(kiosk())
            .arg("--home")
            .arg(home)
            .arg("up")
            .args(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let start = Instant::now();
        let printed = loop {
            let text = std::fs::read_to_string(&out_path).unwrap_or_default();
            if text.contains("kiosk: the mesh is up") {
                break text;
            }
            if let Ok(Some(status)) = up.try_wait() {
                panic!("kiosk up exited ({status}) before the mesh was up:\n{text}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(400),
                "the mesh is not up after 400 s:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        assert!(printed.contains("verify: PASS"), "{printed}");
        let state = read_state(home).unwrap().expect("mesh.json while up");
        Mesh {
            home: home.to_path_buf(),
            up,
            printed,
            state,
        }
    }

    pub fn prometheus(&self) -> kiosk_harness::prometheus::PromClient {
        kiosk_harness::prometheus::PromClient::new(self.state.prometheus.as_deref().unwrap())
            .unwrap()
    }

    /// `program args` in pod `pod` (its network namespace and hosts file).
    pub fn in_pod(&self, pod: &str) -> Command {
        let network = self.state.network.as_ref().expect("pods");
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &network.pod(pod).unwrap().netns]);
        c
    }

    /// Stop the mesh and check `kiosk up` exits cleanly, within a minute.
    pub fn down(mut self) {
        let (ok, said) = kiosk_run(&self.home, &["down"]);
        assert!(ok, "{said}");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.up.try_wait().unwrap() {
                break status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "kiosk up still runs a minute after kiosk down"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(status.success(), "kiosk up exited with {status}");
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        let _ = kiosk_run(&self.home, &["down"]);
        let _ = self.up.kill();
        let _ = self.up.wait();
    }
}

/// An edge of `kiosk graph --json`: source and destination as `namespace/name`, protocol,
/// whether Istio mTLS carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphEdge {
    pub source: String,
    pub dest: String,
    pub protocol: String,
    pub secure: bool,
}

impl Mesh {
    /// The graph as `kiosk graph --json` draws it from the mesh's Prometheus, rates over the
    /// last `duration_secs`.
    pub fn graph_edges(&self, duration_secs: u64) -> Vec<GraphEdge> {
        let duration = duration_secs.to_string();
        let args = ["graph", "--json", "--duration", &duration];
        let (ok, stdout, stderr) = kiosk_output(&self.home, &args);
        assert!(ok, "kiosk graph: {stderr}");
        let graph: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        let id = |n: &serde_json::Value| {
            format!(
                "{}/{}",
                n["namespace"].as_str().unwrap(),
                n["name"].as_str().unwrap()
            )
        };
        graph["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| GraphEdge {
                source: id(&e["source"]),
                dest: id(&e["dest"]),
                protocol: e["protocol"].as_str().unwrap().to_string(),
                secure: e["secure"].as_bool().unwrap(),
            })
            .collect()
    }
}

/// The text of every file under `run` but those (and the directories) named in `skip`: the
/// data stores (Kafka's log directories, MongoDB's files, Prometheus's TSDB, Keycloak's home)
/// and the secrets, which hold data by design. Symbolic links are not followed.
pub fn texts_outside(run: &Path, skip: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![run.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if skip.contains(&name.as_str()) {
                continue;
            }
            let path = entry.path();
            // A link is not the run's (Keycloak's home links its distribution).
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_symlink() {
                continue;
            }
            if kind.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((
                    path.display().to_string(),
                    String::from_utf8_lossy(&bytes).to_string(),
                ));
            }
        }
    }
    out
}

/// Poll `f` until it holds (Prometheus scrapes every second).
pub fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Debian's Chromium (scripts/setup.sh installs it).
pub fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("chromium (Debian's chromium; scripts/setup.sh installs it)")
}

/// Headless Chromium as the issue asks: no sandbox (root), no GPU, no network of its own,
/// a fresh profile.
fn headless(profile: &Path) -> Command {
    let _ = std::fs::remove_dir_all(profile);
    std::fs::create_dir_all(profile).unwrap();
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--hide-scrollbars",
        // Lets the page's scripts finish before the DOM is read.
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// The DOM of `page` after its scripts ran.
pub fn dump_dom(page: &Path) -> String {
    let out = headless(&page.with_extension("chromium-profile"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium --dump-dom: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// A screenshot of `page` into `png`, `width` x `height`.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(png);
    let out = headless(&page.with_extension("chromium-profile"))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success() && png.is_file(),
        "chromium --screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 5000,
        "not a picture"
    );
}

/// The value of attribute `name` on the first element whose opening tag contains `tag`.
pub fn attribute(dom: &str, tag: &str, name: &str) -> Option<String> {
    let at = dom.find(tag)?;
    let open = &dom[dom[..at].rfind('<')?..];
    let open = &open[..open.find('>')?];
    let key = format!("{name}=\"");
    let v = &open[open.find(&key)? + key.len()..];
    Some(v[..v.find('"')?].to_string())
}

/// Every opening tag of `dom` starting with `<element` and containing `needle`.
pub fn tags<'a>(dom: &'a str, element: &str, needle: &str) -> Vec<&'a str> {
    dom.match_indices(&format!("<{element} "))
        .filter_map(|(i, _)| dom[i..].find('>').map(|end| &dom[i..i + end + 1]))
        .filter(|t| t.contains(needle))
        .collect()
}

/// The value of attribute `name` in one opening tag.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let v = &tag[tag.find(&key)? + key.len()..];
    Some(v[..v.find('"')?].to_string())
}
