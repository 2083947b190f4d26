"""
SASL DIGEST-MD5 in the connection, against an in-memory server that runs zkreg's own
DIGEST-MD5 server mechanism: the exchange comes first on every connection, before the
client is connected and before anything else is sent; refused credentials end the
client; a connection lost mid-exchange is only a connection loss.  (Against real
ZooKeeper 3.8 and zkreg: test_sasl_live.py.)
"""

from __future__ import annotations

import logging
import sys

import pytest

from curatorish import SASLConfig, errors
from curatorish.connection import ClientState
from curatorish.connection.sasl import sasl_config
from tests.curatorish.fakes import FakeServerSide
from tests.curatorish.test_connection import make_connection, results_of
from zkreg.proto.consts import Err, OpCode, Xid
from zkreg.proto.records import GetSASLRequest, RequestHeader, SetSASLResponse
from zkreg.session.sasl import DigestMD5Server, SaslFailed

USERS = {"bob": "bob-secret"}
BOB = SASLConfig(username="bob", password="bob-secret")


class SaslServer:
    """
    Answers the client's sasl requests on one fake connection with zkreg's
    DIGEST-MD5 server, as ZooKeeper 3.8 does: a failure is answered AuthFailed and
    the connection closed.
    """

    def __init__(self, side: FakeServerSide, users: dict[str, str] = USERS) -> None:
        self.side = side
        self.mechanism = DigestMD5Server(users)
        self.xids: list[int] = []

    def answer_one(self, frame: bytes | None = None) -> bytes | None:
        """Answer the next sasl request; the token sent back."""
        frame = frame if frame is not None else self.side.frames()[0]
        header, offset = RequestHeader.deserialize(frame, 0)
        assert header.type == OpCode.sasl, header
        self.xids.append(header.xid)
        token = GetSASLRequest.deserialize(frame, offset)[0].token
        try:
            answer = self.mechanism.step(token)
        except SaslFailed:
            self.side.reply(header.xid, 0, Err.AUTHFAILED, SetSASLResponse(None).serialize())
            self.side.transport.loseConnection()
            return None
        self.side.reply(header.xid, 0, 0, SetSASLResponse(answer).serialize())
        return answer

    def run(self) -> None:
        """The whole exchange: challenge, then the response's rspauth."""
        self.answer_one()
        self.answer_one()


def opcodes(frames: list[bytes]) -> list[int]:
    return [RequestHeader.deserialize(frame, 0)[0].type for frame in frames]


def test_sasl_comes_first_and_the_client_is_connected_after_it() -> None:
    connection, clock, network, states = make_connection(sasl=BOB)
    connection.add_auth_info("digest", "u:p")
    side = network.last
    side.accept()
    # Session established, but not connected: SASL first (an empty token, as Java
    # sends for a mechanism without an initial response), nothing else yet.
    assert connection.state is ClientState.CONNECTING
    queued = results_of(connection.exists("/"))
    first = side.frames()
    assert len(first) == 1
    header, offset = RequestHeader.deserialize(first[0], 0)
    assert header.type == OpCode.sasl and header.xid > 0
    assert GetSASLRequest.deserialize(first[0], offset)[0].token == b""
    server = SaslServer(side)
    server.answer_one(first[0])
    assert connection.state is ClientState.CONNECTING
    assert server.answer_one().startswith(b"rspauth=")  # type: ignore[union-attr]
    assert server.mechanism.authorized_id == "bob"
    assert states == [ClientState.CONNECTED]
    # Then the auth replay, then what waited: ordinary xids after the SASL ones.
    auth_frame, exists_frame = side.frames()
    assert RequestHeader.deserialize(auth_frame, 0)[0] == RequestHeader(Xid.AUTH, OpCode.auth)
    exists_header = RequestHeader.deserialize(exists_frame, 0)[0]
    assert exists_header.type == OpCode.exists
    assert exists_header.xid == server.xids[-1] + 1
    assert queued == []


def test_every_reconnect_authenticates_again_before_anything_else() -> None:
    connection, clock, network, states = make_connection(sasl=BOB)
    network.last.accept()
    SaslServer(network.last).run()
    assert connection.state is ClientState.CONNECTED
    results_of(connection.exists("/w", lambda event: None))
    (exists_frame,) = network.last.frames()
    exists_xid = RequestHeader.deserialize(exists_frame, 0)[0].xid
    network.last.reply(exists_xid, 5, err=errors.NoNodeError.code)
    network.last.transport.loseConnection()
    queued = results_of(connection.sync("/"))
    clock.advance(2)
    second = network.last
    assert second is not network.connections[0]
    second.accept()
    assert connection.state is ClientState.DISCONNECTED
    server = SaslServer(second)
    server.run()
    assert connection.state is ClientState.CONNECTED
    assert opcodes(second.frames()) == [OpCode.setWatches, OpCode.sync]
    assert queued == []
    assert len(server.xids) == 2


