"""
Four-letter words: every word ZooKeeper 3.8 answers is answered by zkreg, in ZooKeeper's
format where monitoring tools parse it (srvr, stat, mntr), and a word left out of the
whitelist gets ZooKeeper's refusal text.

Each test that can runs against both servers (C{any_server}); the format tests put
zkreg's answer beside Apache ZooKeeper's and compare the keys, their order and the shape
of each value (integer, decimal, hex, text), not the values, which differ by load.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.support.servers import ServerProcess

pytestmark = pytest.mark.timeout(120)

#: Every word the task requires zkreg to answer.
WORDS = (
    "ruok",
    "srvr",
    "stat",
    "conf",
    "cons",
    "crst",
    "dump",
    "envi",
    "mntr",
    "wchs",
    "wchc",
    "wchp",
    "dirs",
    "isro",
    "srst",
)

_INT = re.compile(r"-?\d+\Z")
_FLOAT = re.compile(r"-?\d+\.\d+(?:[eE]-?\d+)?\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_CLIENT_LINE = re.compile(r" /127\.0\.0\.1:\d+\[\d+\]\(queued=\d+,recved=\d+,sent=\d+.*\)\Z")


def value_shape(value: str) -> str:
    """
    @return: the kind of a four-letter value: C{int}, C{float}, C{hex}, C{text}, or for
        slash-separated numbers (C{Latency min/avg/max: 0/0.5/3}) the kinds joined by /.
    """
    value = value.strip()
    if _INT.match(value):
        return "int"
    if _FLOAT.match(value):
        return "float"
    if _HEX.match(value):
        return "hex"
    parts = value.split("/")
    if len(parts) > 1 and all(_INT.match(p) or _FLOAT.match(p) for p in parts):
        return "/".join(value_shape(p) for p in parts)
    return "text"


def colon_structure(answer: str) -> list[tuple[str, str]]:
    """
    @return: C{(key, value shape)} of each C{Key: value} line of a srvr/stat answer.
    """
    pairs = []
    for line in answer.splitlines():
        if ": " in line and not line.startswith(" "):
            key, value = line.split(": ", 1)
            pairs.append((key, value_shape(value)))
    return pairs


def mntr_structure(answer: str) -> list[tuple[str, str]]:
    """@return: C{(key, value shape)} of each line of a mntr answer."""
    pairs = []
    for line in answer.splitlines():
        key, tab, value = line.partition("\t")
        assert tab, f"mntr line without a tab: {line!r}"
        pairs.append((key, value_shape(value)))
    return pairs


_PER_NAMESPACE = re.compile(r"zk_(avg|min|max|cnt|sum)_(.+)_(read|write)_per_namespace\Z")


def split_namespaces(
    structure: list[tuple[str, str]], own_base: str
) -> tuple[list[tuple[str, str]], set[tuple[str, str, str]]]:
    """
    Take ZooKeeper's per-namespace metrics (C{zk_avg_<top-level znode>_read_per_namespace}
    and so on) out of a mntr structure: which namespaces appear depends on what other
    tests touched, so only those of this test's own top-level path are compared.

    @return: the structure without them, and C{(stat, read/write, shape)} of the ones
        for C{own_base}.
    """
    own = own_base.strip("/").split("/")[0]
    rest, spaces = [], set()
    for key, shape in structure:
        match = _PER_NAMESPACE.match(key)
        if match is None:
            rest.append((key, shape))
        elif match[2] == own:
            spaces.add((match[1], match[3], shape))
    return rest, spaces


@pytest.fixture(scope="module")
def watched_state(request: pytest.FixtureRequest) -> Iterator[dict[str, dict[str, object]]]:
    """
    Per server: a kazoo session holding an ephemeral node, a data watch and a child
    watch, so that cons, dump and the watch words have something to list.
    """
    from kazoo.client import KazooClient

    states: dict[str, dict[str, object]] = {}
    clients = []

    def for_server(server: ServerProcess) -> dict[str, object]:
        if server.name in states:
            return states[server.name]
        client = KazooClient(hosts=server.hosts, timeout=10.0)
        clients.append(client)
        client.start(timeout=15)
        base = f"/fourletter_{uuid.uuid4().hex[:8]}"
        ephemeral = f"{base}/eph"
        client.create(base, b"data")
        client.create(ephemeral, b"", ephemeral=True)
        client.get(base, watch=lambda event: None)
        client.get_children(base, watch=lambda event: None)
        state = {
            "client": client,
            "base": base,
            "ephemeral": ephemeral,
            "session": f"0x{client.client_id[0]:x}",
        }
        states[server.name] = state
        return state

    yield for_server  # type: ignore[misc]
    for client in clients:
        client.stop()
        client.close()


@pytest.mark.parametrize("word", WORDS)
def test_word_is_answered(any_server: ServerProcess, word: str, watched_state) -> None:
    """Every required word gets an answer (with watches and an ephemeral present)."""
    watched_state(any_server)
    answer = any_server.four_letter(word)
    assert answer.strip(), f"{any_server.name} gave no answer to {word}"
    assert "is not executed" not in answer


def test_ruok(any_server: ServerProcess) -> None:
    """ruok is answered with exactly imok (no newline), as ZooKeeper does."""
    assert any_server.four_letter("ruok") == "imok"


def test_isro(any_server: ServerProcess) -> None:
    """A standalone read-write server answers isro with rw."""
    assert any_server.four_letter("isro").strip() == "rw"


def test_resets(any_server: ServerProcess) -> None:
    """srst and crst answer with ZooKeeper's confirmation sentences."""
    assert any_server.four_letter("srst") == "Server stats reset.\n"
    assert any_server.four_letter("crst") == "Connection stats reset.\n"


