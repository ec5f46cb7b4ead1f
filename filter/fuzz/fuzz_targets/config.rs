//! `Config::from_json` never panics, and what it accepts is in range and usable: an
//! identity resolves with its overrides and a VM renders series with it.
//!
//! Input: the JSON bytes, as a WasmPlugin's pluginConfig delivers them.
#![no_main]

use kiosk_filter::{Config, Identity, Totalizer, Vm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = Config::from_json(data) else {
        return;
    };
    assert!((1..=65_000).contains(&config.max_topics));
    assert!((1024..=i32::MAX as u32).contains(&config.max_frame_bytes));
    assert!((1..=65_536).contains(&config.max_in_flight));
    assert!((64..=16 << 20).contains(&config.read_window_bytes));
    assert!(!config.topic_overflow_label.is_empty());
    let identity = Identity::resolve(&config, Some("ns".into()), None, None, None);
    let mut vm = Vm::new(config, identity);
    let mut conn = vm.open_connection();
    vm.close(&mut conn);
    let mut sink = Totalizer::default();
    vm.flush(&mut sink);
    assert!(sink
        .counters
        .keys()
        .any(|k| k.ends_with("kafka_connections_opened_total")));
});
