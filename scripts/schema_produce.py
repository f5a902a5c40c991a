#!/usr/bin/env python3
"""Encodes JSON records with Confluent's own serializers and produces them to Kafka.

An encoder independent of the bridge: each stdin line (one JSON object) is encoded by
confluent-kafka's AvroSerializer or JSONSerializer, which register the schema in the registry
(auto-register, TopicNameStrategy: subject `<topic>-value`) and frame the value in Confluent's
wire format (magic byte 0, 4-byte big-endian schema id, payload). The values are produced to
`--topic`, or with `--raw-out FILE` written to FILE as one hex line each (no broker needed).

Without a registry (topics that carry one fixed schema, `schema_file:` blocks): `--format
protobuf_raw` writes protobuf's own `SerializeToString()` of `--message` (the schema file is then
a binary FileDescriptorSet, as for `--format protobuf`); `--format
avro_raw` writes fastavro's bare datum (`schemaless_writer`), `--format avro_single_object` puts
Avro's single-object header first (marker C3 01, then the schema's CRC-64-AVRO fingerprint as
fastavro computes it: its hex is already the 8 bytes in little-endian order, as Java gives them).

    scripts/schema_produce.py --registry http://127.0.0.1:8081 --format avro \\
        --schema-file user.avsc --topic users --bootstrap 127.0.0.1:9092 --key-field id < users.jsonl

Needs confluent-kafka[avro,schemaregistry,json]==2.16.2 and fastavro (the Rust tests build a venv
with them: tests/support/python_serializers.rs). Exits non-zero if any record fails to encode or
to be delivered; prints `produced N` at the end.
"""

import argparse
import io
import json
import sys

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

# Confluent's wire format: magic byte 0 and a 4-byte schema id before the payload.
HEADER_LEN = 5


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--registry", help="schema registry URL (not for the *_raw / single-object "
                   "formats)")
    p.add_argument("--format", required=True, choices=["avro", "json_schema", "protobuf",
                                                       "avro_raw", "avro_single_object",
                                                       "protobuf_raw"])
    p.add_argument("--message", help="--format protobuf: the full name of the message type; "
                   "--schema-file is then a binary FileDescriptorSet holding it and its imports")
    p.add_argument("--schema-file", required=True)
    p.add_argument("--topic", required=True, help="also names the subject: <topic>-value")
    p.add_argument("--bootstrap", help="Kafka bootstrap servers (required unless --raw-out)")
    p.add_argument("--key-field", help="record field whose value (UTF-8) is the message key")
    p.add_argument("--basic-auth", help="user:pass for the registry")
    p.add_argument("--message-timeout-ms", type=int, default=30000,
                   help="give up on a delivery after this long (default 30000; flush waits 60 s)")
    p.add_argument("--raw-out", help="write hex-encoded values to this file instead of Kafka")
    p.add_argument("--fastavro-check", action="store_true",
                   help="decode each Avro value with fastavro after the 5-byte header and "
                        "require the record back")
    args = p.parse_args(argv)
    local = args.format.startswith("avro_") or args.format == "protobuf_raw"
    if (args.registry is None) != local:
        p.error("--registry is required for the registry formats, and only for them")
    if args.raw_out is None and args.bootstrap is None:
        p.error("--bootstrap is required unless --raw-out is given")
    if args.fastavro_check and args.format != "avro":
        p.error("--fastavro-check applies to --format avro only")
    return args


def local_avro(framing, schema_str):
    """A bare-datum or single-object Avro encoder with fastavro alone (no registry)."""
    from fastavro import parse_schema, schemaless_writer
    from fastavro.schema import fingerprint, to_parsing_canonical_form

    parsed = parse_schema(json.loads(schema_str))
    header = b""
    if framing == "avro_single_object":
        crc = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
        header = b"\xc3\x01" + bytes.fromhex(crc)

    def encode(record, _ctx):
        out = io.BytesIO()
        out.write(header)
        schemaless_writer(out, parsed, record)
        return out.getvalue()

    return encode


