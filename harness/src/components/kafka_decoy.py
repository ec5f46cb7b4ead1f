"""The local mesh's decoy on Kafka's port (harness/src/components/decoy.rs).

Python 3 (the machine's; no package): a thread per connection, each request frame's bytes
appended to the file before it is looked at; ApiVersions (key 18) answered with version 0's
empty success, anything else left unanswered.

usage: python3 kafka_decoy.py <port> <received-file>
"""
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
