"""
Every zope interface of zkreg, in one place.

These are the seams of the architecture in DESIGN.md: the data link between session
servers and the data tier, the read view a session server answers reads from, the
durable log under the data server, and the listener of the commit stream.  Everything
else is plain classes.
"""

from zope.interface import Attribute, Interface


class ICommitListener(Interface):
    """
    Receives committed transactions in zxid order.

    The in-process data server calls C{committed} synchronously, after applying the
    transaction and I{before} firing the writer's reply Deferred, so a session server
    can write watch events to every connection ahead of any reply that reflects the
    change (ZooKeeper's ordering guarantee).
    """

    def committed(commit):
        """
        @param commit: a L{zkreg.data.messages.Commit}.
        """


class IReadView(Interface):
    """
    The tree as a session server reads it.

    In one process this is the data server's own L{zkreg.data.tree.DataTree}; a split
    session server keeps a replica fed by the commit stream.
    """

    last_zxid = Attribute("zxid of the last transaction applied to this view")

    def get(path):
        """
        @return: the L{zkreg.data.node.Node} at C{path}, or L{None}.
        """


class IDataLink(Interface):
    """
    What a session server needs from the data tier.

    All methods that change state return Deferreds, because over TCP (split mode) or
    with a durable log nothing is committed synchronously.
    """

    def create_session(timeout_ms):
        """
        Create a session with the already negotiated timeout (a createSession txn).

        @return: Deferred firing with L{zkreg.data.messages.SessionGrant}.
        """

    def revalidate_session(session_id, password, timeout_ms):
        """
        Check a reconnecting client's session id and password.

        @return: Deferred firing with the L{zkreg.data.messages.SessionGrant} when the
            session is alive and the password matches, else with L{None} (ZooKeeper
            then answers the handshake with timeout 0 and closes).
        """

    def touch_sessions(session_ids):
        """
        Report sessions as alive now (ZooKeeper's touchSession on every packet).
        """

    def close_session(session_id):
        """
        Close a session (a closeSession txn): its ephemerals go, their watches fire.

        @return: Deferred firing with the L{zkreg.data.messages.Outcome}.
        """

    def submit(request):
        """
        Order, log and apply one write (or sync) request.

        @param request: a L{zkreg.data.messages.Request}.
        @return: Deferred firing with a L{zkreg.data.messages.Outcome}.  Errors of
            ZooKeeper semantics (NoNode, BadVersion, ...) are in the outcome, never a
            failure; a failure means the data tier could not take the write.
        """

    def subscribe(listener):
        """
        Add an L{ICommitListener} for every transaction committed from now on.
        """

    def unsubscribe(listener):
        """
        Remove a listener added with L{subscribe}.
        """

    def read_view():
        """
        @return: the L{IReadView} this session server answers reads from.
        """


class IDurableLog(Interface):
    """
    The write-ahead log under the data server.

    Files are one provider; etcd is another, so nothing here assumes files.
    Records are opaque serialized transactions keyed by zxid.
    """

    def append(zxid, record):
        """
        Append one serialized transaction.

        @return: Deferred firing once the record is durable (group commit: many
            appends may share one sync).
        """

    def replay(after_zxid):
        """
        @return: an iterable of C{(zxid, record)} for every durable record with a
            zxid greater than C{after_zxid}, in order.
        """

    def close():
        """
        Flush and release the log.

        @return: Deferred.
        """
