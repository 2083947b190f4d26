"""
The live-session table: ids, passwords, timeouts and expiry.

Modelled on ZooKeeper's C{SessionTrackerImpl} and C{ExpiryQueue}:

  - ids are C{(server id << 56) | ((now_ms << 24) >>> 8)}, then incrementing, so the
    top byte names the server that handed the id out and ids from a restarted server
    (a later clock) do not collide with earlier ones;
  - the password is 16 bytes from C{java.util.Random(session_id ^ secret)}, exactly as
    C{ZooKeeperServer.generatePasswd}, so it is derived, never stored, and survives a
    restart; with ZooKeeper's own secret (the default) the bytes equal ZooKeeper's;
  - expiry times are rounded up to the next tick, and sessions are kept in buckets by
    expiry time, so each tick expires one bucket in O(bucket).

What survives a restart (which sessions exist and their timeouts) is in the log:
createSession and closeSession txns, applied into L{zkreg.data.tree.DataTree.sessions}.
This table is the volatile part (deadlines, closing flags), rebuilt from the tree with
fresh deadlines, as ZooKeeper does.  No clock here: every time is a parameter.
"""

from __future__ import annotations

from zkreg.data import codes

#: ZooKeeper's C{superSecret}: passwords then match a ZooKeeper server's.
ZOOKEEPER_SECRET = 0xB3415C00

_MASK48 = (1 << 48) - 1
_MASK64 = (1 << 64) - 1
_JAVA_MULTIPLIER = 0x5DEECE66D


