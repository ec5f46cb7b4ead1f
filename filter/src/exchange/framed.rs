//! The driver both protocols' connections share: each direction's bytes go through its
//! framer into the protocol's frame reader, bytes the reader would step over unseen are
//! passed over without being handed in, and a framing error stops decoding for good (the
//! bytes keep flowing). A protocol says only what differs ([`Framed`]'s required items).

use crate::decode::topics::Topics;
use crate::exchange::observation::Observer;
use crate::wire::{Direction, FrameEvent, Framer};

/// A protocol's reader of one direction's frame events.
pub trait FrameReader {
    fn on(&mut self, event: FrameEvent);
}

/// A connection read as two framed directions.
pub trait Framed {
    /// The frame reader of one direction, borrowing what it may touch.
    type Reader<'a, O: Observer + 'a>: FrameReader
    where
        Self: 'a;

    /// The framer of `direction` and its reader.
    fn reader<'a, O: Observer>(
        &'a mut self,
        direction: Direction,
        now_ms: u64,
        topics: &'a mut Topics,
        observer: &'a mut O,
    ) -> (&'a mut Framer, Self::Reader<'a, O>);

    fn framer(&self, direction: Direction) -> &Framer;

    /// Bytes from here on of the current frame's body that its reader steps over unseen;
    /// `None`: all of the body (no frame, or one the reader skips).
    fn unseen_in_frame(&self, direction: Direction) -> Option<u64>;

    /// Whether decoding stopped for good on this connection.
    fn gave_up(&self) -> bool;

    /// Stop decoding for good: a frame size of `direction` this protocol cannot have.
    fn give_up(&mut self, direction: Direction, observer: &mut impl Observer);

    /// Bytes of `direction` handed over whole.
    fn on_data(
        &mut self,
        direction: Direction,
        data: &[u8],
        now_ms: u64,
        topics: &mut Topics,
        observer: &mut impl Observer,
    ) {
        if self.gave_up() {
            return;
        }
        let refused = {
            let (framer, mut reader) = self.reader(direction, now_ms, topics, observer);
            framer.feed(data, |event| reader.on(event)).is_err()
        };
        if refused {
            self.give_up(direction, observer);
        }
    }

    /// Bytes of `direction`, from where its stream stands, that the reader will step over
    /// without looking at them (all of them once decoding gave up).
    #[inline]
    fn skippable(&self, direction: Direction) -> usize {
        if self.gave_up() {
            return usize::MAX;
        }
        let left = u64::from(self.framer(direction).body_left());
        let unseen = self
            .unseen_in_frame(direction)
            .map_or(left, |n| n.min(left));
        usize::try_from(unseen).unwrap_or(usize::MAX)
    }

    /// Step over `n` bytes of `direction`, at most [`skippable`](Self::skippable),
    /// without being given them.
    fn pass_over(
        &mut self,
        direction: Direction,
        n: usize,
        now_ms: u64,
        topics: &mut Topics,
        observer: &mut impl Observer,
    ) {
        let n = n.min(self.skippable(direction));
        if self.gave_up() || n == 0 {
            return;
        }
        let (framer, mut reader) = self.reader(direction, now_ms, topics, observer);
        framer.pass_over(n as u32, |event| reader.on(event));
    }
}
