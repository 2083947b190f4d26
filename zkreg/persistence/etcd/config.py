"""
The C{--etcd} and C{--etcd-prefix} settings: parsed and checked at startup, so a
mistyped URL is one clear line, never a traceback once the server runs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["check_etcd_settings", "etcd_endpoints"]


def etcd_endpoints(value: str) -> list[str]:
    """
    @param value: C{http://h:p[,http://h:p...]}.
    @return: the client URLs, without trailing slashes.
    @raise ValueError: naming the bad entry.
    """
    endpoints = []
    for entry in value.split(","):
        entry = entry.strip().rstrip("/")
        if not entry:
            continue
        parts = urlsplit(entry)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"etcd: {entry!r} is not an http://host:port URL")
        try:
            port = parts.port
        except ValueError as error:
            raise ValueError(f"etcd: {entry!r}: {error}") from error
        if port is None:
            raise ValueError(f"etcd: {entry!r} has no port (etcd listens on 2379 by default)")
        if parts.path:
            raise ValueError(f"etcd: {entry!r}: give the client URL only, with no path")
        endpoints.append(entry)
    if not endpoints:
        raise ValueError("etcd: no endpoint given")
    return endpoints


def check_etcd_settings(value: str, prefix: str) -> str | None:
    """@return: what is wrong with the settings, or L{None}."""
    try:
        etcd_endpoints(value)
    except ValueError as error:
        return str(error)
    if not prefix.startswith("/") or prefix.rstrip("/") == "":
        return f"etcd-prefix must be an absolute key prefix like /zkreg, got {prefix!r}"
    return None
