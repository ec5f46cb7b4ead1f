//! The recorded Kafka sessions (tests/data/kafka-sessions/<dialect>: librdkafka against
//! Apache Kafka 4.3.1, and against tansu 0.6.0) through a real Envoy with the kiosk filter,
//! byte for byte, one sidecar per dialect: for each recorded connection, a client pushes exactly the
//! recorded client bytes in odd chunk sizes; an upstream checks it receives exactly those
//! bytes and answers with exactly the recorded broker bytes, each response once its
//! request has fully arrived, in odd chunk sizes too; the client checks it receives exactly
//! the broker bytes. Envoy's own statistics must then show the session decoded: every
//! request counted under its API, the produced and fetched records of every topic and
//! each codec the dialect recorded, and no decode error (so the test cannot pass with the
//! filter absent).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kiosk_harness::prometheus::scrape;
use kiosk_harness::recording::{self, RecordedTopic};
use kiosk_harness::{paths, ports};
use kiosk_tests::{kafka_sidecar, run_dir, wait_flush};

/// Odd chunk sizes, cycled through by both ends.
const CHUNKS: &[usize] = &[1, 3, 7, 2, 13, 64, 5, 127, 1, 1000, 11, 4099, 17, 2, 333];
/// Requests a client may have ahead of the responses it has received.
const AHEAD: usize = 4;

/// One recorded connection, with its frames' ends and correlation ids.
struct Session {
    name: String,
    client: Vec<u8>,
    server: Vec<u8>,
    /// (end offset, correlation id, api key) of every complete request frame.
    requests: Vec<(usize, i32, i16)>,
    /// (end offset, correlation id) of every complete response frame.
    responses: Vec<(usize, i32)>,
}

impl Session {
    fn load(dir: &Path, name: &str) -> Session {
        let client = std::fs::read(dir.join(format!("{name}.client"))).unwrap();
        let server = std::fs::read(dir.join(format!("{name}.server"))).unwrap();
        let requests = frames(&client)
            .into_iter()
            .map(|(end, frame)| {
                let key = i16::from_be_bytes([frame[0], frame[1]]);
                (
                    end,
                    i32::from_be_bytes(frame[4..8].try_into().unwrap()),
                    key,
                )
            })
            .collect();
        let responses = frames(&server)
            .into_iter()
            .map(|(end, frame)| (end, i32::from_be_bytes(frame[0..4].try_into().unwrap())))
            .collect();
        Session {
            name: name.to_string(),
            client,
            server,
            requests,
            responses,
        }
    }

    /// How many broker bytes may be sent once `received` client bytes have arrived: every
    /// response whose request is complete, in order (a response to nothing recorded waits
    /// for all requests).
    fn server_allowed(&self, received: usize) -> usize {
        let complete: Vec<i32> = self
            .requests
            .iter()
            .take_while(|(end, ..)| *end <= received)
            .map(|(_, id, _)| *id)
            .collect();
        let all_in = received >= self.client.len();
        let mut allowed = 0;
        for (end, id) in &self.responses {
            if complete.contains(id) || all_in {
                allowed = *end;
            } else {
                break;
            }
        }
        if all_in && allowed == self.responses.last().map_or(0, |r| r.0) {
            // A trailing partial frame, if the recording has one, once all is asked.
            allowed = self.server.len();
        }
        allowed
    }

    /// How many client bytes may be sent once `answered` response frames have arrived:
    /// at most AHEAD requests beyond those answered.
    fn client_allowed(&self, answered: usize) -> usize {
        let answered_ids: Vec<i32> = self.responses[..answered].iter().map(|r| r.1).collect();
        // Requests are answered in order: the first unanswered one and AHEAD after it.
        let first_open = self
            .requests
            .iter()
            .position(|(_, id, _)| !answered_ids.contains(id))
            .unwrap_or(self.requests.len());
        match self.requests.get(first_open + AHEAD) {
            Some((end, ..)) => *end,
            None => self.client.len(),
        }
    }

