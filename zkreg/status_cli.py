"""
C{zkreg status --etcd URLs [--etcd-prefix /zkreg] [--json]}: the data tier on etcd as
an operator sees it.

    etcd
      http://127.0.0.1:2379  healthy  raft leader  3.4.23  db 1.1 MiB  revision 1234
    data tier /zkreg  epoch 3
      tcp:127.0.0.1:2888  active   applied zxid 0x300000012  pid 4242
      tcp:127.0.0.1:2889  standby  applied zxid 0x300000012  pid 4243
    snapshot  zxid 0x300000010 (slot 41, 3.2 KiB)  log slots after it: 2

It reads etcd only (each data server keeps C{<prefix>/members/<link>} up to date), so
it works whatever state the data servers are in.  It is a short-lived command, not
the server: it speaks etcd's JSON gateway with the standard library's HTTP client.
Exit codes: 0 fine, 1 no etcd endpoint answered, 3 no active data server.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any, TextIO

from zkreg.persistence.etcd.client import prefix_end
from zkreg.persistence.etcd.config import etcd_endpoints
from zkreg.persistence.etcd.layout import Layout

__all__ = ["add_parser", "run"]

TIMEOUT_S = 3.0


def add_parser(areas: Any) -> None:
    """Add C{status} to C{zkreg}'s sub-commands (C{areas}, an argparse subparsers)."""
    status = areas.add_parser("status", help="the data tier on etcd: active, standbys, etcd health")
    status.add_argument(
        "--etcd", required=True, metavar="URLS", help="etcd client URLs, comma-separated"
    )
    status.add_argument("--etcd-prefix", default="/zkreg", help="the data tier's key prefix")
    status.add_argument("--json", action="store_true", help="print one JSON object")


def _post(endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{endpoint}/v3/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        return json.loads(answer.read())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _health(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/health", timeout=TIMEOUT_S) as answer:
            return json.loads(answer.read()).get("health") == "true"
    except (OSError, ValueError):
        return False


def gather(endpoints: list[str], prefix: str) -> dict[str, Any]:
    """@return: what C{zkreg status} reports, as a dict."""
    layout = Layout(prefix)
    members = []
    answering = None
    for endpoint in endpoints:
        entry: dict[str, Any] = {"endpoint": endpoint, "healthy": _health(endpoint)}
        try:
            status = _post(endpoint, "maintenance/status", {})
        except (OSError, ValueError) as error:
            entry["error"] = str(getattr(error, "reason", error))
        else:
            header = status.get("header", {})
            entry.update(
                version=status.get("version"),
                db_size=int(status.get("dbSize", 0)),
                revision=int(header.get("revision", 0)),
                raft_leader=status.get("leader") == header.get("member_id"),
            )
            answering = answering or endpoint
        members.append(entry)
    report: dict[str, Any] = {"etcd": members, "prefix": prefix}
    if answering is None:
        return report

    def read(key: bytes, end: bytes | None = None, count_only: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"key": _b64(key)}
        if end is not None:
            body["range_end"] = _b64(end)
        if count_only:
            body["count_only"] = True
        return _post(answering, "kv/range", body)

    def value(answer: dict[str, Any]) -> bytes | None:
        kvs = answer.get("kvs") or []
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    leader = value(read(layout.leader))
    epoch = value(read(layout.epoch))
    manifest = value(read(layout.manifest))
    servers = []
    for kv in read(layout.members, prefix_end(layout.members)).get("kvs") or []:
        try:
            servers.append(json.loads(base64.b64decode(kv.get("value", ""))))
        except ValueError:
            continue
    servers.sort(key=lambda server: (server.get("state") != "active", server.get("data_link", "")))
    report.update(
        leader=leader.decode() if leader is not None else None,
        epoch=int(epoch) if epoch is not None else 0,
        data_servers=servers,
        snapshot=json.loads(manifest) if manifest is not None else None,
        log_slots=int(read(layout.log, prefix_end(layout.log), count_only=True).get("count", 0)),
    )
    return report


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024  # type: ignore[assignment]
    return str(count)


def render(report: dict[str, Any], out: TextIO) -> None:
    """Write the report for people."""
    out.write("etcd\n")
    for member in report["etcd"]:
        if "error" in member:
            out.write(f"  {member['endpoint']}  unreachable: {member['error']}\n")
            continue
        out.write(
            f"  {member['endpoint']}  {'healthy' if member['healthy'] else 'UNHEALTHY'}"
            f"{'  raft leader' if member['raft_leader'] else ''}  {member['version']}"
            f"  db {_size(member['db_size'])}  revision {member['revision']}\n"
        )
    if "data_servers" not in report:
        return
    out.write(f"data tier {report['prefix']}  epoch {report['epoch']}\n")
    if not report["data_servers"]:
        out.write("  no data server has reported\n")
    for server in report["data_servers"]:
        state = server.get("state", "?")
        if state == "active" and server.get("data_link") != report.get("leader"):
            state = "active?"  # it believes so; etcd names another
        out.write(
            f"  {server.get('data_link')}  {state:<8} applied zxid {server.get('applied_zxid', 0):#x}"
            f"  pid {server.get('pid')}\n"
        )
    if report.get("leader") is None:
        out.write("  no active data server (no leader key)\n")
    snapshot = report.get("snapshot")
    if snapshot is not None:
        out.write(
            f"snapshot  zxid {snapshot['zxid']:#x} (slot {snapshot['seq']}, "
            f"{_size(snapshot.get('size', 0))})  log slots after it: {report['log_slots']}\n"
        )
    else:
        out.write(f"snapshot  none yet  log slots: {report['log_slots']}\n")


def run(args: Any, out: TextIO) -> int:
    """Run C{zkreg status}; @return: the exit code."""
    try:
        endpoints = etcd_endpoints(args.etcd)
    except ValueError as error:
        out.write(f"{error}\n")
        return 2
    report = gather(endpoints, args.etcd_prefix)
    if args.json:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        render(report, out)
    if "data_servers" not in report:
        if not args.json:
            out.write("no etcd endpoint answered\n")
        return 1
    return 0 if report.get("leader") is not None else 3