def test_srvr_matches_zookeeper(
    zk_oracle: ServerProcess, zkreg_server: ServerProcess, watched_state
) -> None:
    """srvr has ZooKeeper 3.8's lines, in its order, with values of the same shape."""
    watched_state(zk_oracle)
    watched_state(zkreg_server)
    expected = colon_structure(zk_oracle.four_letter("srvr"))
    answer = zkreg_server.four_letter("srvr")
    assert colon_structure(answer) == expected, answer
    assert "Mode: standalone\n" in answer
    assert answer.startswith("Zookeeper version: ")
    assert answer.endswith("\n")


def test_stat_matches_zookeeper(
    zk_oracle: ServerProcess, zkreg_server: ServerProcess, watched_state
) -> None:
    """
    stat is srvr plus a Clients section: one line per connection, a blank line, then
    the srvr lines (ZooKeeper's layout).
    """
    watched_state(zk_oracle)
    watched_state(zkreg_server)
    expected = colon_structure(zk_oracle.four_letter("stat"))
    answer = zkreg_server.four_letter("stat")
    assert colon_structure(answer) == expected, answer
    lines = answer.splitlines()
    assert lines[1] == "Clients:", answer
    blank = lines.index("", 2)
    clients = lines[2:blank]
    assert len(clients) >= 2, answer  # the kazoo session and this connection
    for line in clients:
        assert _CLIENT_LINE.match(line), line
    assert lines[blank + 1].startswith("Latency min/avg/max: "), answer