    fn answered(&self, received: usize) -> usize {
        self.responses
            .iter()
            .take_while(|(end, _)| *end <= received)
            .count()
    }
}

/// (end offset, frame without its size prefix) of each complete frame.
fn frames(stream: &[u8]) -> Vec<(usize, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= stream.len() {
        let size = i32::from_be_bytes(stream[at..at + 4].try_into().unwrap());
        let Some(frame) = usize::try_from(size)
            .ok()
            .and_then(|s| stream.get(at + 4..at + 4 + s))
        else {
            break;
        };
        at += 4 + frame.len();
        out.push((at, frame));
    }
    out
}

/// A dialect's sessions, and its topics as its sessions.txt states them.
fn load_dialect(dialect: &str) -> (Vec<Arc<Session>>, Vec<RecordedTopic>) {
    let dir = paths::root()
        .join("tests/data/kafka-sessions")
        .join(dialect);
    let summary = std::fs::read_to_string(dir.join("sessions.txt")).unwrap();
    let topics = recording::recorded_topics(&summary).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".client").map(str::to_string))
        .collect();
    names.sort();
    assert!(
        names.len() >= 5,
        "no recorded sessions in {}",
        dir.display()
    );
    let sessions = names
        .iter()
        .map(|n| Arc::new(Session::load(&dir, n)))
        .collect();
    (sessions, topics)
}

/// Write `bytes[from..to]` in odd chunks (cycling through CHUNKS from `*turn`).
fn write_chunks(conn: &mut TcpStream, bytes: &[u8], from: usize, to: usize, turn: &mut usize) {
    let mut at = from;
    while at < to {
        let n = CHUNKS[*turn % CHUNKS.len()].min(to - at);
        *turn += 1;
        conn.write_all(&bytes[at..at + n]).unwrap();
        conn.flush().unwrap();
        at += n;
        if turn.is_multiple_of(5) {
            // Let some chunks travel alone.
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// What the upstream saw on the connection that carried a session.
type Seen = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// The broker's side: the session to play is the one the test announced last; a
/// connection that sends nothing (Envoy's readiness probes) plays nothing.
fn upstream(current: Arc<Mutex<Option<Arc<Session>>>>, seen: Seen) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let (current, seen) = (current.clone(), seen.clone());
            thread::spawn(move || {
                conn.set_nodelay(true).unwrap();
                conn.set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                let mut received = Vec::new();
                let mut buf = [0u8; 8192];
                let (mut sent, mut turn) = (0, 0);
                let mut session: Option<Arc<Session>> = None;
                loop {
                    let n = match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    received.extend_from_slice(&buf[..n]);
                    let s = session
                        .get_or_insert_with(|| current.lock().unwrap().clone().unwrap())
                        .clone();
                    if !s.client.starts_with(&received) {
                        // Not the recorded bytes: stop answering; the test reports it.
                        break;
                    }
                    let allowed = s.server_allowed(received.len());
                    write_chunks(&mut conn, &s.server, sent, allowed, &mut turn);
                    sent = allowed;
                }
                if let Some(s) = session {
                    seen.lock().unwrap().insert(s.name.clone(), received);
                }
            });
        }
    });
    port
}

/// Play one session as the client through `port`; returns the bytes received.
fn play(port: u16, s: &Arc<Session>) -> Vec<u8> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_nodelay(true).unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (mut conn, received, s) = (conn.try_clone().unwrap(), received.clone(), s.clone());
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            while got.len() < s.server.len() {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                received.store(got.len(), Ordering::SeqCst);
            }
            got
        })
    };
    let (mut sent, mut turn) = (0, 0);
    let start = Instant::now();
    while sent < s.client.len() {
        let allowed = s.client_allowed(s.answered(received.load(Ordering::SeqCst)));
        if allowed > sent {
            write_chunks(&mut conn, &s.client, sent, allowed, &mut turn);
            sent = allowed;
        } else {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{}: no answer after {} of {} client bytes",
                s.name,
                sent,
                s.client.len()
            );
            thread::sleep(Duration::from_millis(2));
        }
    }
    let got = reader.join().unwrap();
    let _ = conn.shutdown(Shutdown::Both);
    got
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn recorded_sessions_pass_byte_for_byte_and_are_decoded() {
    for dialect in recording::DIALECTS {
        let start = Instant::now();
        let sessions = play_dialect(dialect);
        eprintln!(
            "{dialect}: {sessions} sessions through Envoy in {:.1} s",
            start.elapsed().as_secs_f64()
        );
    }
}

