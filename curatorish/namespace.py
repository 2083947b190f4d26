"""
Paths and watchers seen through a namespace (Curator's C{NamespaceImpl.unfixForNamespace}
and C{NamespaceWatcher}): the connection works with full paths, a namespace view's
application with paths below its namespace.

Separate from the view (L{curatorish.client_view.ClientView}) that adds the namespace
to paths: these two pieces take it off again, for events and results, and need no client.
"""

from __future__ import annotations

from typing import Any

from curatorish.connection.watches import WatchedEvent, Watcher


class NamespaceWatcher:
    """
    A watcher seen through a namespace: it gets paths without the namespace, and two
    wrappers of one watcher in one namespace are equal (so removal finds them).
    """

    __slots__ = ("watcher", "namespace_path")

    def __init__(self, watcher: Watcher, namespace_path: str) -> None:
        self.watcher = watcher
        self.namespace_path = namespace_path

    def __call__(self, event: WatchedEvent) -> Any:
        path = event.path
        if path is not None:
            path = unfix_for_namespace(self.namespace_path, path)
        return self.watcher(WatchedEvent(event.type, event.state, path))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, NamespaceWatcher)
            and other.watcher == self.watcher
            and other.namespace_path == self.namespace_path
        )

    def __hash__(self) -> int:
        return hash((self.watcher, self.namespace_path))


def unfix_for_namespace(namespace_path: str, path: str) -> str:
    """
    @param namespace_path: C{/namespace}, or C{""} for the root view.
    @return: C{path} without the leading C{namespace_path} (C{/} for the namespace's
        own node); a path outside the namespace unchanged.
    """
    if namespace_path and namespace_path != "/" and path.startswith(namespace_path):
        if len(path) == len(namespace_path):
            return "/"
        if path[len(namespace_path)] == "/":
            return path[len(namespace_path) :]
    return path


__all__ = ["NamespaceWatcher", "unfix_for_namespace"]
