"""
Znode path rules, as ZooKeeper's C{PathUtils.validatePath} states them.

The server applies them to every write (after a sequential suffix is appended), so a
path the Java client would refuse is refused here with BadArguments too.
"""

from __future__ import annotations

import re

# Java checks UTF-16 code units: controls, C1 controls, the surrogate and private-use
# block U+D800..U+F8FF, and U+FFF0..U+FFFF.  A character outside the BMP is a surrogate
# pair in Java, so it is refused as well.
_INVALID_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff]")

#: The nodes every tree has and no client may delete (DataTree.isSpecialPath).
SPECIAL_PATHS = frozenset({"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"})


def is_valid_path(path: object) -> bool:
    """
    @param path: a candidate znode path.
    @return: whether ZooKeeper's C{PathUtils.validatePath} accepts it.
    """
    if not isinstance(path, str) or not path or path[0] != "/":
        return False
    if len(path) == 1:
        return True
    if path[-1] == "/":
        return False
    if path.isascii():
        # Printable ASCII is exactly ASCII without the characters refused below.
        if not path.isprintable():
            return False
    elif _INVALID_CHAR.search(path) is not None:
        return False
    # An empty, "." or ".." name, found without splitting the path into names.
    if "//" in path:
        return False
    if "/." in path:
        return not ("/./" in path or "/../" in path or path.endswith(("/.", "/..")))
    return True


def parent_of(path: str) -> str:
    """
    The parent of an absolute path; ZooKeeper's C{""} for the root's children is C{"/"}.

    @param path: a path containing at least one C{/}.
    """
    cut = path.rfind("/")
    return path[:cut] if cut > 0 else "/"


def checked_parent_of(path: str) -> str | None:
    """
    The parent of a path as the server's write path takes it before full validation.

    @return: the parent path, or L{None} when the path has no C{/} or holds a NUL
        character (ZooKeeper's BadArguments in C{validatePathForCreate} and
        C{getParentPathAndValidate}).
    """
    cut = path.rfind("/")
    if cut < 0 or "\x00" in path:
        return None
    return path[:cut] if cut > 0 else "/"