def test_mntr_matches_zookeeper(
    zk_oracle: ServerProcess, zkreg_server: ServerProcess, watched_state
) -> None:
    """
    mntr has ZooKeeper 3.8's keys in ZooKeeper's order, each value of the same shape,
    as C{zk_<key>\\t<value>} lines (what the Prometheus and Nagios exporters parse).
    """
    oracle_base = watched_state(zk_oracle)["base"]
    zkreg_base = watched_state(zkreg_server)["base"]
    expected, expected_spaces = split_namespaces(
        mntr_structure(zk_oracle.four_letter("mntr")), oracle_base
    )
    actual, actual_spaces = split_namespaces(
        mntr_structure(zkreg_server.four_letter("mntr")), zkreg_base
    )
    assert actual_spaces == expected_spaces, "per-namespace metrics of the test's own path"
    assert actual[:2] == [("zk_version", "text"), ("zk_server_state", "text")]
    expected_keys = [key for key, _ in expected]
    actual_keys = [key for key, _ in actual]
    missing = [key for key in expected_keys if key not in actual_keys]
    invented = [key for key in actual_keys if key not in expected_keys]
    assert not invented, f"keys ZooKeeper does not have: {invented}"
    assert not missing, f"{len(missing)} of ZooKeeper's keys missing, e.g. {missing[:20]}"
    assert actual_keys == expected_keys, "same keys, different order"
    shapes = dict(expected)
    wrong = [(key, shape, shapes[key]) for key, shape in actual if shape != shapes[key]]
    assert not wrong, f"(key, zkreg shape, ZooKeeper shape): {wrong}"


def test_mntr_counts_what_is_there(zkreg_server: ServerProcess, watched_state) -> None:
    """mntr's gauges reflect the server: connections, ephemerals, watches, znodes."""
    watched_state(zkreg_server)
    values = dict(line.split("\t", 1) for line in zkreg_server.four_letter("mntr").splitlines())
    assert values["zk_server_state"] == "standalone"
    assert int(values["zk_num_alive_connections"]) >= 1
    assert int(values["zk_ephemerals_count"]) >= 1
    assert int(values["zk_watch_count"]) >= 2
    assert int(values["zk_znode_count"]) >= 4  # /, /zookeeper, /zookeeper/quota, ours


def test_conf(any_server: ServerProcess) -> None:
    """conf lists key=value settings with ZooKeeper's names, the port and the timeouts."""
    answer = any_server.four_letter("conf")
    settings = dict(line.split("=", 1) for line in answer.splitlines() if line)
    assert settings["clientPort"] == str(any_server.port)
    assert settings["tickTime"] == "2000"
    assert settings["minSessionTimeout"] == "4000"
    assert settings["maxSessionTimeout"] == "40000"
    for key in ("dataDir", "maxClientCnxns", "serverId"):
        assert key in settings, answer


def test_cons_lists_the_session(any_server: ServerProcess, watched_state) -> None:
    """cons has one line per connection; the kazoo session's line carries its sid."""
    state = watched_state(any_server)
    answer = any_server.four_letter("cons")
    lines = [line for line in answer.splitlines() if line]
    assert all(_CLIENT_LINE.match(line) for line in lines), answer
    assert any(f"sid={state['session']}," in line for line in lines), answer


def test_dump_lists_ephemerals(any_server: ServerProcess, watched_state) -> None:
    """dump lists each session's ephemeral nodes under "Sessions with Ephemerals"."""
    state = watched_state(any_server)
    answer = any_server.four_letter("dump")
    assert answer.startswith("SessionTracker dump:\n"), answer
    ephemerals = answer.split("ephemeral nodes dump:\n", 1)[1]
    assert re.match(r"Sessions with Ephemerals \(\d+\):\n", ephemerals), answer
    assert f"{state['session']}:\n\t{state['ephemeral']}\n" in ephemerals, answer


def test_envi(any_server: ServerProcess) -> None:
    """envi starts with "Environment:" and lists key=value pairs."""
    lines = any_server.four_letter("envi").splitlines()
    assert lines[0] == "Environment:"
    keys = {line.split("=", 1)[0] for line in lines[1:] if "=" in line}
    assert {"zookeeper.version", "host.name", "os.name"} <= keys, lines


def test_wchs(any_server: ServerProcess, watched_state) -> None:
    """wchs is ZooKeeper's two-line watch summary."""
    watched_state(any_server)
    answer = any_server.four_letter("wchs")
    match = re.fullmatch(r"(\d+) connections watching (\d+) paths\nTotal watches:(\d+)\n", answer)
    assert match, repr(answer)
    assert int(match[1]) >= 1 and int(match[2]) >= 1 and int(match[3]) >= 1


