"""Produces one record batch whose zstd-compressed body is garbage, with a
raw Kafka Produce request (v3) to the partition's leader, and reports the
broker's answer as a JSON line. An independent producer for the test that
an undecodable batch follows the pipeline's poison policy.

Usage: python kafka_corrupt_batch.py BOOTSTRAP TOPIC [--partition 0]
"""

import argparse
import json
import socket
import struct
import sys
import time

from confluent_kafka.admin import AdminClient


def crc32c(data):
    table = crc32c.table
    if table is None:
        table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
        crc32c.table = table
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


crc32c.table = None

ZSTD = 4


def corrupt_batch(count):
    now = int(time.time() * 1000)
    # What follows the CRC: attributes .. records (a zstd frame header and junk).
    after_crc = struct.pack(">hiqqqhii", ZSTD, count - 1, now, now, -1, -1, -1, count)
    after_crc += b"\x28\xb5\x2f\xfd" + b"\x00\xffnot zstd at all" * 4
    crc = crc32c(after_crc)
    body = struct.pack(">ibI", 0, 2, crc) + after_crc  # leader epoch, magic, crc
    return struct.pack(">qi", 0, len(body)) + body


def string(text):
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def produce_request(topic, partition, batch, correlation):
    header = struct.pack(">hhi", 0, 3, correlation) + string("corrupt-batch")
    body = struct.pack(">hhi", -1, -1, 10000)  # no transactional id, acks=all, timeout
    body += struct.pack(">i", 1) + string(topic)
    body += struct.pack(">i", 1) + struct.pack(">i", partition)
    body += struct.pack(">i", len(batch)) + batch
    message = header + body
    return struct.pack(">i", len(message)) + message


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the broker closed the connection")
        data += chunk
    return data


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("--partition", type=int, default=0)
    parser.add_argument("--records", type=int, default=3)
    args = parser.parse_args(argv)

    metadata = AdminClient({"bootstrap.servers": args.bootstrap}).list_topics(args.topic, timeout=10)
    leader = metadata.topics[args.topic].partitions[args.partition].leader
    broker = metadata.brokers[leader]
    with socket.create_connection((broker.host, broker.port), timeout=10) as sock:
        sock.sendall(produce_request(args.topic, args.partition, corrupt_batch(args.records), 7))
        size = struct.unpack(">i", read_exact(sock, 4))[0]
        answer = read_exact(sock, size)
    correlation, topics = struct.unpack(">ii", answer[:8])
    pos = 8
    name_len = struct.unpack(">h", answer[pos:pos + 2])[0]
    pos += 2 + name_len
    _, index, error, base_offset = struct.unpack(">iihq", answer[pos:pos + 18])
    print(json.dumps({"event": "produced", "error_code": error, "base_offset": base_offset,
                      "partition": index, "leader": f"{broker.host}:{broker.port}"}), flush=True)
    return 0 if error == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
