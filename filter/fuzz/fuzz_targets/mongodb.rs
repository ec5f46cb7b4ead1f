//! A MongoDB VM never panics on any bytes of either direction, keeps each connection's
//! memory bounded, and changes nothing it only observes. Authenticating on the app's
//! behalf (MONGODB-X509, or SCRAM-SHA-256 with a credential), it never reorders,
//! duplicates or invents an app byte: what it lets pass or releases is always a prefix of
//! what the app sent, and all of it once the exchange is over without a close; it removes
//! at most a prefix of each response callback.
//!
//! Input: byte 0 (bit 0: authenticate; bit 1: SCRAM-SHA-256 rather than X.509; bits 2-7:
//! the read window), then chunks of `[direction][length][bytes]`, each one data callback.
#![no_main]

use kiosk_filter::act::sasl::Credential;
use kiosk_filter::{Config, Direction, Identity, Totalizer, Vm};
use libfuzzer_sys::fuzz_target;

/// Inline state, in-flight list (max_in_flight 256), our collected reply (16 KiB) and
/// the app bytes SCRAM holds (64 KiB).
const MEMORY_BOUND: usize = 128 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let acting = pick & 1 == 1;
    let scram = pick & 2 == 2;
    let window = usize::from(pick >> 2).max(1) * 16;
    let json = match (acting, scram) {
        (false, _) => r#"{"protocol": "mongodb"}"#,
        (true, false) => {
            r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "MONGODB-X509", "upstreams": {"clusters": ["*"]}}}"#
        }
        (true, true) => {
            r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "SCRAM-SHA-256", "upstreams": {"clusters": ["*"]}}}"#
        }
    };
    let config = Config::from_json(json.as_bytes()).expect("a valid configuration");
    let identity = Identity::resolve(&config, None, None, None, None);
    let mut vm = Vm::new(config, identity);
    vm.set_mongodb_credential(Some(Credential {
        username: "user".into(),
        password: "pencil".into(),
    }));
    let mut conn = vm.open_connection();
    let (mut sent, mut passed) = (Vec::new(), Vec::new());
    let mut closed = false;
    while let [dir, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        let direction = if dir & 1 == 0 {
            Direction::Request
        } else {
            Direction::Response
        };
        let step = vm.on_buffer(&mut conn, direction, chunk.len(), window, 0, |at, len| {
            assert!(len <= window || acting, "read {len} bytes, window {window}");
            chunk.get(at..(at + len).min(chunk.len()))
        });
        assert!(step.take <= chunk.len());
        if !acting {
            assert!(step.is_empty(), "observing changes nothing");
        }
        passed.extend_from_slice(&step.release);
        if direction == Direction::Request {
            sent.extend_from_slice(chunk);
            if !step.hold {
                passed.extend_from_slice(&chunk[step.take..]);
            }
        }
        assert!(
            sent.starts_with(&passed),
            "app bytes reordered, duplicated or invented"
        );
        assert!(
            conn.memory_bytes() <= MEMORY_BOUND,
            "{} bytes",
            conn.memory_bytes()
        );
        if step.close {
            closed = true;
            break;
        }
    }
    if !closed && !conn.is_acting() {
        assert_eq!(passed.len(), sent.len(), "every app byte passed");
    }
    vm.close(&mut conn);
    vm.flush(&mut Totalizer::default());
});
