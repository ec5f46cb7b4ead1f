//! The filter in a real Envoy passes every byte unchanged, whatever it is, and counts what
//! it cannot decode.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use kiosk_harness::ports;
use kiosk_harness::prometheus::scrape;
use kiosk_tests::{kafka_sidecar, run_dir, wait_flush};

type Received = Arc<Mutex<Vec<Vec<u8>>>>;

/// An upstream that echoes every connection back and records what each one received
/// (readiness probes open connections too).
fn echo_server() -> (u16, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received: Received = Arc::default();
    let all = received.clone();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let all = all.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    seen.extend_from_slice(&buf[..n]);
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                all.lock().unwrap().push(seen);
            });
        }
    });
    (port, received)
}

fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn garbage_and_absurd_frames_pass_byte_for_byte() {
    let dir = run_dir("transparency").unwrap();
    let (upstream, echo) = echo_server();
    let listener = ports::free().unwrap();
    let sidecar = kafka_sidecar(
        &dir,
        "garbage-client",
        listener,
        upstream,
        serde_json::json!({}),
    )
    .unwrap();

    // A valid-looking frame with an absurd length, then random bytes.
    let mut sent = vec![0x7f, 0xff, 0xff, 0xff, 0x00, 0x12, 0x00, 0x03];
    sent.extend(pseudo_random(256 * 1024, 0x9e37_79b9_7f4a_7c15));
    let mut conn = TcpStream::connect(("127.0.0.1", listener)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let reader = {
        let mut conn = conn.try_clone().unwrap();
        let expected = sent.len();
        thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = [0u8; 8192];
            while got.len() < expected {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        })
    };
    for chunk in sent.chunks(3000) {
        conn.write_all(chunk).unwrap();
    }
    let echoed = reader.join().unwrap();
    let _ = conn.shutdown(std::net::Shutdown::Both);
    thread::sleep(Duration::from_millis(500));
    let upstream_saw = echo
        .lock()
        .unwrap()
        .iter()
        .max_by_key(|c| c.len())
        .cloned()
        .unwrap_or_default();
    assert!(
        upstream_saw == sent,
        "upstream received {} bytes that differ from the {} sent",
        upstream_saw.len(),
        sent.len()
    );
    assert!(
        echoed == sent,
        "client received {} bytes that differ from the {} echoed",
        echoed.len(),
        sent.len()
    );

    wait_flush();
    let samples = sidecar.prometheus().unwrap();
    let undecodable = scrape::sum(
        &samples,
        "kafka_connections_undecodable_total",
        &[("reason", "bad_frame_size")],
    );
    assert!(
        undecodable >= 1.0,
        "no undecodable connection counted:\n{}",
        sidecar.prometheus_text().unwrap()
    );
    let errors = scrape::sum(
        &samples,
        "kafka_decode_errors_total",
        &[("direction", "request")],
    );
    assert!(errors >= 1.0);
    // Labelled with the sidecar's identity from node metadata (the readiness probe
    // opened a connection too).
    let ours = scrape::sum(
        &samples,
        "kafka_connections_opened_total",
        &[
            ("local_workload", "garbage-client"),
            ("local_namespace", "shop"),
        ],
    );
    assert!(ours >= 1.0);
}

#[test]
#[ignore = "live: starts real Envoy, Kafka and pods (root); scripts/test.sh runs it, or cargo test -- --ignored"]
fn invalid_plugin_config_is_refused_naming_the_field() {
    let dir = run_dir("bad-config").unwrap();
    let (upstream, _) = echo_server();
    let listener = ports::free().unwrap();
    let config = serde_json::json!({ "max_topic": 5 });
    let started = kafka_sidecar(&dir, "typo", listener, upstream, config);
    let log = std::fs::read_to_string(dir.join("envoy-typo.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("invalid kiosk configuration")
                && l.contains("unknown field `max_topic`")),
        "no log line naming the field:\n{log}"
    );
    // Envoy refuses the listener: nothing forwards with a configuration nobody meant.
    match started {
        Err(e) => assert!(e.to_string().contains("envoy-typo"), "{e}"),
        Ok(sidecar) => {
            let text = sidecar.prometheus_text().unwrap();
            panic!("envoy started with an invalid filter config:\n{text}");
        }
    }
}
