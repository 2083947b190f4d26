"""
Distributed queues (Curator's C{recipes.queue}): items are sequential znodes under the
queue path; consumers take them in name order.

Layout and format, as Curator 5.4 (a Java producer or consumer shares the queue):

  - L{DistributedQueue}: C{<path>/queue-<seq>} holding Curator's item envelope: the
    version C{0x00010001} (4 bytes), then per item the opcode C{0x01}, its length (4
    bytes, big-endian) and the bytes of C{serializer.serialize(item)}, then the opcode
    C{0x02}; C{put_multi} puts several items in one node.
  - L{DistributedIdQueue}: C{queue-|<id>|<seq>} (C{/} and C{|} in ids become C{_}).
  - L{DistributedPriorityQueue}: C{queue-<p><hex><seq>}: C{p} is 1 for priorities >= 0
    and 0 below, then the priority's 32 bits as 8 hex digits, so names sort by
    priority (lowest first).
  - L{DistributedDelayQueue}: C{queue-|<epoch ms, hex>|<seq>}; an item is delivered once
    the clock passes its epoch.
  - C{SimpleDistributedQueue} (in L{curatorish.recipes.simple_queue}):
    C{<path>/qn-<seq>} holding the caller's bytes as they are.

Delivery: without a lock path a consumer takes an item by deleting it (at version)
before handing it over, so an item goes to exactly one consumer, but is lost if that
consumer dies while handling it.  With C{lock_path}, the consumer first creates the
ephemeral C{<lock_path>/<item>}, hands the item over, then deletes it; a consumer that
dies releases the lock with its session and the item is delivered again (at least
once); with C{ErrorMode.REQUEUE} an item whose consumer raised is put back.

Connection states: producers' puts go through the client's retry loop (a put whose
reply was lost with the connection is sent again, so its item may be queued twice, as
with Curator: item names must start with C{queue-}, so they cannot be protected).
Consumers keep
their loop through C{SUSPENDED} (reads wait for the connection) and list the queue again
on C{RECONNECTED} and C{LOST} (an expired session's watches are gone).
"""

from __future__ import annotations

import enum
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from curatorish import errors
from curatorish.blocking import BlockingCuratorFramework
from curatorish.connection.paths import validate_path
from curatorish.framework import CuratorFramework
from curatorish.node_names import make_path
from curatorish.reactor_thread import in_reactor_thread
from curatorish.recipes._wakeup import Deadline, Wakeup
from curatorish.recipes.face import Recipe, recipe_method
from zkreg.proto.consts import CreateMode

_log = Logger()

#: The name prefix of queue items (Curator's C{QUEUE_ITEM_NAME}).
QUEUE_ITEM_NAME = "queue-"
#: The separator around an id or a delay in an item's name.
SEPARATOR = "|"

_ITEM_VERSION = 0x00010001
_ITEM_OPCODE = 0x01
_EOF_OPCODE = 0x02


class ErrorMode(enum.Enum):
    """What to do with an item whose consumer raised (Curator's C{ErrorMode})."""

    #: Put it back in the queue (only with a lock path).
    REQUEUE = "REQUEUE"
    #: Drop it.
    DELETE = "DELETE"


class QueueSerializer:
    """
    How items become bytes and back (Curator's C{QueueSerializer}); give the two
    functions, or subclass and override the methods.
    """

    def __init__(
        self,
        serialize: Callable[[Any], bytes] | None = None,
        deserialize: Callable[[bytes], Any] | None = None,
    ) -> None:
        self._serialize = serialize
        self._deserialize = deserialize

    def serialize(self, item: Any) -> bytes:
        """@return: the item's bytes."""
        if self._serialize is None:
            raise NotImplementedError("give serialize or override it")
        return self._serialize(item)

    def deserialize(self, data: bytes) -> Any:
        """@return: the item of these bytes."""
        if self._deserialize is None:
            raise NotImplementedError("give deserialize or override it")
        return self._deserialize(data)


def serialize_items(items: Iterable[Any], serializer: QueueSerializer) -> bytes:
    """@return: Curator's item envelope (C{ItemSerializer}) of C{items}."""
    parts = [struct.pack(">i", _ITEM_VERSION)]
    for item in items:
        data = serializer.serialize(item)
        parts.append(struct.pack(">bi", _ITEM_OPCODE, len(data)))
        parts.append(data)
    parts.append(struct.pack(">b", _EOF_OPCODE))
    return b"".join(parts)