def _signed64(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def initial_session_id(server_id: int, now_ms: int) -> int:
    """
    C{SessionTrackerImpl.initializeNextSessionId}: the first id a server hands out.

    @return: a signed 64-bit session id.
    """
    next_id = ((now_ms << 24) & _MASK64) >> 8
    next_id |= (server_id & 0xFF) << 56
    next_id = _signed64(next_id)
    if next_id == codes.CONTAINER_EPHEMERAL_OWNER:
        next_id += 1
    return next_id


def session_password(session_id: int, secret: int = ZOOKEEPER_SECRET) -> bytes:
    """
    The 16-byte password of a session: C{new Random(id ^ secret).nextBytes(16)}.
    """
    seed = ((session_id ^ secret) ^ _JAVA_MULTIPLIER) & _MASK48
    out = bytearray()
    while len(out) < 16:
        seed = (seed * _JAVA_MULTIPLIER + 0xB) & _MASK48
        rnd = seed >> 16
        for _ in range(min(16 - len(out), 4)):
            out.append(rnd & 0xFF)
            rnd >>= 8
    return bytes(out)


class ExpiryQueue:
    """
    C{ExpiryQueue}: keys in buckets by deadline, deadlines rounded up to the interval.

    @ivar interval_ms: the bucket width (the tick).
    @ivar next_expiration_ms: the deadline of the next bucket L{poll} will return.
    """

    def __init__(self, interval_ms: int, now_ms: int) -> None:
        self.interval_ms = interval_ms
        self.next_expiration_ms = self._round_up(now_ms)
        self._deadline_of: dict[int, int] = {}
        self._buckets: dict[int, dict[int, None]] = {}

    def _round_up(self, time_ms: int) -> int:
        return (time_ms // self.interval_ms + 1) * self.interval_ms

    def update(self, key: int, timeout_ms: int, now_ms: int) -> int:
        """
        Move C{key}'s deadline to C{now + timeout}, rounded up to the next tick.

        @return: the new deadline.
        """
        deadline = self._round_up(now_ms + timeout_ms)
        previous = self._deadline_of.get(key)
        if previous == deadline:
            return deadline
        bucket = self._buckets.get(deadline)
        if bucket is None:
            bucket = self._buckets[deadline] = {}
        bucket[key] = None
        self._deadline_of[key] = deadline
        if previous is not None:
            old = self._buckets.get(previous)
            if old is not None:
                old.pop(key, None)
        return deadline

    def remove(self, key: int) -> int | None:
        """Forget C{key}. @return: its deadline, or L{None} if it was not queued."""
        deadline = self._deadline_of.pop(key, None)
        if deadline is not None:
            bucket = self._buckets.get(deadline)
            if bucket is not None:
                bucket.pop(key, None)
        return deadline

    def deadline_of(self, key: int) -> int | None:
        """@return: the deadline of C{key}, or L{None}."""
        return self._deadline_of.get(key)

    def poll(self, now_ms: int) -> list[int]:
        """
        Take every bucket whose deadline has passed by C{now_ms}.

        ZooKeeper's thread wakes at each deadline and takes one bucket; a caller ticking
        less often gets all the buckets it slept through.

        @return: the expired keys (they are no longer queued).
        """
        expired: list[int] = []
        while now_ms >= self.next_expiration_ms:
            bucket = self._buckets.pop(self.next_expiration_ms, None)
            self.next_expiration_ms += self.interval_ms
            if bucket:
                for key in bucket:
                    self._deadline_of.pop(key, None)
                    expired.append(key)
        return expired


class Session:
    """
    One live session.

    @ivar session_id: its id.
    @ivar timeout_ms: the negotiated timeout.
    @ivar closing: a closeSession is on its way (ZooKeeper's C{isClosing}): the session
        takes no more requests and cannot be revalidated.
    """

    __slots__ = ("session_id", "timeout_ms", "closing")

    def __init__(self, session_id: int, timeout_ms: int) -> None:
        self.session_id = session_id
        self.timeout_ms = timeout_ms
        self.closing = False


class SessionTable:
    """
    The sessions a data server tracks.

    @ivar server_id: the top byte of the ids handed out.
    @ivar secret: mixed into passwords; keep it stable across restarts.
    """

    def __init__(
        self,
        server_id: int,
        tick_ms: int,
        now_ms: int,
        secret: int = ZOOKEEPER_SECRET,
    ) -> None:
        self.server_id = server_id
        self.secret = secret
        self._sessions: dict[int, Session] = {}
        self._expiry = ExpiryQueue(tick_ms, now_ms)
        self._next_id = initial_session_id(server_id, now_ms)

    def __contains__(self, session_id: int) -> bool:
        return session_id in self._sessions

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: int) -> Session | None:
        """@return: the L{Session}, or L{None}."""
        return self._sessions.get(session_id)

    def session_ids(self) -> list[int]:
        """@return: the ids of every tracked session."""
        return list(self._sessions)

    def next_id(self) -> int:
        """Hand out a new session id (never one already tracked)."""
        session_id = self._next_id
        while session_id in self._sessions or session_id == 0:
            session_id = _signed64(session_id + 1)
        self._next_id = _signed64(session_id + 1)
        return session_id

    def password(self, session_id: int) -> bytes:
        """@return: the session's 16-byte password."""
        return session_password(session_id, self.secret)

    def check_password(self, session_id: int, password: bytes) -> bool:
        """C{ZooKeeperServer.checkPasswd}."""
        return session_id != 0 and password == session_password(session_id, self.secret)

    def track(self, session_id: int, timeout_ms: int, now_ms: int) -> Session:
        """
        Start tracking a session (or refresh one already tracked), deadline C{now +
        timeout}.
        """
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = Session(session_id, timeout_ms)
        else:
            session.timeout_ms = timeout_ms
        self._expiry.update(session_id, timeout_ms, now_ms)
        return session

    def touch(self, session_id: int, now_ms: int, timeout_ms: int | None = None) -> bool:
        """
        C{touchSession}: the session showed signs of life.

        @param timeout_ms: a new timeout (a reconnect renegotiates it), or L{None}.
        @return: False when the session is unknown or closing.
        """
        session = self._sessions.get(session_id)
        if session is None or session.closing:
            return False
        if timeout_ms is not None:
            session.timeout_ms = timeout_ms
        self._expiry.update(session_id, session.timeout_ms, now_ms)
        return True

    def set_closing(self, session_id: int) -> None:
        """Mark a session as closing: a closeSession for it is in flight."""
        session = self._sessions.get(session_id)
        if session is not None:
            session.closing = True
            self._expiry.remove(session_id)

    def reopen(self, session_id: int, now_ms: int) -> None:
        """
        A closeSession for this session failed (the log failed): it is live again,
        with a full timeout from C{now_ms}, and expires like any other.
        """
        session = self._sessions.get(session_id)
        if session is not None:
            session.closing = False
            self._expiry.update(session_id, session.timeout_ms, now_ms)

    def remove(self, session_id: int) -> None:
        """Stop tracking a session (its closeSession was applied)."""
        if self._sessions.pop(session_id, None) is not None:
            self._expiry.remove(session_id)

    def check(self, session_id: int) -> int:
        """
        C{checkSession}: may this session send a write?

        A closing session gives SessionExpired, as in ZooKeeper.  So does an unknown
        one, where ZooKeeper says UnknownSession: here the only way a session server
        holds a session the data server does not know is that it was closed or expired,
        and answering the same before and after the close is applied keeps pipelined
        writes equal to one-by-one ones.

        @return: 0 or L{codes.SESSION_EXPIRED}.
        """
        session = self._sessions.get(session_id)
        if session is None or session.closing:
            return codes.SESSION_EXPIRED
        return 0

    def expired(self, now_ms: int) -> list[int]:
        """
        The sessions whose deadline passed by C{now_ms}, marked closing.

        The caller issues a closeSession txn for each (ZooKeeper's C{expire}).
        """
        expired = []
        for session_id in self._expiry.poll(now_ms):
            session = self._sessions.get(session_id)
            if session is not None and not session.closing:
                session.closing = True
                expired.append(session_id)
        return expired

    def next_expiration_ms(self) -> int:
        """@return: when L{expired} may next return something."""
        return self._expiry.next_expiration_ms

    def deadline_of(self, session_id: int) -> int | None:
        """@return: the session's current deadline, or L{None}."""
        return self._expiry.deadline_of(session_id)

    def advance_past(self, session_id: int) -> None:
        """Never hand out ids at or below C{session_id} (ids replayed from the log)."""
        if (session_id >> 56) & 0xFF == self.server_id & 0xFF and session_id >= self._next_id:
            self._next_id = _signed64(session_id + 1)