def test_wrong_password_ends_the_client_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="curatorish")
    connection, clock, network, states = make_connection(
        sasl=SASLConfig(username="bob", password="guess")
    )
    side = network.last
    side.accept()
    queued = results_of(connection.get_data("/x"))
    SaslServer(side).run()
    assert states == [ClientState.AUTH_FAILED]
    assert not side.connected
    assert queued[0].check(errors.AuthFailedError)
    message = str(queued[0].value)
    assert message.startswith("/x: SASL DIGEST-MD5 authentication as 'bob' refused by h")
    assert "AUTHFAILED" in message
    later = results_of(connection.exists("/"))
    assert later[0].check(errors.AuthFailedError)
    assert connection.auth_failure is not None and "AUTHFAILED" in connection.auth_failure
    clock.advance(60)
    assert len(network.connections) == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"{connection.auth_failure}; the client stops (AUTH_FAILED)"
    ]


def test_ok_without_a_token_before_the_end_is_a_failure() -> None:
    """
    ZooKeeper with allowSaslFailedClients (or with no SASL at all) answers OK with no
    token: Java's client calls that AuthFailed (a null saslToken), and so do we,
    instead of going on unauthenticated or looping.
    """
    connection, clock, network, states = make_connection(sasl=BOB)
    side = network.last
    side.accept()
    header = RequestHeader.deserialize(side.frames()[0], 0)[0]
    side.reply(header.xid, 0, 0, SetSASLResponse(None).serialize())
    assert states == [ClientState.AUTH_FAILED]
    assert "without a SASL token" in (connection.auth_failure or "")
    assert not side.connected


def test_a_server_that_does_not_know_our_password_is_refused() -> None:
    """A wrong rspauth: the server could not prove it knows the password."""
    connection, clock, network, states = make_connection(sasl=BOB)
    side = network.last
    side.accept()
    server = SaslServer(side)
    server.answer_one()
    header = RequestHeader.deserialize(side.frames()[0], 0)[0]
    side.reply(header.xid, 0, 0, SetSASLResponse(b"rspauth=" + b"0" * 32).serialize())
    assert states == [ClientState.AUTH_FAILED]
    assert "not acceptable" in (connection.auth_failure or "")


def test_connection_lost_during_the_exchange_is_only_a_connection_loss() -> None:
    connection, clock, network, states = make_connection(sasl=BOB)
    side = network.last
    side.accept()
    SaslServer(side).answer_one()
    side.transport.loseConnection()
    assert connection.state is ClientState.CONNECTING
    clock.advance(2)
    second = network.last
    assert second is not side
    request = second.accept()
    assert request.sessionId == 0x55  # the same session, resumed
    SaslServer(second).run()
    assert states == [ClientState.CONNECTED]


def test_close_during_the_exchange() -> None:
    connection, clock, network, states = make_connection(sasl=BOB)
    side = network.last
    side.accept()
    closed = results_of(connection.close())
    assert closed == [None]
    assert connection.state is ClientState.CLOSED
    assert not side.connected


def test_sasl_options_as_kazoo_writes_them() -> None:
    config = sasl_config({"mechanism": "DIGEST-MD5", "username": "bob", "password": "pw"})
    assert config == SASLConfig(username="bob", password="pw")
    assert "pw" not in repr(config)
    assert sasl_config(None) is None
    with pytest.raises(TypeError, match="unknown SASL option"):
        sasl_config({"username": "bob", "password": "pw", "realm": "x"})
    with pytest.raises(ValueError, match="only DIGEST-MD5"):
        SASLConfig(username="bob", password="pw", mechanism="GSSAPI")
    with pytest.raises(TypeError, match="SASLConfig or a mapping"):
        sasl_config("bob:pw")  # type: ignore[arg-type]


def test_missing_pure_sasl_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "puresasl.client", None)
    with pytest.raises(ImportError, match=r"pip install 'zkreg\[sasl\]'"):
        make_connection(sasl=BOB)


def test_no_sasl_no_sasl_request() -> None:
    connection, clock, network, states = make_connection()
    network.last.accept()
    assert states == [ClientState.CONNECTED]
    assert network.last.frames() == []
