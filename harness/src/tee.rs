//! A recording TCP tee: forwards every accepted connection to an upstream, both ways, and
//! appends what passed to two files per connection, `session-NN.client` (client -> server)
//! and `session-NN.server` (server -> client). Plain threads, no buffering beyond one read:
//! a byte is written to a file only once it was forwarded.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::{Context, Result};

/// One recorded connection: its number (in accept order, from 1) and its two files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    pub session: usize,
    pub client: PathBuf,
    pub server: PathBuf,
}

/// The connections accepted so far, each with its recording and its relay thread.
type Connections = Arc<Mutex<Vec<(Recording, JoinHandle<()>)>>>;

/// A running tee; [`Tee::stop`] closes the listener and waits for every connection.
pub struct Tee {
    pub port: u16,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    connections: Connections,
}

impl Tee {
    /// Listen on 127.0.0.1:`port` (0: any free port), forward to 127.0.0.1:`upstream`,
    /// record into `dir` (created if missing).
    pub fn start(port: u16, upstream: u16, dir: &Path) -> Result<Tee> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .with_context(|| format!("binding the tee on 127.0.0.1:{port}"))?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Connections = Arc::default();
        let acceptor = {
            let (stop, connections, dir) = (stop.clone(), connections.clone(), dir.to_owned());
            let counter = AtomicUsize::new(0);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let client = match listener.accept() {
                        Ok((client, _)) => client,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        Err(_) => continue,
                    };
                    let session = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    let recording = Recording {
                        session,
                        client: dir.join(format!("session-{session:02}.client")),
                        server: dir.join(format!("session-{session:02}.server")),
                    };
                    let handle = {
                        let recording = recording.clone();
                        thread::spawn(move || {
                            if let Err(e) = relay(client, upstream, &recording) {
                                eprintln!("tee: session {}: {e:#}", recording.session);
                            }
                        })
                    };
                    if let Ok(mut all) = connections.lock() {
                        all.push((recording, handle));
                    }
                }
            })
        };
        Ok(Tee {
            port,
            stop,
            acceptor: Some(acceptor),
            connections,
        })
    }

    /// Stop accepting, wait for the open connections to end (their peers close them), and
    /// return the recordings in session order.
    pub fn stop(mut self) -> Vec<Recording> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections = std::mem::take(&mut *self.connections.lock().unwrap_or_else(|e| {
            // A relay thread never holds the lock while panicking; take what is there.
            e.into_inner()
        }));
        let mut recordings = Vec::new();
        for (recording, handle) in connections {
            let _ = handle.join();
            recordings.push(recording);
        }
        recordings.sort_by_key(|r| r.session);
        recordings
    }
}

/// Forward one connection both ways until both directions ended.
fn relay(client: TcpStream, upstream: u16, recording: &Recording) -> Result<()> {
    let server = TcpStream::connect(("127.0.0.1", upstream))
        .with_context(|| format!("connecting to the upstream 127.0.0.1:{upstream}"))?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    let client_file = File::create(&recording.client)?;
    let server_file = File::create(&recording.server)?;
    let down_done = Arc::new(AtomicBool::new(false));
    let up = {
        let (from, to) = (client.try_clone()?, server.try_clone()?);
        let (server, down_done) = (server.try_clone()?, down_done.clone());
        thread::spawn(move || {
            let up = copy(from, to, client_file);
            // The client is done sending: a server that does not close within a few
            // seconds is closed, which ends the recording of this connection.
            for _ in 0..50 {
                if down_done.load(Ordering::Relaxed) {
                    return up;
                }
                thread::sleep(Duration::from_millis(100));
            }
            let _ = server.shutdown(Shutdown::Both);
            up
        })
    };
    let down = copy(server, client, server_file);
    down_done.store(true, Ordering::Relaxed);
    let up = up.join().unwrap_or(Ok(()));
    down.and(up)
}

/// Copy `from` to `to`, appending what was forwarded to `file`; at end of input, pass the
/// half-close on (and on a write error, close both ways so the other direction ends too).
fn copy(mut from: TcpStream, mut to: TcpStream, mut file: File) -> Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).is_err() {
            let _ = from.shutdown(Shutdown::Both);
            break;
        }
        file.write_all(&buf[..n])?;
    }
    let _ = to.shutdown(Shutdown::Write);
    file.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_both_directions_of_each_connection() {
        let dir = std::env::temp_dir().join(format!("kiosk-tee-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // An upstream that answers with the bytes it read, upper-cased.
        let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
        let upstream_port = upstream.local_addr().unwrap().port();
        thread::spawn(move || {
            for conn in upstream.incoming() {
                let mut conn = conn.unwrap();
                thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    while let Ok(n @ 1..) = conn.read(&mut buf) {
                        conn.write_all(&buf[..n].to_ascii_uppercase()).unwrap();
                    }
                });
            }
        });
        let tee = Tee::start(0, upstream_port, &dir).unwrap();
        for message in [&b"first connection"[..], b"second"] {
            let mut conn = TcpStream::connect(("127.0.0.1", tee.port)).unwrap();
            conn.write_all(message).unwrap();
            conn.shutdown(Shutdown::Write).unwrap();
            let mut answer = Vec::new();
            conn.read_to_end(&mut answer).unwrap();
            assert_eq!(answer, message.to_ascii_uppercase());
        }
        let recordings = tee.stop();
        assert_eq!(recordings.len(), 2);
        let read = |p: &PathBuf| std::fs::read(p).unwrap();
        assert_eq!(recordings[0].session, 1);
        assert_eq!(read(&recordings[0].client), b"first connection");
        assert_eq!(read(&recordings[1].client), b"second");
        assert_eq!(read(&recordings[1].server), b"SECOND");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
