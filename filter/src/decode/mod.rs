//! Reading inside frames (Kafka's; MongoDB's in [`mongodb`]): message layouts as data, the streaming walker that interprets
//! them, and what a message says summed up while it streams by ([`kafka::summary`]).
//!
//! Decoding never buffers a message and never panics: a malformed message is a
//! [`kafka::DecodeError`]. Topic names become label indexes in the VM's [`topics`] table
//! as they stream by.

pub mod kafka;
pub mod mongodb;
pub mod topics;
