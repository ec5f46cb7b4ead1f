//! A service on Kafka's port that is not one of the brokers (`kiosk up --kafka-port-decoy`):
//! what an app selected by the kiosk WasmPlugin could dial, since a WasmPlugin matches ports
//! by number only. It runs in a pod of its own behind a sidecar, with its own identity, and
//! speaks just enough Kafka to draw a credential out: it answers ApiVersions, so a client
//! goes on to the next request, where the filter would begin SASL. Every byte it receives is
//! appended to a file, for the test that no credential ever reaches it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;

use crate::components::pod::Pod;
use crate::components::Component;
use crate::process::Service;

/// The pod's name (namespace `pipeline`; reached as `kafka-decoy.pipeline.pod`).
pub const POD: &str = "kafka-decoy";
/// The file of the bytes received, in the run directory.
pub const RECEIVED: &str = "kafka-decoy.received";

/// Python 3 (the machine's; no package): a thread per connection, each request frame's
/// bytes appended to the file before it is looked at; ApiVersions (key 18) answered with
/// version 0's empty success, anything else left unanswered.
const PROGRAM: &str = r#"
import socket, struct, sys, threading
port, out = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
def serve(conn):
    pending = b""
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            with lock, open(out, "ab") as f:
                f.write(data)
            pending += data
            while len(pending) >= 4:
                (size,) = struct.unpack(">i", pending[:4])
                if size < 8 or len(pending) < 4 + size:
                    break
                frame, pending = pending[4 : 4 + size], pending[4 + size :]
                api, _version, correlation = struct.unpack(">hhi", frame[:8])
                if api == 18:
                    body = struct.pack(">ihi", correlation, 0, 0)
                    conn.sendall(struct.pack(">i", len(body)) + body)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", port))
listener.listen()
print("decoy listening on", port, flush=True)
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

pub struct Decoy {
    service: Service,
    dir: PathBuf,
    pod: Pod,
    port: u16,
}

impl Decoy {
    /// Start the decoy on `port` in `pod`, its log and [`RECEIVED`] in `dir`.
    pub fn start(dir: &Path, pod: Pod, port: u16) -> Result<Decoy> {
        let mut command = pod.command("python3", false);
        command
            .args(["-c", PROGRAM, &port.to_string()])
            .arg(dir.join(RECEIVED));
        let mut service = Service::start("kafka-decoy", command, dir)?;
        let log = service.log.clone();
        service.wait_until("listen", Duration::from_secs(20), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("decoy listening"))
        })?;
        Ok(Decoy {
            service,
            dir: dir.to_path_buf(),
            pod,
            port,
        })
    }
}

impl Component for Decoy {
    fn name(&self) -> &str {
        POD
    }

    fn services(&self) -> Vec<&Service> {
        vec![&self.service]
    }

    fn services_mut(&mut self) -> Vec<&mut Service> {
        vec![&mut self.service]
    }

    fn stop_grace(&self) -> Duration {
        Duration::from_secs(5)
    }

    fn restart(&mut self) -> Result<()> {
        self.stop();
        *self = Decoy::start(&self.dir, self.pod.clone(), self.port)?;
        Ok(())
    }
}
