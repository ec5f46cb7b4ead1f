//! Shotover 0.7.4, run as its own binary is: `--topology-file` and `--config-file` as Shotover
//! reads them.

fn main() {
    shotover::runner::Shotover::new().run_block();
}
