"""Produces records with confluent-kafka (its own bundled librdkafka) and
reports each delivery as a JSON line: an independent producer for Sluice's
end-to-end tests.

Values are given base64-encoded, so binary payloads pass unchanged; every
record goes to partition 0 unless --partition says otherwise.

  {"event": "delivered", "index": 0, "partition": 0, "offset": 12}
  {"event": "error", "index": 3, "message": "..."}
  {"event": "done", "delivered": 5}

Usage:
  python kafka_produce.py 127.0.0.1:9092 topic --compression zstd \\
      --key k --value-b64 aGVsbG8= --value-b64 AAEC
"""

import argparse
import base64
import json
import sys

from confluent_kafka import Producer


def emit(**event):
    print(json.dumps(event, sort_keys=True), flush=True)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--compression", default="none",
                        choices=["none", "gzip", "snappy", "lz4", "zstd"])
    parser.add_argument("--key", default=None)
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--value-b64", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.compression,
        # One batch for all the records, so the codec really compresses.
        "linger.ms": 50,
        "acks": "all",
    })
    delivered = 0

    def report(index):
        def on_delivery(error, message):
            nonlocal delivered
            if error is not None:
                emit(event="error", index=index, message=str(error))
            else:
                delivered += 1
                emit(event="delivered", index=index,
                     partition=message.partition(), offset=message.offset())
        return on_delivery

    for index, value in enumerate(args.value_b64):
        producer.produce(args.topic, value=base64.b64decode(value), key=args.key,
                         partition=args.partition, on_delivery=report(index))
    remaining = producer.flush(args.timeout)
    if remaining:
        emit(event="error", index=-1, message=f"{remaining} records not delivered in time")
    emit(event="done", delivered=delivered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
