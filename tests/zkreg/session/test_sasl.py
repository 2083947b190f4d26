"""
The server side of SASL DIGEST-MD5 against pure-sasl's client (what kazoo uses), and
the JAAS-style credentials file.
"""

from __future__ import annotations

import pytest
from puresasl.client import SASLClient

from zkreg.data.acl import AclChecker
from zkreg.proto.records import ACL, Id
from zkreg.session.sasl import (
    DigestMD5Server,
    JaasConfigError,
    SaslFailed,
    load_jaas_users,
    parse_digest_fields,
    parse_jaas_users,
)

USERS = {"bob": "bob-secret", "carol": 'with "quote"'}


def exchange(server: DigestMD5Server, user: str, password: str, **options: object) -> bytes:
    """Run pure-sasl's client against C{server}; @return: the last server token."""
    client = SASLClient(
        host="zk-sasl-md5",
        service="zookeeper",
        mechanism="DIGEST-MD5",
        username=user,
        password=password,
        **options,
    )
    challenge = None
    token = b""
    while not client.complete:
        response = client.process(challenge=challenge)
        if client.complete and not response:
            break
        token = challenge = server.step(response or b"")
    return token


def test_right_password_authenticates_and_the_client_checks_the_server():
    server = DigestMD5Server(USERS)
    last = exchange(server, "bob", "bob-secret")
    assert last.startswith(b"rspauth=")
    assert server.authorized_id == "bob"


def test_password_with_quotes():
    server = DigestMD5Server(USERS)
    exchange(server, "carol", 'with "quote"')
    assert server.authorized_id == "carol"


@pytest.mark.parametrize(("user", "password"), [("bob", "guess"), ("mallory", "x"), ("bob", "")])
def test_wrong_credentials_fail(user, password):
    server = DigestMD5Server(USERS)
    with pytest.raises(SaslFailed):
        exchange(server, user, password)
    assert server.authorized_id is None


def test_a_replayed_response_fails_against_a_new_nonce():
    client = SASLClient(
        host="zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
        username="bob", password="bob-secret",
    )  # fmt: skip
    client.process(challenge=None)
    response = client.process(challenge=DigestMD5Server(USERS).step(b""))
    other = DigestMD5Server(USERS)
    other.step(b"")
    with pytest.raises(SaslFailed, match="nonce"):
        other.step(response)


@pytest.mark.parametrize(
    "token",
    [
        b"garbage",
        b'username="bob",nonce="unterminated',
        b"\xff\xfe",
        b'username="bob",nonce="x",digest-uri="zookeeper/zk-sasl-md5",response="00"',
    ],
)
def test_malformed_responses_fail_cleanly(token):
    server = DigestMD5Server(USERS)
    server.step(b"")
    with pytest.raises((SaslFailed, UnicodeDecodeError)):
        server.step(token)


def test_no_step_after_completion():
    server = DigestMD5Server(USERS)
    exchange(server, "bob", "bob-secret")
    with pytest.raises(SaslFailed):
        server.step(b"")


def test_digest_fields():
    assert parse_digest_fields(b'a="x,y",b=z, c="q\\"uote"') == {
        "a": "x,y",
        "b": "z",
        "c": 'q"uote',
    }


def test_jaas_server_section():
    text = """
    QuorumServer { x required user_q="no"; };
    Server {
        org.apache.zookeeper.server.auth.DigestLoginModule required
        user_super="adminsecret"
        user_bob="bobsecret";
    };
    Client { y required username="bob" password="bobsecret"; };
    """
    assert parse_jaas_users(text) == {"super": "adminsecret", "bob": "bobsecret"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('Client { x required user_a="b"; };', "no Server"),
        ("Server { x required; };", "defines no user_"),
    ],
)
def test_jaas_errors(text, message):
    with pytest.raises(JaasConfigError, match=message):
        parse_jaas_users(text)


def test_jaas_file_unreadable(tmp_path):
    with pytest.raises(JaasConfigError, match="cannot read SASL config"):
        load_jaas_users(str(tmp_path / "absent.conf"))


def test_sasl_acl_scheme_only_when_sasl_is_configured():
    entry = ACL(31, Id("sasl", "bob"))
    bob = (Id("ip", "127.0.0.1"), Id("sasl", "bob"))
    assert AclChecker().fixup([entry], bob) is None  # unknown scheme: InvalidACL
    checker = AclChecker(sasl=True)
    assert checker.fixup([entry], bob) == [entry]
    assert checker.allowed([entry], 1, bob)
    assert not checker.allowed([entry], 1, (Id("sasl", "alice"),))
    assert checker.allowed([entry], 1, (Id("sasl", "super"),))
    assert checker.fixup([ACL(31, Id("auth", ""))], bob) == [entry]
