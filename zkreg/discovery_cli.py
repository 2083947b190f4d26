"""
C{zkreg discovery list}: the operator's view of a curator-x-discovery registry, on any
ZooKeeper-compatible server.

    zkreg discovery list --server HOST:PORT [--base /services] [NAME] [--watch]

prints each service and its instances (id, address and ports, age, type, payload),
read with L{curatorish.discovery}'s serializer (Curator's JSON).  With C{--watch} it
then follows the registry, one line per change: C{+} registered, C{~} updated,
C{-} gone, until interrupted.  Exit codes: 0 fine, 1 the server cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any, TextIO

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.discovery import JsonInstanceSerializer, ServiceInstance
from curatorish.recipes import ChildData, TreeCache, TreeCacheEventType
from curatorish.retry import RetryNTimes

#: How long to try to reach the server before giving up.
CONNECT_TIMEOUT_S = 10.0


def add_parser(areas: Any) -> None:
    """Add C{discovery} to C{zkreg}'s sub-commands (C{areas}, an argparse subparsers)."""
    discovery = areas.add_parser("discovery", help="services registered with curator-x-discovery")
    commands = discovery.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print services and their instances")
    listing.add_argument("--server", required=True, metavar="HOST:PORT", help="any server")
    listing.add_argument("--base", default="/services", help="the registry's base path")
    listing.add_argument("name", nargs="?", help="only this service")
    listing.add_argument("--watch", action="store_true", help="then follow changes live")


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run C{zkreg discovery list}; @return: the exit code."""
    client = BlockingCuratorFramework(
        args.server,
        retry_policy=RetryNTimes(2, 200),
        connection_timeout_ms=int(CONNECT_TIMEOUT_S * 1000),
        session_timeout_ms=30_000,
    )
    try:
        client.start()
        if not client.block_until_connected(CONNECT_TIMEOUT_S):
            out.write(f"zkreg discovery: cannot reach {args.server}\n")
            return 1
        base = args.base.rstrip("/") or "/"
        if args.watch:
            return _watch(client, base, args.name, out)
        return _list(client, base, args.name, out)
    except errors.ZooKeeperError as error:
        out.write(f"zkreg discovery: {args.server}: {type(error).__name__} {error}\n")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def _list(client: BlockingCuratorFramework, base: str, only: str | None, out: TextIO) -> int:
    try:
        names = [only] if only else sorted(client.get_children(base))
    except errors.NoNodeError:
        names = []
    if not names:
        out.write(f"no services under {base}\n")
    for name in names:
        try:
            ids = sorted(client.get_children(f"{base}/{name}"))
        except errors.NoNodeError:
            ids = []
        out.write(f"{name} ({len(ids)} instance{'' if len(ids) == 1 else 's'})\n")
        for node_name in ids:
            try:
                data, _ = client.get_data(f"{base}/{name}/{node_name}")
            except errors.NoNodeError:
                continue
            out.write("  " + describe(node_name, data) + "\n")
    out.flush()
    return 0


def _watch(client: BlockingCuratorFramework, base: str, only: str | None, out: TextIO) -> int:
    root = f"{base}/{only}" if only else base
    depth = 1 if only else 2
    lock = threading.Lock()
    cache = TreeCache(client, root, max_depth=depth, persistent_watch=True)

    def write(line: str) -> None:
        with lock:
            out.write(line + "\n")
            out.flush()

    def below(path: str) -> int:
        return (path[len(root) :] if root != "/" else path).count("/")

    def listing() -> None:
        services = (
            {only: cache.get_current_children(root) or {}}
            if only
            else {
                name: cache.get_current_children(f"{root.rstrip('/')}/{name}") or {}
                for name in cache.get_current_children(root) or {}
            }
        )
        if not services:
            write(f"no services under {base}")
        for name in sorted(services):
            nodes = services[name]
            write(f"{name} ({len(nodes)} instance{'' if len(nodes) == 1 else 's'})")
            for node_name in sorted(nodes):
                write("  " + describe(node_name, nodes[node_name].data))
        write(f"-- watching {root} (Ctrl-C to stop)")

    def changed(_client: Any, event: Any) -> None:
        if event.type is TreeCacheEventType.INITIALIZED:
            listing()
            return
        if event.type.value.startswith("CONNECTION_"):
            write(f"-- {event.type.value}")
            return
        node: ChildData = event.data
        if not initialized.is_set() or below(node.path) != depth:
            return
        name, node_name = node.path.rsplit("/", 2)[-2:]
        if event.type is TreeCacheEventType.NODE_REMOVED:
            write(f"- {name} {node_name}")
        elif event.type is TreeCacheEventType.NODE_ADDED:
            write(f"+ {name} " + describe(node_name, node.data))
        else:
            write(f"~ {name} " + describe(node_name, node.data))

    initialized = threading.Event()

    def mark(_client: Any, event: Any) -> None:
        if event.type is TreeCacheEventType.INITIALIZED:
            initialized.set()

    cache.get_listenable().add_listener(changed)
    cache.get_listenable().add_listener(mark)
    cache.start()
    try:
        while True:
            time.sleep(3600)
    finally:
        cache.close()


def describe(node_name: str, data: bytes | None) -> str:
    """One instance as a line: id, address:port, ssl port, age, type, payload."""
    try:
        instance: ServiceInstance = JsonInstanceSerializer().deserialize(data or b"")
    except (ValueError, UnicodeDecodeError):
        return f"{node_name}  <not a service instance: {len(data or b'')} bytes>"
    where = f"{instance.address or '-'}:{instance.port if instance.port is not None else '-'}"
    parts = [instance.id if instance.id == node_name else f"{node_name} (id {instance.id})", where]
    if instance.ssl_port is not None:
        parts.append(f"ssl:{instance.ssl_port}")
    parts.append(f"age {_age(instance.registration_time_utc)}")
    parts.append(instance.service_type.value)
    if not instance.enabled:
        parts.append("DISABLED")
    if instance.uri_spec is not None:
        parts.append(instance.build_uri_spec())
    if instance.payload is not None:
        parts.append(json.dumps(instance.payload, sort_keys=True))
    return "  ".join(parts)


def _age(registration_time_ms: int) -> str:
    seconds = max(0, int(time.time() - registration_time_ms / 1000))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


__all__ = ["add_parser", "describe", "run"]
