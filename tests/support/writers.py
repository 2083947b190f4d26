"""
A kazoo client writing under load in a thread, recording what was acknowledged, for
the fault tests (a data server killed, a session process killed, a leader paused)
that then check every acknowledged write is in the tree exactly once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any


class Writer(threading.Thread):
    """
    Creates nodes with unique data under C{parent} until stopped, one at a time.

    Without C{retry}, sequential nodes C{parent/n-} and the first error ends the
    thread (a write applied twice shows as two nodes with the same data).  With
    C{retry}, each node has its own name C{parent/<value>}, and a connection loss
    (or a session moved) is retried until the create is answered: a retried create
    whose first reply was lost finds its node, so NodeExists after a retry is success.

    @ivar acked: the data (str) of each acknowledged create, in order; with C{retry}
        also the node's name.
    @ivar acked_at: the monotonic time of each acknowledgement.
    @ivar epochs: the zxid epoch of each acknowledged create (which leader wrote it).
    @ivar errors: what ended the thread early (an error is a finding).
    """

    def __init__(self, client: Any, parent: str, label: str = "w", retry: bool = False) -> None:
        super().__init__(name=f"writer-{label}", daemon=True)
        self.client = client
        self.parent = parent
        self.label = label
        self.retry = retry
        self.acked: list[str] = []
        self.acked_at: list[float] = []
        self.epochs: list[int] = []
        self.errors: list[BaseException] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        count = 0
        while not self.stopping.is_set():
            value = f"{self.label}-{count}"
            count += 1
            try:
                stat = self._create(value)
            except BaseException as error:  # noqa: BLE001 - every error is a finding
                self.errors.append(error)
                return
            self.acked.append(value)
            self.acked_at.append(time.monotonic())
            self.epochs.append(stat.czxid >> 32 if stat is not None else 0)

    def _create(self, value: str) -> Any:
        """@return: the created node's stat (None: found after a retry)."""
        if not self.retry:
            _, stat = self.client.create(
                f"{self.parent}/n-", value.encode(), sequence=True, include_data=True
            )
            return stat
        from kazoo.exceptions import ConnectionLoss, NodeExistsError, SessionMovedError

        retried = False
        while True:
            try:
                return self.client.create(
                    f"{self.parent}/{value}", value.encode(), include_data=True
                )[1]
            except (ConnectionLoss, SessionMovedError):
                retried = True
                self.client.handler.sleep_func(0.05)
            except NodeExistsError:
                if not retried:
                    raise
                return None

    def stop(self) -> None:
        """Stop after the create in flight, and wait for the thread (bounded)."""
        self.stopping.set()
        self.join(60)


def acked_total(writers: Sequence[Writer]) -> int:
    """
    @return: how many creates the writers had acknowledged, together.
    @raise AssertionError: at once when a writer failed (so a wait on the count ends
        with the error, not at its deadline).
    """
    for writer in writers:
        assert not writer.errors, f"{writer.label}: {writer.errors!r}"
    return sum(len(writer.acked) for writer in writers)


def stop_all(writers: Sequence[Writer]) -> None:
    """Stop every writer, then check that none failed."""
    for writer in writers:
        writer.stopping.set()
    for writer in writers:
        writer.stop()
    assert [writer.errors for writer in writers] == [[] for _ in writers]
