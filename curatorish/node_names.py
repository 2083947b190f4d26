"""
Znode names as Curator spells them: joining and splitting paths (Curator's
C{ZKPaths.makePath}) and protected names (C{ProtectedUtils}: C{_c_<uuid>-name}).

Pure string functions, separate from the client so the recipes and service discovery
can name their nodes without the framework, and so they are tested without a server.
"""

from __future__ import annotations

import uuid

#: The prefix of protected node names (C{ProtectedUtils.PROTECTED_PREFIX}).
PROTECTED_PREFIX = "_c_"
_PROTECTED_PREFIX_WITH_UUID_LENGTH = len(PROTECTED_PREFIX) + 36 + 1


def make_path(parent: str, child: str | None) -> str:
    """
    Join paths as Curator's C{ZKPaths.makePath} does (no doubled or trailing slashes).
    """
    parent = "/" + parent.strip("/") if parent.strip("/") else ""
    if child:
        child = child.strip("/")
    return (parent + "/" + child) if child else (parent or "/")


def split_path(path: str) -> tuple[str, str]:
    """
    @return: C{(parent, name)} of C{path}; the parent of a top-level node is C{/}.
    """
    index = path.rfind("/")
    if index <= 0:
        return "/", path[index + 1 :]
    return path[:index], path[index + 1 :]


def protected_name(name: str, protected_id: str) -> str:
    """
    @return: C{_c_<protected_id>-<name>}.
    """
    return f"{PROTECTED_PREFIX}{protected_id}-{name}"


def is_protected_name(name: str) -> bool:
    """
    @return: whether C{name} has the protected prefix with a valid UUID.
    """
    if len(name) <= _PROTECTED_PREFIX_WITH_UUID_LENGTH or not name.startswith(PROTECTED_PREFIX):
        return False
    if name[_PROTECTED_PREFIX_WITH_UUID_LENGTH - 1] != "-":
        return False
    try:
        uuid.UUID(name[len(PROTECTED_PREFIX) : _PROTECTED_PREFIX_WITH_UUID_LENGTH - 1])
    except ValueError:
        return False
    return True


def normalize_protected(name: str) -> str:
    """
    @return: the name without its protected prefix (Curator's C{ProtectedUtils.normalize}).
    """
    return name[_PROTECTED_PREFIX_WITH_UUID_LENGTH:] if is_protected_name(name) else name


__all__ = [
    "PROTECTED_PREFIX",
    "is_protected_name",
    "make_path",
    "normalize_protected",
    "protected_name",
    "split_path",
]