/// Play every session of `dialect` through a sidecar of its own and check its statistics;
/// returns the number of sessions.
fn play_dialect(dialect: &str) -> usize {
    let dir = run_dir(&format!("recorded-{dialect}")).unwrap();
    let (sessions, topics) = load_dialect(dialect);
    let current: Arc<Mutex<Option<Arc<Session>>>> = Arc::default();
    let seen: Seen = Arc::default();
    let upstream_port = upstream(current.clone(), seen.clone());
    let listener = ports::free().unwrap();
    let sidecar = kafka_sidecar(
        &dir,
        "recorded",
        listener,
        upstream_port,
        serde_json::json!({}),
    )
    .unwrap();

    let mut requests: BTreeMap<i16, f64> = BTreeMap::new();
    for s in &sessions {
        *current.lock().unwrap() = Some(s.clone());
        let got = play(listener, s);
        assert!(
            got == s.server,
            "{dialect} {}: the client received {} bytes that differ from the {} recorded broker bytes",
            s.name,
            got.len(),
            s.server.len()
        );
        // The upstream records its side once the connection closed.
        let start = Instant::now();
        let upstream_saw = loop {
            if let Some(bytes) = seen.lock().unwrap().remove(&s.name) {
                break bytes;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{dialect} {}: upstream",
                s.name
            );
            thread::sleep(Duration::from_millis(10));
        };
        assert!(
            upstream_saw == s.client,
            "{dialect} {}: the upstream received {} bytes that differ from the {} recorded client bytes",
            s.name,
            upstream_saw.len(),
            s.client.len()
        );
        for (_, _, key) in &s.requests {
            *requests.entry(*key).or_default() += 1.0;
        }
    }

    wait_flush();
    let text = sidecar.prometheus_text().unwrap();
    std::fs::write(dir.join("stats.prom"), &text).unwrap();
    let samples = scrape::parse(&text);
    let stat = |name: &str, labels: &[(&str, &str)]| scrape::sum(&samples, name, labels);
    assert_eq!(
        stat("kafka_decode_errors_total", &[]),
        0.0,
        "{dialect}: decode errors:\n{text}"
    );
    for (key, n) in &requests {
        let api = kiosk_filter::metrics::api_label(*key);
        assert_eq!(
            stat("kafka_requests_total", &[("api", api)]),
            *n,
            "{dialect}: {api} requests counted by the filter"
        );
    }
    assert!(stat("kafka_requests_total", &[("api", "produce")]) > 0.0);
    assert!(stat("kafka_requests_total", &[("api", "fetch")]) > 0.0);
    for topic in &topics {
        let (name, codec) = (topic.name.as_str(), topic.codec.as_str());
        let t = [("topic", name)];
        assert_eq!(
            stat("kafka_produced_records_total", &t),
            topic.records as f64,
            "{dialect}: {name} produced"
        );
        assert_eq!(
            stat("kafka_fetched_records_total", &t),
            topic.records as f64,
            "{dialect}: {name} fetched"
        );
        let batches = stat(
            "kafka_produced_batches_total",
            &[("topic", name), ("compression", codec)],
        );
        assert!(batches >= 1.0, "{dialect}: no {codec} batches of {name}");
    }
    assert!(stat("kafka_connections_opened_total", &[]) >= sessions.len() as f64);
    sessions.len()
}
