//! Features that act on a connection (next: authenticating it on the app's behalf).
//!
//! The observing path only reads. An [`Action`] is the other path: it sees the frames of
//! both directions as the framer cuts them, and asks the glue for [`Edit`]s of Envoy's
//! buffer of a direction, applied before the callback returns. What Envoy allows
//! (DESIGN.md section 8): prepend at 0, drain a prefix, hold the downstream bytes (the
//! upstream direction cannot be held: an action drains those into its own memory).

use crate::wire::{Direction, FrameEvent};

/// A change to Envoy's buffer of one direction, in the order asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Insert bytes before the buffer's first byte (e.g. an authentication request).
    Prepend(Vec<u8>),
    /// Remove the buffer's first bytes (e.g. the response to a request the app never sent).
    Drain(usize),
    /// Keep the buffer's bytes in Envoy until a later callback (downstream only).
    Hold,
}

/// A feature that acts on one connection.
pub trait Action {
    /// One step of a frame of `direction`. Bodies arrive as `Body` chunks, or as `Gap`s
    /// for bytes the decoder passed over unseen unless [`Action::reads_bodies`].
    fn on_frame(&mut self, direction: Direction, event: &FrameEvent<'_>);

    /// Whether every body byte of `direction` must be copied into the VM for this action.
    fn reads_bodies(&self, _direction: Direction) -> bool {
        false
    }

    /// The edits of `direction`'s buffer wanted now, in order; none by default.
    fn take_edits(&mut self, _direction: Direction) -> Vec<Edit> {
        Vec::new()
    }
}
