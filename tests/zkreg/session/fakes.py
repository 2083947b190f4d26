"""
Test doubles for the session server: a data link whose answers the test controls.
"""

from __future__ import annotations

from twisted.internet import defer
from zope.interface import implementer

from zkreg.data.messages import Commit, Outcome, SessionGrant
from zkreg.interfaces import IDataLink, IReadView


class FakeNode:
    """The fields of a node the session server reads."""

    def __init__(self, mzxid: int = 1, pzxid: int = 1, data: bytes = b"", acl=()) -> None:
        self.acl = acl
        self.mzxid = mzxid
        self.pzxid = pzxid
        self.data = data


@implementer(IReadView)
class FakeView:
    def __init__(self) -> None:
        self.nodes: dict[str, FakeNode] = {"/": FakeNode()}
        self.last_zxid = 0

    def get(self, path):
        return self.nodes.get(path)


@implementer(IDataLink)
class FakeLink:
    """
    @ivar submitted: (request, Deferred) pairs in submission order; the test fires them.
    @ivar auto_answer: when set, C{submit} answers at once with this callable's outcome,
        after telling listeners about C{commit_for(request)}.
    """

    def __init__(self) -> None:
        self.view = FakeView()
        self.listeners = []
        self.submitted = []
        self.closed = []
        self.touched = []
        self.sessions = {}
        self.next_session = 0x100
        self.auto_answer = None
        self.revalidations = []

    def create_session(self, timeout_ms):
        session_id = self.next_session
        self.next_session += 1
        grant = SessionGrant(session_id, b"p" * 16, timeout_ms)
        self.sessions[session_id] = grant
        return defer.succeed(grant)

    def revalidate_session(self, session_id, password, timeout_ms):
        self.revalidations.append((session_id, password, timeout_ms))
        grant = self.sessions.get(session_id)
        if grant is None or grant.password != password:
            return defer.succeed(None)
        return defer.succeed(SessionGrant(session_id, password, timeout_ms))

    def touch_sessions(self, session_ids):
        self.touched.append(set(session_ids))

    def close_session(self, session_id):
        self.closed.append(session_id)
        self.view.last_zxid += 1
        self.commit(Commit(self.view.last_zxid, session_id, 0, -11, None, (), session_id))
        return defer.succeed(Outcome(self.view.last_zxid, 0))

    def submit(self, request):
        deferred = defer.Deferred()
        self.submitted.append((request, deferred))
        if self.auto_answer is not None:
            events, outcome = self.auto_answer(request)
            self.view.last_zxid = outcome.zxid
            self.commit(
                Commit(
                    outcome.zxid,
                    request.session_id,
                    request.cxid,
                    request.opcode,
                    None,
                    tuple(events),
                )
            )
            deferred.callback(outcome)
        return deferred

    def commit(self, commit):
        for listener in list(self.listeners):
            listener.committed(commit)

    def subscribe(self, listener):
        self.listeners.append(listener)

    def unsubscribe(self, listener):
        self.listeners.remove(listener)

    def read_view(self):
        return self.view


class CallbackFakeLink(FakeLink):
    """
    A L{FakeLink} that also has the in-process link's Deferred-free
    C{submit_with_callback}: the callback gets the Outcome or the Failure of the
    Deferred the test fires (or that C{auto_answer} fired inside the call).
    """

    def __init__(self) -> None:
        super().__init__()
        self.callback_submits = 0

    def submit_with_callback(self, request, callback):
        self.callback_submits += 1
        self.submit(request).addBoth(callback)
