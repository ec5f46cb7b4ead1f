//! The pipeline services of the `test-kafka-istio-mongo` chart, each a `kiosk` subcommand:
//! REST entry -> topic -> mirror -> topic -> Mongo sink, plus the producer and verify jobs.

pub mod consume;
pub mod mirror;
pub mod producer;
pub mod record;
pub mod rest;
pub mod sink;
pub mod verify;