def test_wchc(any_server: ServerProcess, watched_state) -> None:
    """wchc lists watched paths under each session id, tab-indented."""
    state = watched_state(any_server)
    answer = any_server.four_letter("wchc")
    assert f"{state['session']}\n" in answer, answer
    block = answer.split(f"{state['session']}\n", 1)[1].split("\n\n")[0]
    assert f"\t{state['base']}" in block.splitlines(), answer


def test_wchp(any_server: ServerProcess, watched_state) -> None:
    """wchp lists the watching session ids under each path, tab-indented."""
    state = watched_state(any_server)
    answer = any_server.four_letter("wchp")
    assert f"{state['base']}\n\t{state['session']}\n" in answer, answer


def test_dirs(any_server: ServerProcess) -> None:
    """dirs gives the data and log directory sizes in bytes."""
    answer = any_server.four_letter("dirs")
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", answer), repr(answer)


@pytest.fixture(params=["zookeeper", "zkreg"])
def restricted_server(request: pytest.FixtureRequest, server_factory) -> ServerProcess:
    """A server whose whitelist has only srvr and ruok (ruok: the launcher polls it)."""
    if request.param == "zookeeper":
        return server_factory(
            "zookeeper",
            extra_config={"4lw.commands.whitelist": "srvr,ruok"},
            extra_jvm_args=["-Dzookeeper.4lw.commands.whitelist=srvr,ruok"],
        )
    return server_factory("zkreg", extra_args=["--4lw-whitelist", "srvr,ruok"])


def test_word_outside_whitelist_is_refused(restricted_server: ServerProcess) -> None:
    """A known word not in the whitelist gets ZooKeeper's refusal sentence."""
    for word in ("stat", "mntr", "cons"):
        answer = restricted_server.four_letter(word)
        assert answer == f"{word} is not executed because it is not in the whitelist.\n"
    assert restricted_server.four_letter("srvr").startswith("Zookeeper version: ")


def test_unknown_word_closes_silently(any_server: ServerProcess) -> None:
    """
    Four bytes that are no word are read as a frame length far over the limit:
    ZooKeeper closes without answering, and so must zkreg (and stay up).
    """
    assert any_server.four_letter("abcd") == ""
    assert any_server.four_letter("ruok") == "imok"


def _counts(server: ServerProcess) -> dict[str, str]:
    srvr = dict(
        line.split(": ", 1) for line in server.four_letter("srvr").splitlines() if ": " in line
    )
    mntr = dict(line.split("\t", 1) for line in server.four_letter("mntr").splitlines())
    return {
        "Node count": srvr["Node count"],
        "Received": srvr["Received"],
        "Sent": srvr["Sent"],
        "Zxid": srvr["Zxid"],
        "zk_znode_count": mntr["zk_znode_count"],
        "zk_ephemerals_count": mntr["zk_ephemerals_count"],
        "zk_watch_count": mntr["zk_watch_count"],
    }


def test_counts_match_zookeeper_for_the_same_history(server_factory, kazoo_client) -> None:
    """
    Fresh servers given the same history (after srst) report the same packet counts,
    node count, zxid, ephemeral and watch counts.  ZooKeeper's node count includes its
    root twice (as "" and "/"), and its Sent counts four-letter answers: monitoring
    compares these numbers across servers, so zkreg must count the same way.
    """
    counts = {}
    for kind in ("zookeeper", "zkreg"):
        server = server_factory(kind)
        server.four_letter("srst")
        client = kazoo_client(server)
        client.create("/a", b"1")
        client.create("/a/b", b"2")
        client.create("/a/e", b"", ephemeral=True)
        client.get("/a", watch=lambda event: None)
        client.get_children("/a", watch=lambda event: None)
        counts[kind] = _counts(server)
    assert counts["zkreg"] == counts["zookeeper"]
