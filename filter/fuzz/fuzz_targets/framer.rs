//! `Framer::feed` (and `pass_over`) in arbitrary chunks: the size prefixes and the bodies
//! it reports (passed-over bytes standing for themselves) reproduce the input exactly, up
//! to where it stopped; every frame is `Start`, then exactly `size` body bytes, then `End`;
//! it stops only at a size prefix outside its limits.
//!
//! Input: `[limits][seed: 8][stream]`. `limits` bit 0: request (min 10) or response (min
//! 4) frames; bits 1-2: the largest frame, 1 KiB, 4 KiB, 1 MiB or 128 MiB.
#![no_main]

use kiosk_filter::wire::{FrameError, FrameEvent, Framer};
use kiosk_filter_fuzz::{take, Schedule, SEED_BYTES};
use libfuzzer_sys::fuzz_target;

#[derive(Default)]
struct Replay {
    /// Size prefixes and body bytes, in order: must be a prefix of the input.
    bytes: Vec<u8>,
    /// The open frame: its size and body bytes seen so far.
    open: Option<(u32, u32)>,
}

impl Replay {
    fn on(&mut self, event: FrameEvent<'_>, input: &[u8], min: u32, max: u32) {
        match event {
            FrameEvent::Start { size } => {
                assert!(self.open.is_none(), "Start inside a frame");
                assert!(
                    (min..=max).contains(&size),
                    "size {size} outside {min}..={max}"
                );
                self.bytes.extend_from_slice(&size.to_be_bytes());
                self.open = Some((size, 0));
            }
            FrameEvent::Body(body) => {
                let (size, seen) = self.open.as_mut().expect("Body outside a frame");
                assert!(!body.is_empty(), "empty Body");
                *seen += body.len() as u32;
                assert!(*seen <= *size, "more body than the size");
                self.bytes.extend_from_slice(body);
            }
            FrameEvent::Gap(n) => {
                let (size, seen) = self.open.as_mut().expect("Gap outside a frame");
                assert!(n > 0, "empty Gap");
                *seen += n;
                assert!(*seen <= *size, "more gap than the size");
                // The bytes passed over are the input's at this place.
                let at = self.bytes.len();
                self.bytes.extend_from_slice(&input[at..at + n as usize]);
            }
            FrameEvent::End => {
                let (size, seen) = self.open.take().expect("End outside a frame");
                assert_eq!(seen, size, "End before the frame's size");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let limits = take(&mut data, 1).first().copied().unwrap_or(0);
    let mut schedule = Schedule::new(take(&mut data, SEED_BYTES));
    let input = data;
    let min = if limits & 1 == 1 { 10 } else { 4 };
    let max = [1024, 4096, 1 << 20, 128 << 20][usize::from(limits >> 1 & 3)];
    let mut framer = Framer::new(min, max);
    let mut replay = Replay::default();
    let mut at = 0;
    let mut stopped = None;
    while at < input.len() {
        let left = framer.body_left() as usize;
        if left > 0 && schedule.one_in(3) {
            let n = schedule.chunk(left.min(input.len() - at));
            let passed = framer.pass_over(n as u32, |e| replay.on(e, input, min, max));
            assert_eq!(passed as usize, n, "pass_over of {n} within the body");
            at += n;
            continue;
        }
        let n = schedule.chunk(input.len() - at);
        let chunk = &input[at..at + n];
        if let Err(e) = framer.feed(chunk, |e| replay.on(e, input, min, max)) {
            stopped = Some(e);
            break;
        }
        at += n;
        assert!(framer.pass_over(0, |_| panic!("an event for nothing")) == 0);
    }
    assert_eq!(
        replay.bytes[..],
        input[..replay.bytes.len()],
        "replay differs"
    );
    let rest = &input[replay.bytes.len()..];
    match stopped {
        Some(FrameError::BadSize(size)) => {
            // Stopped at a size prefix: the next four bytes, outside the limits.
            let prefix: [u8; 4] = rest[..4].try_into().expect("a whole prefix");
            assert_eq!(i32::from_be_bytes(prefix), size);
            assert!(u32::try_from(size).map_or(true, |s| !(min..=max).contains(&s)));
            assert!(replay.open.is_none(), "stopped inside a frame");
        }
        // All fed: all replayed but for a size prefix still incomplete.
        None if framer.at_boundary() || framer.body_left() > 0 => {
            assert!(rest.is_empty(), "{} bytes lost", rest.len())
        }
        None => assert!((1..4).contains(&rest.len()), "{} bytes pending", rest.len()),
    }
});
