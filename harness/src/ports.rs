//! Free loopback ports, chosen at start.

use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A port that was free a moment ago (the OS picks it).
pub fn free() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// Hands out distinct free ports for one run: once a probed port is released the OS may
/// offer it again, and two listeners on one port is a failed start.
#[derive(Debug, Default)]
pub struct Allocator {
    given: std::collections::HashSet<u16>,
}

impl Allocator {
    pub fn port(&mut self) -> Result<u16> {
        loop {
            let port = free()?;
            if self.given.insert(port) {
                return Ok(port);
            }
        }
    }
}

/// Wait until something accepts connections on `port`.
pub fn wait_open(port: u16, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("nothing listens on 127.0.0.1:{port} after {timeout:?}")
}

/// Wait until nothing accepts connections on `port` any more.
pub fn wait_closed(port: u16, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("127.0.0.1:{port} still accepts connections after {timeout:?}")
}
