"""Write the seed inputs of the fuzz targets into fuzz/corpus.

Run from the repository root after a build, with the generated Python
stubs on the path:
  PYTHONPATH=build/python /usr/bin/python3 fuzz/make_seeds.py
"""

import os

from google.protobuf import struct_pb2
from vecdb.v1 import vecdb_pb2

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, payload):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(payload)


def field(number, payload):
    """Encode a length-delimited protobuf field."""
    key = number << 3 | 2
    length = len(payload)
    encoded = bytearray([key])
    while True:
        byte = length & 0x7F
        length >>= 7
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(encoded) + payload


def metadata(values):
    result = struct_pb2.Struct()
    result.update(values)
    return result


def main():
    nested = metadata({"author": {"name": "Ada", "tags": ["a", "b", 3]},
                       "year": 1843, "draft": False, "note": None})
    point = vecdb_pb2.Point(id="p1", vector=[0.5, -1.0, 2.0],
                            metadata=nested)
    write("request_validation_fuzzer", "upsert",
          vecdb_pb2.UpsertRequest(collection="docs",
                                  points=[point]).SerializeToString())
    write("request_validation_fuzzer", "search",
          vecdb_pb2.SearchRequest(collection="docs", vector=[1, 0, 0],
                                  top_k=5).SerializeToString())
    write("metadata_fuzzer", "nested", nested.SerializeToString())

    filter_message = vecdb_pb2.Filter(
        must=[vecdb_pb2.Condition(field=vecdb_pb2.FieldCondition(
            key="author.name", match=struct_pb2.Value(string_value="Ada")))],
        should=[vecdb_pb2.Condition(field=vecdb_pb2.FieldCondition(
            key="year", range=vecdb_pb2.Range(gte=1800, lt=1900)))],
        must_not=[vecdb_pb2.Condition(has_id=vecdb_pb2.HasId(
            ids=["p2"]))])
    write("filter_fuzzer", "filter_and_point",
          field(1, filter_message.SerializeToString()) +
          field(3, point.SerializeToString()))


if __name__ == "__main__":
    main()