def deserialize_items(data: bytes, serializer: QueueSerializer) -> list[Any]:
    """
    @return: the items of an envelope.
    @raise ValueError: on a wrong version, opcode or length.
    """
    if len(data) < 5:
        raise ValueError("queue item too short")
    (version,) = struct.unpack_from(">i", data, 0)
    if version != _ITEM_VERSION:
        raise ValueError(f"Incorrect version. Expected {_ITEM_VERSION} - Found: {version}")
    offset = 4
    items: list[Any] = []
    while True:
        if offset >= len(data):
            raise ValueError("queue item ends without its EOF opcode")
        opcode = data[offset]
        offset += 1
        if opcode == _EOF_OPCODE:
            return items
        if opcode != _ITEM_OPCODE or offset + 4 > len(data):
            raise ValueError(f"Incorrect opcode. Expected {_ITEM_OPCODE} - Found: {opcode}")
        (size,) = struct.unpack_from(">i", data, offset)
        offset += 4
        if size < 0 or offset + size > len(data):
            raise ValueError(f"Bad size: {size}")
        items.append(serializer.deserialize(data[offset : offset + size]))
        offset += size


class DistributedQueue(Recipe):
    """
    A queue of items delivered to a consumer (Curator's C{DistributedQueue}).

    C{DistributedQueue(client, path, serializer, consumer=None, lock_path=None)};
    without a consumer it only produces.  L{start} before putting.
    """

    _LATENT, _STARTED, _STOPPED = "LATENT", "STARTED", "STOPPED"

    def __init__(
        self,
        client: CuratorFramework | BlockingCuratorFramework,
        path: str,
        serializer: QueueSerializer,
        consumer: Callable[[Any], Any] | None = None,
        lock_path: str | None = None,
        error_mode: ErrorMode = ErrorMode.REQUEUE,
    ) -> None:
        """
        @param consumer: called with each item (C{consumer(item)}, or an object's
            C{consume_message(item)}); on the async face it may return a Deferred or
            coroutine, on the blocking face it runs on the client's event thread.  The
            item counts as handled when it returns.
        @param lock_path: deliver with lock safety (see the module docstring).
        """
        super().__init__(client)
        validate_path(path)
        if lock_path is not None:
            validate_path(lock_path)
        self.path = path
        self.serializer = serializer
        self.lock_path = lock_path
        self.error_mode = error_mode
        self._consumer = (
            None if consumer is None else getattr(consumer, "consume_message", consumer)
        )
        self._state = self._LATENT
        self._last_count = 0
        self._loop: defer.Deferred[None] | None = None
        self._wakeup: Wakeup | None = None

    # -- lifecycle --------------------------------------------------------------------

    @recipe_method
    async def start(self) -> None:
        """Create the queue (and lock) paths; start consuming if there is a consumer."""
        if self._state != self._LATENT:
            raise RuntimeError("already started")
        self._state = self._STARTED
        for path in (self.path, self.lock_path):
            if path is not None:
                try:
                    await self.client.create(path, parents_as_containers=True)
                except errors.NodeExistsError:
                    pass
        if self._consumer is not None:
            self._loop = defer.ensureDeferred(self._run_loop())
            self._loop.addErrback(self._loop_failed)

    @recipe_method(waits=True)
    async def close(self) -> None:
        """Stop consuming (an item being handled is finished first)."""
        if self._state != self._STARTED:
            return
        self._state = self._STOPPED
        self._wake_loop()
        if self._loop is not None:
            await self._loop

    def get_last_message_count(self) -> int:
        """@return: how many items the consumer saw in the queue last time it looked."""
        return self._last_count

    def _check_state(self) -> None:
        if self._state != self._STARTED:
            raise RuntimeError("the queue is not started")

    # -- producing --------------------------------------------------------------------

    def _item_path(self) -> str:
        return make_path(self.path, QUEUE_ITEM_NAME)

    async def _put(self, items: list[Any], path: str) -> str:
        self._check_state()
        data = serialize_items(items, self.serializer)
        created = await self.client.create(path, data, mode=CreateMode.PERSISTENT_SEQUENTIAL)
        return created.path

    @recipe_method
    async def put(self, item: Any) -> str:
        """Add an item. @return: the path of its node."""
        return await self._put([item], self._item_path())

    @recipe_method
    async def put_multi(self, items: Iterable[Any]) -> str:
        """Add several items in one node (delivered in order, together)."""
        return await self._put(list(items), self._item_path())

    # -- ordering (overridden by the id, priority and delay queues) -------------------

    def _sort_key(self, name: str) -> Any:
        return name

    def _delay_ms(self, name: str) -> float:
        return 0.0

    def _requeue_path(self, name: str) -> str:
        return self._item_path()

    # -- consuming --------------------------------------------------------------------

    def _wake_loop(self) -> None:
        if self._wakeup is not None:
            self._wakeup.wake()

    def _loop_failed(self, failure: Failure) -> None:
        if self._state == self._STARTED and not failure.check(errors.ConnectionClosedError):
            _log.failure("Queue {path}: consumer loop failed", failure=failure, path=self.path)

    async def _children(self, watcher: Callable[..., Any] | None = None) -> list[str]:
        try:
            return await self.client.get_children(self.path, watcher=watcher)  # type: ignore[no-any-return]
        except errors.NoNodeError:
            try:
                await self.client.create(self.path, parents_as_containers=True)
            except errors.NodeExistsError:
                pass
            return []

    async def _run_loop(self) -> None:
        while self._state == self._STARTED:
            with Wakeup(self.client) as wakeup:
                self._wakeup = wakeup
                names = await self._children(wakeup.watcher)
                self._last_count = len(names)
                items = sorted(
                    (n for n in names if n.startswith(QUEUE_ITEM_NAME)), key=self._sort_key
                )
                next_delay: float | None = None
                for name in items:
                    if self._state != self._STARTED:
                        return
                    delay = self._delay_ms(name)
                    if delay > 0:
                        next_delay = delay if next_delay is None else min(next_delay, delay)
                        continue
                    try:
                        await self._process(name, remove_only=False, wakeup=wakeup)
                    except errors.ZooKeeperError as error:
                        if isinstance(error, errors.ConnectionClosedError):
                            return
                        _log.warn(
                            "Queue {path}: {name}: {error}", path=self.path, name=name, error=error
                        )
                        break
                await wakeup.wait(Deadline(None if next_delay is None else next_delay / 1000.0))
                self._wakeup = None

    async def _process(self, name: str, remove_only: bool, wakeup: Wakeup | None = None) -> bool:
        """
        Take one item; @return: whether this call took it.

        @param wakeup: the consumer loop's, woken also when the lock of an item another
            consumer is handling goes (that consumer finished, or died with its session).
        """
        if self.lock_path is not None:
            return await self._process_with_lock(name, remove_only, wakeup)
        item_path = make_path(self.path, name)
        try:
            data = None
            version = -1
            if not remove_only:
                data, stat = await self.client.get_data(item_path)
                version = stat.version
            await self.client.delete(item_path, version=version)
        except (errors.NoNodeError, errors.BadVersionError, errors.NodeExistsError):
            return False
        if data is not None:
            await self._deliver(name, data)
        return True

    async def _process_with_lock(self, name: str, remove_only: bool, wakeup: Wakeup | None) -> bool:
        assert self.lock_path is not None
        lock_node = make_path(self.lock_path, name)
        item_path = make_path(self.path, name)
        try:
            await self.client.create(lock_node, mode=CreateMode.EPHEMERAL)
        except errors.NodeExistsError:
            # Another consumer has it.  If it dies, its lock goes but the queue's
            # children do not change: watch the lock too (Curator waits for the next
            # change of the queue, which may never come).
            if (
                wakeup is not None
                and await self.client.exists(lock_node, watcher=wakeup.watcher) is None
            ):
                wakeup.wake()
            return False
        except errors.NoNodeError:
            return False
        try:
            requeue = False
            data = b""
            if not remove_only:
                stored, _stat = await self.client.get_data(item_path)
                data = stored or b""
                requeue = not await self._deliver(name, data)
            if requeue:
                await self.client.transaction(
                    [
                        self.client.ops.delete(item_path),
                        self.client.ops.create(
                            self._requeue_path(name), data, mode=CreateMode.PERSISTENT_SEQUENTIAL
                        ),
                    ]
                )
            else:
                await self.client.delete(item_path)
            return True
        except (errors.NoNodeError, errors.NodeExistsError, errors.BadVersionError):
            return False
        finally:
            await self.client.delete(lock_node, guaranteed=True, quietly=True)

    async def _deliver(self, name: str, data: bytes) -> bool:
        """
        Hand the node's items to the consumer. @return: False when the consumer raised
        and the item is to be requeued.
        """
        try:
            items = deserialize_items(data, self.serializer)
        except Exception:
            _log.failure(
                "Queue {path}: cannot read item {name}; dropped", path=self.path, name=name
            )
            return True
        for item in items:
            try:
                await self._consume(item)
            except Exception:
                _log.failure("Queue {path}: consumer raised on {name}", path=self.path, name=name)
                if self.error_mode is ErrorMode.REQUEUE:
                    return False
        return True

    def _consume(self, item: Any) -> defer.Deferred[Any]:
        """Run the consumer where this face runs user code; fire when it returns."""
        consumer = self._consumer
        assert consumer is not None
        done: defer.Deferred[Any] = defer.Deferred()

        def run() -> None:
            try:
                result: Any = consumer(item)
            except BaseException:
                result = Failure()
            if in_reactor_thread():
                _settle(result)
            else:
                from twisted.internet import reactor

                reactor.callFromThread(_settle, result)  # type: ignore[attr-defined]

        def _settle(result: Any) -> None:
            if isinstance(result, Failure):
                done.errback(result)
            elif hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
                defer.ensureDeferred(result).chainDeferred(done)
            elif isinstance(result, defer.Deferred):
                result.chainDeferred(done)
            else:
                done.callback(result)

        self.listener_caller(run)()
        return done


