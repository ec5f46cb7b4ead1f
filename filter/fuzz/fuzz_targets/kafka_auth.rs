//! SASL on the app's behalf ([`KafkaAuth`]) never panics on any interleaving of app and
//! broker bytes, keeps its memory bounded, and never reorders, duplicates or invents an
//! app byte: what it hands back plus what it lets pass is always a prefix of what the app
//! sent, and all of it once the exchange succeeded or the app does its own SASL.
//!
//! Input: byte 0 picks the mechanism and whether a credential is present; then chunks of
//! `[direction][length][bytes]`, each one data callback with Envoy's buffer semantics
//! (held request bytes come back in the next request callback).
#![no_main]

use kiosk_filter::act::kafka_auth::{KafkaAuth, MAX_PENDING, MAX_RESPONSE};
use kiosk_filter::act::sasl::{Credential, Mechanism};
use kiosk_filter::act::Action;
use kiosk_filter::Direction;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, mut rest)) = data.split_first() else {
        return;
    };
    let mechanism = Mechanism::ALL[usize::from(pick) % 3];
    let credential = (pick & 0x80 == 0).then(|| Credential {
        username: "user".into(),
        password: "pencil".into(),
    });
    let mut auth = KafkaAuth::new(mechanism, credential, Some("nonce".into()));
    let (mut sent, mut out, mut held) = (Vec::new(), Vec::new(), Vec::<u8>::new());
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
        let buffer: Vec<u8> = match direction {
            Direction::Request => {
                sent.extend_from_slice(chunk);
                [&held[..], chunk].concat()
            }
            Direction::Response => chunk.to_vec(),
        };
        let step = auth.on_data(direction, buffer.len(), &mut |at, len| {
            buffer
                .get(at..(at + len).min(buffer.len()))
                .map(<[u8]>::to_vec)
        });
        assert!(step.take <= buffer.len());
        out.extend_from_slice(&step.release);
        held.clear();
        match (direction, step.hold) {
            (Direction::Request, true) => held.extend_from_slice(&buffer[step.take..]),
            (Direction::Request, false) => out.extend_from_slice(&buffer[step.take..]),
            (Direction::Response, _) => assert!(step.release.is_empty() || auth.is_done()),
        }
        assert!(
            sent.starts_with(&out),
            "app bytes reordered, duplicated or invented"
        );
        let bound = std::mem::size_of::<KafkaAuth>() + 2 * (MAX_PENDING + MAX_RESPONSE) + 64;
        assert!(
            auth.memory_bytes() <= bound,
            "{} bytes",
            auth.memory_bytes()
        );
        if step.close {
            assert!(auth.is_done());
            closed = true;
            break;
        }
    }
    if auth.is_done() && !closed {
        assert_eq!(out.len() + held.len(), sent.len(), "every app byte passed");
    }
    let _ = auth.on_close();
});
