#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora from the recorded Kafka sessions.

Reads tests/data/kafka-sessions/<dialect>/session-NN.{client,server} of every dialect
(apache-kafka-4.3.1, tansu-0.6.0) and writes, in the input
layouts of filter/fuzz (see filter/fuzz/README.md), into filter/fuzz/seeds/<target>/
(generated, gitignored; nothing is duplicated in git):

  framer      every whole stream and every single frame, with request or response limits
  connection  every whole session (both streams) and every request/response pair
  decoders    the body of every frame, with its api key and version (responses take
              them from their request), and every frame's header
  config      a few pluginConfig documents, valid and not
  kafka_auth  each session's first requests and responses with the broker's side of a
              PLAIN and a SCRAM-SHA-512 exchange (our correlation ids) in between
  mongodb     a driver's MongoDB session (handshake, insert, find, an error), observed,
              and with X.509 or SCRAM-SHA-256 by the filter (our reply first, ok or not)

Files are named by the SHA-1 of their content, as libFuzzer names its own.
usage: scripts/fuzz-seeds.py [--out DIR]
"""

import argparse
import hashlib
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "tests" / "data" / "kafka-sessions"
SEED = bytes(8)  # the schedule seed of every seed input; the fuzzer mutates it

# framer `limits`: bit 0 request frames, bits 1-2 = 3: frames up to 128 MiB.
FRAMER_REQUESTS = bytes([0b111])
FRAMER_RESPONSES = bytes([0b110])

CONFIGS = [
    b"",
    b"{}",
    b'{"max_topics": 5, "kiali": {"topic_namespace": "kafka-prod"}}',
    b'{"max_topics": 500, "topic_overflow_label": "_other", "max_lag_series": 5000, '
    b'"client_id_label": true, "max_frame_bytes": 134217728, "max_in_flight": 256, '
    b'"flush_interval_ms": 1000, "read_window_bytes": 4096, '
    b'"kiali": {"enabled": true, "extension": "kafka", "topic_namespace": "kafka"}, '
    b'"workload": "checkout", "namespace": "shop", "app": "checkout", "cluster": "Kubernetes"}',
    b'{"max_topic": 5}',
    b'{"kiali": {"extension": ""}}',
    b"[1]",
    b'{"workload": "caf\\u00e9 .=;"}',
]


def frames(stream):
    """Complete frames of a stream: (size prefix + body) bytes."""
    out, at = [], 0
    while at + 4 <= len(stream):
        (size,) = struct.unpack(">i", stream[at : at + 4])
        if size < 0 or at + 4 + size > len(stream):
            break
        out.append(stream[at : at + 4 + size])
        at += 4 + size
    return out


def request_header(frame):
    """(api_key, version, correlation_id, body) of a request frame (header v1/v2 up to
    the client id; the body walker reads v2's tagged fields itself)."""
    api_key, version, correlation = struct.unpack(">hhi", frame[4:12])
    (client_len,) = struct.unpack(">h", frame[12:14])
    return api_key, version, correlation, frame[14 + max(client_len, 0) :]


def write(directory, data, written):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / hashlib.sha1(data).hexdigest()
    if path not in written:
        path.write_bytes(data)
        written.add(path)


TARGETS = ("framer", "connection", "decoders", "config", "kafka_auth", "mongodb")

# kiosk_filter::act::kafka_auth: the correlation id of our SaslHandshake, then +1, +2...
HANDSHAKE_ID = 0x6B696F00


def response(correlation, body):
    return struct.pack(">ii", 4 + len(body), correlation) + body


HANDSHAKE_OK = response(HANDSHAKE_ID, struct.pack(">hih", 0, 1, 5) + b"PLAIN")


def authenticate(offset, auth):
    """A SaslAuthenticate v1 response to our request HANDSHAKE_ID + offset."""
    body = struct.pack(">hh", 0, -1) + struct.pack(">i", len(auth)) + auth + bytes(8)
    return response(HANDSHAKE_ID + offset, body)


# MongoDB: a minimal BSON encoder (int32, double, string, document, array).
def bson(pairs):
    body = b""
    for name, value in pairs:
        key = name.encode() + b"\0"
        if isinstance(value, bool):
            body += b"\x08" + key + bytes([value])
        elif isinstance(value, int):
            body += b"\x10" + key + struct.pack("<i", value)
        elif isinstance(value, float):
            body += b"\x01" + key + struct.pack("<d", value)
        elif isinstance(value, str):
            raw = value.encode() + b"\0"
            body += b"\x02" + key + struct.pack("<i", len(raw)) + raw
        elif isinstance(value, list):
            body += b"\x04" + key + bson([(str(i), v) for i, v in enumerate(value)])
        else:
            body += b"\x03" + key + bson(value)
    return struct.pack("<i", len(body) + 5) + body + b"\0"


def mongo_message(request_id, response_to, op, payload):
    return struct.pack("<iiii", 16 + len(payload), request_id, response_to, op) + payload


def op_msg(request_id, response_to, doc, sequence=None):
    payload = struct.pack("<I", 0) + b"\0" + bson(doc)
    if sequence:
        name, docs = sequence
        section = name.encode() + b"\0" + b"".join(bson(d) for d in docs)
        payload += b"\x01" + struct.pack("<i", len(section) + 4) + section
    return mongo_message(request_id, response_to, 2013, payload)


# kiosk_filter::act::mongodb_auth::AUTH_REQUEST_ID
MONGO_AUTH_ID = 0x6B696F00


def mongo_session():
    """A driver's requests and the server's replies, as byte strings."""
    docs = [[("_id", i), ("v", "x" * 40)] for i in range(5)]
    hello = mongo_message(1, 0, 2004, struct.pack("<I", 0) + b"admin.$cmd\0"
                          + struct.pack("<ii", 0, -1) + bson([("isMaster", 1)]))
    requests = [
        hello,
        op_msg(2, 0, [("insert", "events"), ("ordered", True), ("$db", "pipeline")],
               ("documents", docs)),
        op_msg(3, 0, [("find", "events"), ("filter", []), ("$db", "pipeline")]),
    ]
    replies = [
        mongo_message(11, 1, 1, bytes(16) + struct.pack("<i", 1)
                      + bson([("ismaster", True), ("ok", 1.0)])),
        op_msg(12, 2, [("n", 5), ("ok", 1.0)]),
        op_msg(13, 3, [("ok", 0.0), ("errmsg", "no"), ("code", 13)]),
    ]
    return requests, replies


def chunks(direction, data):
    """`data` as kafka_auth callbacks: [direction][length][bytes], at most 255 each."""
    out = b""
    for at in range(0, len(data), 255):
        part = data[at:at + 255]
        out += bytes([direction, len(part)]) + part
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "filter" / "fuzz" / "seeds")
    args = parser.parse_args()
    dialects = sorted(d for d in SESSIONS.iterdir() if (d / "sessions.txt").is_file())
    clients = [c for d in dialects for c in sorted(d.glob("session-*.client"))]
    if len(dialects) < 2 or not all(any(d.glob("session-*.client")) for d in dialects):
        sys.exit(f"recorded sessions missing in {SESSIONS}: dialects {[d.name for d in dialects]}")
    written = set()
    for target in TARGETS:
        for old in (args.out / target).glob("*"):
            old.unlink()
    for client_path in clients:
        client = client_path.read_bytes()
        server = client_path.with_suffix(".server").read_bytes()
        requests, responses = frames(client), frames(server)

        write(args.out / "framer", FRAMER_REQUESTS + SEED + client, written)
        write(args.out / "framer", FRAMER_RESPONSES + SEED + server, written)
        for f in requests:
            write(args.out / "framer", FRAMER_REQUESTS + SEED + f, written)
        for f in responses:
            write(args.out / "framer", FRAMER_RESPONSES + SEED + f, written)

        def connection(reqs, resps):
            return bytes([0]) + SEED + struct.pack(">I", len(reqs)) + reqs + resps

        write(args.out / "connection", connection(client, server), written)

        if len(requests) >= 2 and len(responses) >= 2:
            for pick, ours in ((0, [HANDSHAKE_OK, authenticate(1, b"")]),
                               (2, [HANDSHAKE_OK, authenticate(1, b"r=nonceSERVER,s=c2FsdA==,i=4096")])):
                steps = [(0, requests[0]), (1, responses[0]), (0, requests[1])]
                steps += [(1, b"".join(ours)), (1, responses[1])]
                write(args.out / "kafka_auth", bytes([pick]) + b"".join(
                    chunks(direction, data) for direction, data in steps), written)

        asked = {}
        for f in requests:
            api_key, version, correlation, body = request_header(f)
            asked[correlation] = (api_key, version, f)
            head = struct.pack(">Bhh", 0, api_key, version) + SEED
            write(args.out / "decoders", head + body, written)
            write(args.out / "decoders", struct.pack(">Bhh", 2, 0, 0) + SEED + f[4:], written)
        for f in responses:
            (correlation,) = struct.unpack(">i", f[4:8])
            write(args.out / "decoders", struct.pack(">Bhh", 3, 0, 0) + SEED + f[4:], written)
            if correlation not in asked:
                continue
            api_key, version, request = asked[correlation]
            head = struct.pack(">Bhh", 1, api_key, version) + SEED
            write(args.out / "decoders", head + f[8:], written)
            write(args.out / "connection", connection(request, f), written)

    for config in CONFIGS:
        write(args.out / "config", config, written)
    requests, replies = mongo_session()
    ok = op_msg(99, MONGO_AUTH_ID, [("user", "CN=verify"), ("ok", 1.0)])
    refused = op_msg(99, MONGO_AUTH_ID, [("ok", 0.0), ("code", 18)])
    # pick: bit 0 authenticate, bit 1 SCRAM-SHA-256, bits 2-7 the read window / 16.
    server_first = op_msg(99, MONGO_AUTH_ID, [("conversationId", 1), ("done", False),
                                              ("payload", "r=x,s=c2FsdA==,i=4096"), ("ok", 1.0)])
    for pick, ours in ((4 << 2, []), ((4 << 2) | 1, [ok]), ((2 << 2) | 1, [refused]),
                       ((4 << 2) | 3, [server_first]), ((1 << 2) | 3, [refused])):
        steps = [(0, requests[0]), (1, b"".join(ours + replies[:1]))]
        steps += [(0, b"".join(requests[1:])), (1, b"".join(replies[1:]))]
        write(args.out / "mongodb", bytes([pick]) + b"".join(
            chunks(direction, data) for direction, data in steps), written)
    counts = {t: len(list((args.out / t).glob("*"))) for t in TARGETS}
    print(
        f"fuzz seeds from {len(clients)} recorded sessions of {len(dialects)} dialects "
        f"({', '.join(d.name for d in dialects)}) in {args.out}: "
        + ", ".join(f"{t} {n}" for t, n in counts.items())
    )


if __name__ == "__main__":
    main()