class DistributedIdQueue(DistributedQueue):
    """
    A queue whose items carry an id, by which they can be removed (Curator's
    C{DistributedIdQueue}): C{put(item, item_id)}, C{remove(item_id)}.
    """

    @staticmethod
    def _fix_id(item_id: str) -> str:
        return item_id.replace("/", "_").replace(SEPARATOR, "_")

    def _id_path(self, item_id: str) -> str:
        return self._item_path() + SEPARATOR + self._fix_id(item_id) + SEPARATOR

    @staticmethod
    def _parse(name: str) -> tuple[str, str]:
        """@return: (id, the name without the id) of an item's name."""
        first = name.find(SEPARATOR)
        second = name.find(SEPARATOR, first + 1)
        if first < 0 or second < 0:
            return name, name
        return name[first + 1 : second], name[:first] + name[second + 1 :]

    def _sort_key(self, name: str) -> Any:
        return self._parse(name)[1]

    def _requeue_path(self, name: str) -> str:
        return self._id_path(self._parse(name)[0])

    @recipe_method
    async def put(self, item: Any, item_id: str) -> str:  # type: ignore[override]
        """Add an item with an id (not empty)."""
        if not item_id:
            raise ValueError(f"Invalid id: {item_id!r}")
        return await self._put([item], self._id_path(item_id))

    @recipe_method
    async def remove(self, item_id: str) -> int:
        """Remove the items with this id. @return: how many were removed."""
        self._check_state()
        count = 0
        for name in await self._children():
            if self._parse(name)[0] == item_id and await self._process(name, remove_only=True):
                count += 1
        return count


