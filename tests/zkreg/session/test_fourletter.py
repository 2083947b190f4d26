"""
Four-letter answers against recordings of Apache ZooKeeper 3.8.0 (fixtures/), line by
line: same keys in the same order, values of the same shape.
"""

from __future__ import annotations

import re
from pathlib import Path

from twisted.internet import address, task
from twisted.internet.testing import StringTransport

from zkreg.config import ServerConfig
from zkreg.session.factory import SessionServerFactory
from zkreg.session.stats import java_concurrent_hash_map_order, java_double, rounded_average

from .fakes import FakeLink

FIXTURES = Path(__file__).parent / "fixtures"


def shape(value: str) -> str:
    if re.fullmatch(r"-?\d+", value):
        return "int"
    if re.fullmatch(r"-?\d+\.\d+(E-?\d+)?", value):
        return "float"
    if re.fullmatch(r"0x[0-9a-f]+", value):
        return "hex"
    if re.fullmatch(r"\d+/[\d.]+/\d+", value):
        return "latency"
    return "text"


def structure(text: str, separator: str) -> list[tuple[str, str]]:
    pairs = []
    for line in text.splitlines():
        if separator in line and not line.startswith(" "):
            key, value = line.split(separator, 1)
            pairs.append((key, shape(value)))
    return pairs


def make_factory(**config) -> SessionServerFactory:
    config.setdefault("four_letter_words", frozenset({"*"}))
    return SessionServerFactory(
        ServerConfig(**config), FakeLink(), task.Clock(), reader=lambda *a: (0, None)
    )


def ask(factory: SessionServerFactory, word: str, port: int = 50000) -> str:
    peer = address.IPv4Address("TCP", "127.0.0.1", port)
    proto = factory.buildProtocol(peer)
    transport = StringTransport(peerAddress=peer)
    proto.makeConnection(transport)
    proto.dataReceived(word.encode())
    proto.connectionLost(None)
    return transport.value().decode()


def test_srvr_lines_match_zookeeper():
    expected = (FIXTURES / "zookeeper-3.8.0-srvr.txt").read_text()
    answer = ask(make_factory(), "srvr")
    assert structure(answer, ": ") == structure(expected, ": ")
    assert answer.endswith("Mode: standalone\nNode count: 0\n")


def test_stat_lists_clients_then_srvr_lines():
    expected = (FIXTURES / "zookeeper-3.8.0-stat.txt").read_text()
    factory = make_factory()
    peer = address.IPv4Address("TCP", "127.0.0.1", 40000)
    other = factory.buildProtocol(peer)
    other.makeConnection(StringTransport(peerAddress=peer))
    answer = ask(factory, "stat")
    assert structure(answer, ": ") == structure(expected, ": ")
    lines = answer.splitlines()
    assert lines[1] == "Clients:"
    assert lines[2] == " /127.0.0.1:40000[1](queued=0,recved=0,sent=0)"
    assert lines[3] == " /127.0.0.1:50000[0](queued=0,recved=1,sent=0)"
    assert lines[4] == ""


def test_mntr_keys_and_shapes_match_zookeeper():
    expected = (FIXTURES / "zookeeper-3.8.0-mntr.txt").read_text()
    answer = ask(make_factory(), "mntr")
    assert all("\t" in line for line in answer.splitlines())
    assert structure(answer, "\t") == structure(expected, "\t")


def test_mntr_per_namespace_after_fixed_keys():
    factory = make_factory()
    factory.namespace_stats.read("/a/b", 3)
    factory.namespace_stats.write("/a", 5)
    lines = ask(factory, "mntr").splitlines()
    assert lines[-10:] == [
        "zk_avg_a_read_per_namespace\t75.0",
        "zk_min_a_read_per_namespace\t75",
        "zk_max_a_read_per_namespace\t75",
        "zk_cnt_a_read_per_namespace\t1",
        "zk_sum_a_read_per_namespace\t75",
        "zk_avg_a_write_per_namespace\t7.0",
        "zk_min_a_write_per_namespace\t7",
        "zk_max_a_write_per_namespace\t7",
        "zk_cnt_a_write_per_namespace\t1",
        "zk_sum_a_write_per_namespace\t7",
    ]


def test_java_formats():
    assert java_double(0.0) == "0.0"
    assert java_double(1.75) == "1.75"
    assert java_double(rounded_average(1, 3)) == "0.3333"
    assert java_double(rounded_average(2, 3)) == "0.6667"
    assert java_double(0.0001) == "1.0E-4"


def test_hash_map_order():
    """Java iterates a small map by hash bucket (hash & 15), then insertion order."""
    assert java_concurrent_hash_map_order(["b", "a"]) == ["a", "b"]  # bins 2, 1
    assert java_concurrent_hash_map_order(["q", "a"]) == ["q", "a"]  # both bin 1
    assert java_concurrent_hash_map_order(["b", "q"]) == ["q", "b"]


def test_conf():
    answer = ask(make_factory(listen="tcp:2999:interface=127.0.0.1"), "conf")
    settings = dict(line.split("=", 1) for line in answer.splitlines())
    assert settings["clientPort"] == "2999"
    assert settings["minSessionTimeout"] == "4000"
    assert settings["maxSessionTimeout"] == "40000"
    assert list(settings) == [
        "clientPort", "secureClientPort", "dataDir", "dataDirSize", "dataLogDir",
        "dataLogSize", "tickTime", "maxClientCnxns", "minSessionTimeout",
        "maxSessionTimeout", "clientPortListenBacklog", "serverId",
    ]  # fmt: skip


def test_simple_words():
    factory = make_factory()
    assert ask(factory, "ruok") == "imok"
    assert ask(factory, "isro") == "rw"
    assert ask(factory, "srst") == "Server stats reset.\n"
    assert ask(factory, "crst") == "Connection stats reset.\n"
    assert ask(factory, "wchs") == "0 connections watching 0 paths\nTotal watches:0\n"
    assert ask(factory, "wchc") == "\n"
    assert ask(factory, "wchp") == "\n"
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", ask(factory, "dirs"))
    assert ask(factory, "envi").startswith("Environment:\nzookeeper.version=3.8.0-zkreg")
    assert ask(factory, "dump").startswith("SessionTracker dump:\nSession Sets (0)/(0):\n")