def serializer(args, schema_str):
    if args.format.startswith("avro_"):
        return local_avro(args.format, schema_str)
    if args.format == "protobuf_raw":
        from google.protobuf.json_format import ParseDict

        cls = protobuf_class(args.schema_file, args.message)
        return lambda record, _ctx: ParseDict(record, cls()).SerializeToString()
    conf = {"url": args.registry}
    if args.basic_auth:
        conf["basic.auth.user.info"] = args.basic_auth
    client = SchemaRegistryClient(conf)
    ser_conf = {"auto.register.schemas": True}
    if args.format == "avro":
        return AvroSerializer(schema_registry_client=client, schema_str=schema_str, conf=ser_conf)
    if args.format == "protobuf":
        from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
        from google.protobuf.json_format import ParseDict

        cls = protobuf_class(args.schema_file, args.message)
        proto_ser = ProtobufSerializer(cls, client, {**ser_conf, "use.deprecated.format": False})

        def encode(record, ctx):
            # The record is the message in protobuf's JSON mapping (enum names, RFC 3339
            # timestamps, plain values for wrappers).
            return proto_ser(ParseDict(record, cls()), ctx)

        return encode
    return JSONSerializer(schema_str=schema_str, schema_registry_client=client, conf=ser_conf)


def protobuf_class(descriptor_set_file, message):
    """The message class of `message` from a binary FileDescriptorSet, built at run time."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    # Loads Google's well-known types into the default pool (ProtobufSerializer's imports do it
    # too; the registry-less path does not import it).
    from google.protobuf import (any_pb2, duration_pb2, struct_pb2,  # noqa: F401
                                 timestamp_pb2, wrappers_pb2)

    with open(descriptor_set_file, "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.Default()
    for file in fds.file:
        # The well-known types are in the default pool already.
        if not file.name.startswith("google/protobuf/"):
            pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(message))
    return JSONSerializer(schema_str=schema_str, schema_registry_client=client, conf=ser_conf)


def fastavro_check(schema_str, record, value):
    # Imported here so the JSON path does not need fastavro.
    from fastavro import parse_schema, schemaless_reader

    if len(value) < HEADER_LEN or value[0] != 0:
        raise AssertionError(f"value does not start with magic byte 0: {value[:HEADER_LEN].hex()}")
    parsed = parse_schema(json.loads(schema_str))
    decoded = schemaless_reader(io.BytesIO(value[HEADER_LEN:]), parsed, None)
    if decoded != record:
        raise AssertionError(f"fastavro decoded {decoded!r}, expected {record!r}")


def read_records(stream):
    records = []
    for n, line in enumerate(stream, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise SystemExit(f"stdin line {n}: not JSON: {e}")
    return records


def key_of(args, record, n):
    if not args.key_field:
        return None
    if args.key_field not in record:
        raise SystemExit(f"record {n} has no field {args.key_field!r} (--key-field)")
    return str(record[args.key_field]).encode("utf-8")


def main(argv):
    args = parse_args(argv)
    if args.format in ("protobuf", "protobuf_raw"):
        schema_str = None  # the descriptor set is read by the serializer's class
    else:
        with open(args.schema_file, encoding="utf-8") as f:
            schema_str = f.read()
    records = read_records(sys.stdin)
    ser = serializer(args, schema_str)
    ctx = SerializationContext(args.topic, MessageField.VALUE)
    encoded = []
    for n, record in enumerate(records, start=1):
        # Registration errors (401, 503, 422) surface here and end the run with a traceback.
        value = ser(record, ctx)
        if args.fastavro_check:
            fastavro_check(schema_str, record, value)
        encoded.append((key_of(args, record, n), value))

    if args.raw_out:
        with open(args.raw_out, "w", encoding="utf-8") as out:
            for _, value in encoded:
                out.write(value.hex() + "\n")
        print(f"produced {len(encoded)}")
        return 0

    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(f"{msg.topic()}: {err}")

    # A delivery gives up (by default after 30 s) inside flush's 60 s, so a dead broker is
    # reported per message instead of as a bare count.
    producer = Producer({"bootstrap.servers": args.bootstrap, "enable.idempotence": True,
                         "message.timeout.ms": args.message_timeout_ms})
    for key, value in encoded:
        while True:
            try:
                producer.produce(args.topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:
                # The local queue is full: let deliveries drain it, then try again.
                producer.poll(0.5)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        failures.append(f"{remaining} messages still undelivered after 60 s")
    if failures:
        for failure in failures:
            print(f"delivery failed: {failure}", file=sys.stderr)
        return 1
    print(f"produced {len(encoded)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
