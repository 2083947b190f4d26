"""
Nanoseconds per encode and decode of the hot records (not a test; run by hand):

    python tests/zkreg/proto/bench_codec.py

Numbers are the best of seven timeit runs, so they show the codec's cost rather than
the machine's noise; kazoo's parsers are timed alongside for scale.
"""

from __future__ import annotations

import timeit

SETUP = """
from zkreg.proto.records import (
    ACL, CreateRequest, ExistsRequest, GetDataRequest, GetDataResponse, Id, ReplyHeader,
    RequestHeader, SetDataRequest, Stat, WatcherEvent,
)
stat = Stat(1 << 32 | 5, 1 << 32 | 9, 1700000000000, 1700000000123, 3, 2, 0, 0, 100, 0, 5)
records = {
    "Stat": stat,
    "GetDataResponse(100 B)": GetDataResponse(b"x" * 100, stat),
    "RequestHeader": RequestHeader(5, 4),
    "ReplyHeader": ReplyHeader(5, 12345, 0),
    "GetDataRequest": GetDataRequest("/some/path/node", True),
    "ExistsRequest": ExistsRequest("/some/path/node", False),
    "SetDataRequest(100 B)": SetDataRequest("/some/path/node", b"x" * 100, -1),
    "CreateRequest(100 B)": CreateRequest(
        "/some/path/node", b"x" * 100, [ACL(31, Id("world", "anyone"))], 0
    ),
    "WatcherEvent": WatcherEvent(3, 3, "/some/path/node"),
}
encoded = {name: record.serialize() for name, record in records.items()}
"""
NUMBER = 200_000


def best_ns(statement: str, setup: str = SETUP) -> float:
    return min(timeit.repeat(statement, setup, number=NUMBER, repeat=7)) / NUMBER * 1e9


def main() -> None:
    namespace: dict = {}
    exec(SETUP, namespace)
    for name in namespace["records"]:
        record_setup = (
            SETUP + f"record = records[{name!r}]\ncls = type(record)\ndata = encoded[{name!r}]\n"
        )
        encode = best_ns("record.serialize()", record_setup)
        decode = best_ns("cls.deserialize(data)", record_setup)
        print(f"{name:24s} encode {encode:6.0f} ns   decode {decode:6.0f} ns")
    kazoo_setup = SETUP + (
        "from kazoo.protocol.serialization import GetData, stat_struct\n"
        "from kazoo.protocol.states import ZnodeStat\n"
    )
    stat_parse = best_ns(
        "ZnodeStat._make(stat_struct.unpack_from(encoded['Stat'], 0))", kazoo_setup
    )
    get_parse = best_ns("GetData.deserialize(encoded['GetDataResponse(100 B)'], 0)", kazoo_setup)
    print(f"{'kazoo Stat parse':24s} {'':16s}   decode {stat_parse:6.0f} ns")
    print(f"{'kazoo GetData parse':24s} {'':16s}   decode {get_parse:6.0f} ns")


if __name__ == "__main__":
    main()
