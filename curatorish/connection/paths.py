"""
Znode path rules and the chroot mapping between client and server paths.
"""

from __future__ import annotations

import re

#: A path none of whose names is empty or holds a character ZooKeeper refuses: what
#: nearly every call passes, accepted by one match instead of a loop over characters.
_PLAIN_PATH = re.compile(r"(?:/[^/\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\uffff]+)+")


#: Plain paths accepted lately (a program uses the same few paths over and over, and
#: a call checks its path twice: with and without the namespace): a set lookup is
#: cheaper than the match.  Emptied when full, so it stays small.
_ACCEPTED: set[str] = set()
_ACCEPTED_MAX = 1024


def validate_path(path: str, sequential: bool = False) -> None:
    """
    Check a path the way ZooKeeper's C{PathUtils.validatePath} does.

    @param sequential: a sequential create may end with C{/} (the server appends the
        sequence number to the name it is given, which may be empty).
    @raise ValueError: describing what is wrong.
    """
    if type(path) is str:
        if path in _ACCEPTED:
            return
        if "/." not in path and _PLAIN_PATH.fullmatch(path):
            # Valid whether sequential or not: it does not end with "/".
            if len(_ACCEPTED) >= _ACCEPTED_MAX:
                _ACCEPTED.clear()
            _ACCEPTED.add(path)
            return
    check_path_rules(path, sequential)


def check_path_rules(path: str, sequential: bool = False) -> None:
    """
    L{validate_path} rule by rule, without its shortcut for plain paths (which a test
    checks against this).

    @raise ValueError: describing the first rule C{path} breaks.
    """
    if not isinstance(path, str) or not path:
        raise ValueError("Path must not be empty")
    if path[0] != "/":
        raise ValueError(f"Path must start with / character: {path!r}")
    if len(path) == 1:
        return
    if path.endswith("/") and not sequential:
        raise ValueError(f"Path must not end with / character: {path!r}")
    segments = path[1:].split("/")
    if sequential and path.endswith("/"):
        segments = segments[:-1]
    for segment in segments:
        if segment == "":
            raise ValueError(f"empty node name specified in {path!r}")
        if segment in (".", ".."):
            raise ValueError(f"relative paths not allowed: {path!r}")
    for char in path:
        code = ord(char)
        if (
            code == 0
            or 0x1 <= code <= 0x1F
            or 0x7F <= code <= 0x9F
            or 0xD800 <= code <= 0xF8FF
            or 0xFFF0 <= code <= 0xFFFF
        ):
            raise ValueError(f"invalid character \\u{code:04x} in {path!r}")


class Chroot:
    """
    Maps paths between the application's view (relative to the chroot) and the
    server's (absolute).

    @ivar prefix: the chroot, e.g. C{"/app"}, or C{""} for none.
    """

    def __init__(self, chroot: str | None) -> None:
        self.prefix = chroot or ""

    def to_server(self, client_path: str) -> str:
        """
        @return: the server path of C{client_path}.
        """
        if not self.prefix:
            return client_path
        if client_path == "/":
            return self.prefix
        return self.prefix + client_path

    def to_client(self, server_path: str) -> str:
        """
        @return: the application's path for C{server_path} (as ZooKeeper's client does:
            the chroot itself becomes C{/}, a path under it loses the prefix).
        """
        if not self.prefix:
            return server_path
        if server_path == self.prefix:
            return "/"
        if server_path.startswith(self.prefix + "/"):
            return server_path[len(self.prefix) :]
        return server_path
