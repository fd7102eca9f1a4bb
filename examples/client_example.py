#!/usr/bin/python3
"""Create a collection, upsert three points with metadata and search it.

Run it against a running vecdb-server, with the Python stubs that the build
generates on PYTHONPATH:

    PYTHONPATH=build/python /usr/bin/python3 examples/client_example.py
"""

import argparse

import grpc

from vecdb.v1 import vecdb_pb2, vecdb_pb2_grpc


def make_point(point_id, vector, **metadata):
    point = vecdb_pb2.Point(id=point_id, vector=vector)
    point.metadata.update(metadata)
    return point


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default="127.0.0.1:50051",
                        help="vecdb-server address, HOST:PORT "
                        "(default: %(default)s)")
    args = parser.parse_args()

    with grpc.insecure_channel(args.server) as channel:
        db = vecdb_pb2_grpc.VectorDBStub(channel)

        # Three-dimensional vectors compared by cosine similarity. The index
        # defaults to HNSW with default parameters.
        info = db.CreateCollection(vecdb_pb2.CreateCollectionRequest(
            name="example_fruit", dimension=3, metric=vecdb_pb2.COSINE))
        print(f"created {info.name}, index "
              f"{vecdb_pb2.IndexKind.Name(info.index.kind)}")

        db.Upsert(vecdb_pb2.UpsertRequest(
            collection="example_fruit",
            points=[
                make_point("apple", [0.9, 0.1, 0.0], color="red", price=1.2),
                make_point("banana", [0.1, 0.9, 0.0], color="yellow",
                           price=0.5),
                make_point("cherry", [0.8, 0.0, 0.2], color="red", price=4.0),
            ]))

        response = db.Search(vecdb_pb2.SearchRequest(
            collection="example_fruit", vector=[1.0, 0.0, 0.0], top_k=2,
            include_metadata=True))
        for hit in response.hits:
            print(f"{hit.id}: score {hit.score:.3f}, "
                  f"color {hit.metadata['color']}")

        db.DropCollection(vecdb_pb2.DropCollectionRequest(name="example_fruit"))


if __name__ == "__main__":
    main()
