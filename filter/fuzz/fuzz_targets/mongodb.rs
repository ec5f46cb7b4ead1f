//! A MongoDB VM never panics on any bytes of either direction, keeps each connection's
//! memory bounded, and changes nothing it only observes; with X.509 on the app's behalf
//! it sends our `authenticate` once, before the app's first byte, lets every app request
//! byte through in order, and removes at most a prefix of the response stream.
//!
//! Input: byte 0 (bit 0: authenticate; bits 1-7: the read window), then chunks of
//! `[direction][length][bytes]`, each one data callback.
#![no_main]

use kiosk_filter::act::mongodb_auth::authenticate;
use kiosk_filter::config::MongoDbAuthMechanism;
use kiosk_filter::{Config, Direction, Identity, Totalizer, Vm};
use libfuzzer_sys::fuzz_target;

/// Inline state, in-flight list (max_in_flight 256) and our collected reply (16 KiB).
const MEMORY_BOUND: usize = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let acting = pick & 1 == 1;
    let window = usize::from(pick >> 1).max(1) * 8;
    let json = if acting {
        r#"{"protocol": "mongodb", "mongodb_auth": {"mechanism": "MONGODB-X509"}}"#
    } else {
        r#"{"protocol": "mongodb"}"#
    };
    let config = Config::from_json(json.as_bytes()).expect("a valid configuration");
    let identity = Identity::resolve(&config, None, None, None, None);
    let mut vm = Vm::new(config, identity);
    let mut conn = vm.open_connection();
    let (mut sent, mut to_server) = (Vec::new(), Vec::new());
    let mut injected = 0;
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
            assert!(len <= window, "read {len} bytes, window {window}");
            chunk.get(at..(at + len).min(chunk.len()))
        });
        assert!(step.take <= chunk.len() && !step.hold && step.release.is_empty());
        if !step.inject.is_empty() {
            injected += 1;
            assert!(acting && to_server.is_empty(), "ours goes first, once");
            assert_eq!(step.inject, authenticate(MongoDbAuthMechanism::X509));
        }
        if !acting {
            assert!(step.is_empty(), "observing changes nothing");
        }
        if direction == Direction::Request {
            assert_eq!(step.take, 0, "app requests are never held or removed");
            sent.extend_from_slice(chunk);
            to_server.extend_from_slice(&step.send());
            to_server.extend_from_slice(chunk);
        }
        assert!(
            conn.memory_bytes() <= MEMORY_BOUND,
            "{} bytes",
            conn.memory_bytes()
        );
        if step.close {
            break;
        }
    }
    assert!(injected <= 1);
    if acting && !sent.is_empty() {
        assert_eq!(&to_server[to_server.len() - sent.len()..], &sent[..]);
    }
    vm.close(&mut conn);
    vm.flush(&mut Totalizer::default());
});