def priority_to_string(priority: int) -> str:
    """@return: the name part sorting by priority (Curator's C{priorityToString})."""
    return ("1" if priority >= 0 else "0") + f"{priority & 0xFFFFFFFF:08X}"


class DistributedPriorityQueue(DistributedQueue):
    """
    A queue delivering lower priority numbers first (Curator's
    C{DistributedPriorityQueue}): C{put(item, priority)}.
    """

    @recipe_method
    async def put(self, item: Any, priority: int) -> str:  # type: ignore[override]
        """Add an item with a priority (a 32-bit int; lower is delivered first)."""
        return await self._put([item], self._item_path() + priority_to_string(priority))

    @recipe_method
    async def put_multi(self, items: Iterable[Any], priority: int) -> str:  # type: ignore[override]
        """Add several items in one node, with one priority."""
        return await self._put(list(items), self._item_path() + priority_to_string(priority))


def epoch_to_string(epoch_ms: int) -> str:
    """@return: the name part of a delay (Curator's C{epochToString})."""
    return f"{SEPARATOR}{epoch_ms:08X}{SEPARATOR}"


def epoch_of(name: str) -> int:
    """@return: the delivery time (epoch ms) in a delay item's name, 0 if none."""
    second = name.rfind(SEPARATOR)
    first = name.rfind(SEPARATOR, 0, second) if second > 0 else -1
    if first > 0 and second > first + 1:
        try:
            return int(name[first + 1 : second], 16)
        except ValueError:
            pass
    return 0


class DistributedDelayQueue(DistributedQueue):
    """
    A queue delivering each item once its time has come (Curator's
    C{DistributedDelayQueue}): C{put(item, delay_until_epoch_ms)}.
    """

    def _sort_key(self, name: str) -> Any:
        return epoch_of(name)

    def _delay_ms(self, name: str) -> float:
        return epoch_of(name) - time.time() * 1000.0

    @recipe_method
    async def put(self, item: Any, delay_until_epoch_ms: int) -> str:  # type: ignore[override]
        """Add an item to be delivered at C{delay_until_epoch_ms} (ms since the epoch)."""
        if delay_until_epoch_ms <= 0:
            raise ValueError("delay_until_epoch_ms cannot be negative")
        return await self._put([item], self._item_path() + epoch_to_string(delay_until_epoch_ms))

    @recipe_method
    async def put_multi(self, items: Iterable[Any], delay_until_epoch_ms: int) -> str:  # type: ignore[override]
        """Add several items in one node, with one delivery time."""
        if delay_until_epoch_ms <= 0:
            raise ValueError("delay_until_epoch_ms cannot be negative")
        return await self._put(
            list(items), self._item_path() + epoch_to_string(delay_until_epoch_ms)
        )


__all__ = [
    "DistributedDelayQueue",
    "DistributedIdQueue",
    "DistributedPriorityQueue",
    "DistributedQueue",
    "ErrorMode",
    "QueueSerializer",
    "deserialize_items",
    "serialize_items",
]
