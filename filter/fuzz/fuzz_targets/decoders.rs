//! Every deep decoder of the core: each request and response layout of
//! `kiosk_filter::decode::kafka::schema` at each version it knows, chosen by the input, set
//! up by the core's own `decode::kafka::body_decoder` (the walker and the `Collector` a connection
//! uses), plus the request and response headers. The body is walked twice: whole in one
//! call, and in chunks with skippable bytes passed over unseen as the Envoy glue does.
//! Both walks must agree (bytes used, done, error, summary), use no more than they were
//! given, and keep summaries within their caps.
//!
//! Input: `[mode][api_key: i16][version: i16][seed: 8][body]`. `mode` bit 0: request or
//! response; bit 1: walk the header layout instead; bit 2: read record values' schema ids
//! (`records_by_schema`). An API or version the core does not
//! decode is mapped onto one it does (key and version taken modulo what is known).
#![no_main]

use kiosk_filter::decode::kafka::schema::{self, REQUEST_HEADER, RESPONSE_HEADER};
use kiosk_filter::decode::kafka::summary::MAX_ENTRIES;
use kiosk_filter::decode::kafka::tables::MAX_API_KEY;
use kiosk_filter::decode::kafka::{body_decoder, Collector, DecodeError, Summary, Walker};
use kiosk_filter::decode::topics::Topics;
use kiosk_filter::Direction;
use kiosk_filter_fuzz::{take, Schedule, SEED_BYTES};
use libfuzzer_sys::fuzz_target;

/// What a walk ended with.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    used: usize,
    done: bool,
    error: Option<DecodeError>,
    summary: String,
}

fn i16_at(bytes: &[u8]) -> i16 {
    let mut b = [0u8; 2];
    b[..bytes.len().min(2)].copy_from_slice(&bytes[..bytes.len().min(2)]);
    i16::from_be_bytes(b)
}

/// The (api key, lowest version, highest version) the core decodes in `direction`.
fn known(direction: Direction) -> Vec<(i16, i16, i16)> {
    (0..=MAX_API_KEY)
        .filter_map(|key| {
            let message = match direction {
                Direction::Request => schema::request(key),
                Direction::Response => schema::response(key),
            };
            message.map(|m| (key, m.min_version, m.max_version))
        })
        .collect()
}

fn check_caps(summary: &Summary) {
    let lens: Vec<usize> = match summary {
        Summary::ProduceRequest { topics, .. } => vec![topics.len()],
        Summary::FetchRequest { positions } => vec![positions.len()],
        Summary::ProduceResponse { errors } | Summary::Metadata { errors } => vec![errors.len()],
        Summary::FetchResponse {
            errors,
            topics,
            partitions,
        } => vec![errors.len(), topics.len(), partitions.len()],
        Summary::ApiVersions { .. } => vec![],
        Summary::ShareAcknowledgements { acks } => vec![acks.len()],
        Summary::ShareFetchResponse { errors, topics } => vec![errors.len(), topics.len()],
        Summary::ShareAcknowledgeResponse { errors } | Summary::FindCoordinator { errors } => {
            vec![errors.len()]
        }
    };
    assert!(
        lens.iter().all(|&n| n <= MAX_ENTRIES),
        "summary over its cap: {lens:?}"
    );
}

/// Walk `body` whole, in one call.
fn whole(walker: &mut Walker, collector: Option<&mut Collector>, body: &[u8]) -> Outcome {
    let mut topics = Topics::new(500, "_other");
    let (result, summary) = match collector {
        Some(c) => {
            let r = walker.feed(body, &mut c.visitor(&mut topics, &()));
            (r, format!("{:?}", c.summary))
        }
        None => (walker.feed(body, &mut ()), String::new()),
    };
    match result {
        Ok(used) => {
            assert!(used <= body.len());
            // A walk that stopped early is complete; one that took all may go on.
            assert!(used == body.len() || walker.is_done());
            Outcome {
                used,
                done: walker.is_done(),
                error: None,
                summary,
            }
        }
        Err(e) => Outcome {
            used: 0,
            done: false,
            error: Some(e),
            summary: String::new(),
        },
    }
}

