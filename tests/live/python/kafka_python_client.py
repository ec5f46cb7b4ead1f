"""kafka-python (PyPI kafka-python 3.0.12, installed in .venv by scripts/setup.sh) as an
app runs it, for the live client matrix (tests/live/envoy_client_matrix.rs). Like
tests/live/java/JavaClients.java, every figure it prints is what the client itself saw
acknowledged or delivered, one line per topic, for the test to hold the filter's counts
against:

  create   <bootstrap> <partitions> <topic>...   (KafkaAdminClient, replication 1; no
           Metadata names them)
  produce  <bootstrap> <topic> <records> none|gzip
           -> "acked <topic> <n>" (kafka-python 3's default producer: idempotent,
              acks=all; every record's future waited for)
  consume  <bootstrap> <group> <expected> <topic>...
           -> "consumed <topic> <n>" once <expected> records arrived (or 90 s passed)

Codecs: kafka-python 3.0.12 compresses gzip with the standard library alone; snappy, lz4
and zstd need the extra packages python-snappy, lz4 and zstandard (kafka/codec.py), which
the project does not install, so only none and gzip.

Run with .venv/bin/python.
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

CLIENT_ID = "kiosk-kafka-python"
CODECS = {"none": None, "gzip": "gzip"}


def create(bootstrap, partitions, topics):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=CLIENT_ID)
    try:
        for topic in topics:
            try:
                # No wait_for_metadata: a Metadata naming the topic would teach the
                # sidecar its id before the producer's own Metadata does (as for an app).
                admin.create_topics(
                    {topic: {"num_partitions": partitions, "replication_factor": 1}},
                    timeout_ms=30000,
                )
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def value(topic, i):
    """Compressible, but not trivially: a counter inside repeated text, about 200 bytes
    (as JavaClients.value)."""
    s = f"record {i} of {topic}"
    return ("0" * max(0, 200 - len(s)) + s).encode()


def produce(bootstrap, topic, records, codec):
    if codec not in CODECS:
        raise SystemExit(f"codec {codec}: kafka-python here has only {sorted(CODECS)}")
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT_ID,
        compression_type=CODECS[codec],
        linger_ms=5,
    )
    try:
        sent = [
            producer.send(topic, key=f"key-{i}".encode(), value=value(topic, i))
            for i in range(records)
        ]
        producer.flush()
        acked = 0
        for future in sent:
            future.get(timeout=90)
            acked += 1
        print(f"acked {topic} {acked}", flush=True)
    finally:
        producer.close()


def consume(bootstrap, group, expected, topics):
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id=CLIENT_ID,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    got = {t: 0 for t in topics}
    try:
        consumer.subscribe(topics)
        deadline = time.monotonic() + 90
        total = 0
        while total < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                for r in records:
                    got[r.topic] = got.get(r.topic, 0) + 1
                    total += 1
        consumer.commit()
        # Keep fetching at the end for a moment: a record beyond <expected> would show.
        idle = time.monotonic() + 2
        while time.monotonic() < idle:
            for records in consumer.poll(timeout_ms=100).values():
                for r in records:
                    got[r.topic] = got.get(r.topic, 0) + 1
    finally:
        consumer.close()
    for topic in sorted(got):
        print(f"consumed {topic} {got[topic]}", flush=True)


def main(args):
    command = args[0] if args else ""
    if command == "create" and len(args) >= 4:
        create(args[1], int(args[2]), args[3:])
    elif command == "produce" and len(args) == 5:
        produce(args[1], args[2], int(args[3]), args[4])
    elif command == "consume" and len(args) >= 5:
        consume(args[1], args[2], int(args[3]), args[4:])
    else:
        raise SystemExit(
            "usage: kafka_python_client.py create <bootstrap> <partitions> <topic>... | "
            "produce <bootstrap> <topic> <records> none|gzip | "
            "consume <bootstrap> <group> <expected> <topic>..."
        )


if __name__ == "__main__":
    main(sys.argv[1:])
