//! A whole connection, both directions, through the core as the Envoy glue drives it:
//! the two streams interleaved and cut into callbacks of any size, each callback given
//! either whole (`on_request_data` / `on_response_data`) or read through `on_buffer` a
//! window at a time with record bodies passed over unseen. After every callback the
//! connection holds at most 64 KiB (its own accounting); `on_buffer` asks only for ranges
//! inside the callback, in order, never twice. A second connection given every callback
//! whole must end with exactly the same metrics.
//!
//! Input: `[config][seed: 8][request length: u32][requests][responses]`. `config` bits
//! 0-1: max_in_flight 256, 8, 1 or 256; bit 2: max_frame_bytes 1 KiB (else the default
//! 128 MiB); bit 3: client-id labels; bit 4: Kiali edges off; bit 5: max_topics 2; bit 6:
//! records_by_schema (its batches read `READ_SIZE` at a time, in place of the window).
#![no_main]

use kiosk_filter::decode::kafka::schema_ids::READ_SIZE;
use kiosk_filter::{Config, Direction, Identity, Totalizer, Vm};
use kiosk_filter_fuzz::{take, Schedule, SEED_BYTES};
use libfuzzer_sys::fuzz_target;

const MEMORY_BOUND: usize = 64 * 1024;

fn config(bits: u8) -> Config {
    let mut c = Config {
        max_in_flight: [256, 8, 1, 256][usize::from(bits & 3)],
        client_id_label: bits & 8 != 0,
        ..Config::default()
    };
    if bits & 4 != 0 {
        c.max_frame_bytes = 1024;
    }
    c.kiali.enabled = bits & 16 == 0;
    if bits & 32 != 0 {
        c.max_topics = 2;
    }
    c.records_by_schema = bits & 64 != 0;
    c
}

fn new_vm(bits: u8) -> Vm {
    let config = config(bits);
    let id = Identity::resolve(&config, Some("fuzz".into()), Some("w".into()), None, None);
    Vm::new(config, id)
}

fn flush(vm: &mut Vm, into: &mut Totalizer) {
    vm.flush(into);
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let bits = take(&mut data, 1).first().copied().unwrap_or(0);
    let mut schedule = Schedule::new(take(&mut data, SEED_BYTES));
    let mut len = [0u8; 4];
    let prefix = take(&mut data, 4);
    len[..prefix.len()].copy_from_slice(prefix);
    let split = (u32::from_be_bytes(len) as usize).min(data.len());
    let (requests, responses) = data.split_at(split);

    let (mut vm, mut whole_vm) = (new_vm(bits), new_vm(bits));
    let mut conn = vm.open_connection();
    let mut whole = whole_vm.open_connection();
    let (mut sink, mut whole_sink) = (Totalizer::default(), Totalizer::default());
    let (mut req_at, mut resp_at) = (0, 0);
    let mut now_ms = 0u64;
    while req_at < requests.len() || resp_at < responses.len() {
        // Mostly requests ahead of responses, as on the wire; sometimes not.
        let req_left = requests.len() - req_at;
        let resp_left = responses.len() - resp_at;
        let behind = resp_at * requests.len().max(1) < req_at * responses.len().max(1);
        let response = req_left == 0 || (resp_left > 0 && (behind || schedule.one_in(8)));
        let (direction, stream, at) = if response {
            (Direction::Response, responses, &mut resp_at)
        } else {
            (Direction::Request, requests, &mut req_at)
        };
        let n = schedule.chunk(stream.len() - *at);
        let part = &stream[*at..*at + n];
        *at += n;
        now_ms += schedule.below(50) as u64;

        if schedule.one_in(3) {
            match direction {
                Direction::Request => vm.on_request_data(&mut conn, part, now_ms),
                Direction::Response => vm.on_response_data(&mut conn, part, now_ms),
            }
        } else {
            let window = match schedule.draw() % 4 {
                0 => 1 + schedule.below(16),
                1 => 1 + schedule.below(1024),
                2 => vm.config().read_window_bytes,
                _ => 1 + schedule.below(70_000),
            };
            let largest = match vm.config().records_by_schema {
                true => window.max(READ_SIZE as usize),
                false => window,
            };
            let mut end = 0;
            vm.on_buffer(
                &mut conn,
                direction,
                part.len(),
                window,
                now_ms,
                |at, len| {
                    assert!(len >= 1 && len <= largest, "read of {len}, window {window}");
                    assert!(at + len <= part.len(), "read {at}+{len} of {}", part.len());
                    assert!(at >= end, "read at {at} before {end}");
                    end = at + len;
                    part.get(at..at + len)
                },
            );
        }
        match direction {
            Direction::Request => whole_vm.on_request_data(&mut whole, part, now_ms),
            Direction::Response => whole_vm.on_response_data(&mut whole, part, now_ms),
        }
        assert!(
            conn.memory_bytes() <= MEMORY_BOUND,
            "{} bytes held by one connection",
            conn.memory_bytes()
        );
        assert_eq!(conn.gave_up(), whole.gave_up());
        assert_eq!(conn.skippable(direction), whole.skippable(direction));
        if schedule.one_in(16) {
            flush(&mut vm, &mut sink);
            flush(&mut whole_vm, &mut whole_sink);
        }
    }
    vm.close(&mut conn);
    whole_vm.close(&mut whole);
    flush(&mut vm, &mut sink);
    flush(&mut whole_vm, &mut whole_sink);
    assert_eq!(sink.counters, whole_sink.counters);
    assert_eq!(sink.gauges, whole_sink.gauges);
    assert_eq!(sink.histograms, whole_sink.histograms);
});