/// Walk `body` in scheduled chunks, passing over what the walker would skip.
fn chunked(
    walker: &mut Walker,
    mut collector: Option<&mut Collector>,
    body: &[u8],
    schedule: &mut Schedule,
) -> Outcome {
    let mut topics = Topics::new(500, "_other");
    let mut at = 0;
    let mut error = None;
    if body.is_empty() {
        // As the whole walk does: take the steps that need no bytes.
        let result = match collector.as_deref_mut() {
            Some(c) => walker.feed(&[], &mut c.visitor(&mut topics, &())),
            None => walker.feed(&[], &mut ()),
        };
        error = result.err();
    }
    while at < body.len() && !walker.is_done() {
        let skippable = walker.skippable();
        let left = body.len() - at;
        let result = if skippable > 0 && !schedule.one_in(4) {
            let n = schedule.chunk(left.min(usize::try_from(skippable).unwrap_or(usize::MAX)));
            let passed = match collector.as_deref_mut() {
                Some(c) => walker.pass_over(n as u64, &mut c.visitor(&mut topics, &())),
                None => walker.pass_over(n as u64, &mut ()),
            };
            if let Ok(p) = passed {
                assert_eq!(p, n as u64, "passed {p} of {n} skippable bytes");
            }
            passed.map(|p| p as usize)
        } else {
            let chunk = &body[at..at + schedule.chunk(left)];
            let used = match collector.as_deref_mut() {
                Some(c) => walker.feed(chunk, &mut c.visitor(&mut topics, &())),
                None => walker.feed(chunk, &mut ()),
            };
            if let Ok(used) = used {
                assert!(used <= chunk.len());
                assert!(
                    used == chunk.len() || walker.is_done(),
                    "stopped early, not done"
                );
            }
            used
        };
        match result {
            Ok(used) => at += used,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    if error.is_some() {
        return Outcome {
            used: 0,
            done: false,
            error,
            summary: String::new(),
        };
    }
    let summary = collector.map_or(String::new(), |c| {
        check_caps(&c.summary);
        format!("{:?}", c.summary)
    });
    Outcome {
        used: at,
        done: walker.is_done(),
        error: None,
        summary,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let mode = take(&mut data, 1).first().copied().unwrap_or(0);
    let api_key = i16_at(take(&mut data, 2));
    let version = i16_at(take(&mut data, 2));
    let mut schedule = Schedule::new(take(&mut data, SEED_BYTES));
    let body = data;
    let direction = if mode & 1 == 0 {
        Direction::Request
    } else {
        Direction::Response
    };

    if mode & 2 != 0 {
        let layout = match direction {
            Direction::Request => REQUEST_HEADER,
            Direction::Response => RESPONSE_HEADER,
        };
        let a = whole(&mut Walker::new(layout, 0, false, false), None, body);
        let b = chunked(
            &mut Walker::new(layout, 0, false, false),
            None,
            body,
            &mut schedule,
        );
        assert_eq!(a, b, "header walks disagree");
        return;
    }

    let record_values = mode & 4 != 0;
    let (api_key, version) = match body_decoder(direction, api_key, version, record_values) {
        Some(_) => (api_key, version),
        None => {
            let apis = known(direction);
            let (key, min, max) = apis[usize::from(api_key as u16) % apis.len()];
            (key, min + version.rem_euclid(max - min + 1))
        }
    };
    let decoder =
        || body_decoder(direction, api_key, version, record_values).expect("a known layout");
    let (mut walker, mut collector) = decoder();
    let a = whole(&mut walker, Some(&mut collector), body);
    if a.error.is_none() {
        check_caps(&collector.summary);
    }
    let (mut walker, mut collector) = decoder();
    let b = chunked(&mut walker, Some(&mut collector), body, &mut schedule);
    assert_eq!(
        a, b,
        "{direction:?} api {api_key} v{version}: whole and chunked walks disagree"
    );
});
