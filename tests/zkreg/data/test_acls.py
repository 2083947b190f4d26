"""
ACL rules: each scheme, super, validation (InvalidACL) and auth expansion, addauth ids.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from zkreg.data import codes
from zkreg.data.acl import (
    AclChecker,
    generate_digest,
    ip_matches,
    is_valid_digest_id,
    is_valid_ip_expr,
)
from zkreg.proto.records import ACL, Id

ANYONE = Id("world", "anyone")
IP = Id("ip", "10.1.2.3")


def test_generate_digest_is_user_colon_base64_sha1():
    expected = base64.b64encode(hashlib.sha1(b"alice:pw:with:colons").digest()).decode()
    assert generate_digest("alice:pw:with:colons") == "alice:" + expected
    # ZooKeeper's documented example.
    assert generate_digest("super:test") == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="


def test_world_anyone_grants_only_its_perms():
    checker = AclChecker()
    acl = [ACL(codes.PERM_READ | codes.PERM_WRITE, ANYONE)]
    assert checker.allowed(acl, codes.PERM_READ, ())
    assert checker.allowed(acl, codes.PERM_WRITE, ())
    assert not checker.allowed(acl, codes.PERM_DELETE, ())
    # Any one of the requested bits suffices (getACL asks READ|ADMIN).
    assert checker.allowed(acl, codes.PERM_READ | codes.PERM_ADMIN, ())


def test_empty_acl_lets_everyone_in():
    assert AclChecker().allowed([], codes.PERM_ADMIN, ())


def test_digest_matches_exact_id():
    checker = AclChecker()
    alice = generate_digest("alice:pw")
    acl = [ACL(codes.PERM_ALL, Id("digest", alice))]
    assert checker.allowed(acl, codes.PERM_READ, (IP, Id("digest", alice)))
    assert not checker.allowed(acl, codes.PERM_READ, (IP, Id("digest", generate_digest("alice:x"))))
    assert not checker.allowed(acl, codes.PERM_READ, (IP,))


@pytest.mark.parametrize(
    "address, expr, expected",
    [
        ("10.1.2.3", "10.1.2.3", True),
        ("10.1.2.4", "10.1.2.3", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("10.1.2.3", "10.1.2.0/24", True),
        ("10.1.3.3", "10.1.2.0/24", False),
        ("10.1.2.3", "10.1.2.0/23", True),
        ("10.1.4.3", "10.1.2.0/23", False),
        ("1.2.3.4", "0.0.0.0/0", True),
        ("10.1.2.3", "10.1.2.3/33", False),
        ("10.1.2.3", "10.1.2.3/x", False),
        ("0:0:0:0:0:0:0:1", "0.0.0.0/0", False),
        ("10.1.2.3", "10.1.2", False),
        ("10.1.2.3", "10.1.2.256", False),
    ],
)
def test_ip_matching_as_ip_authentication_provider(address, expr, expected):
    assert ip_matches(address, expr) is expected


def test_ip_acl_checks_the_session_ip_id():
    checker = AclChecker()
    acl = [ACL(codes.PERM_READ, Id("ip", "10.0.0.0/8"))]
    assert checker.allowed(acl, codes.PERM_READ, (IP,))
    assert not checker.allowed(acl, codes.PERM_READ, (Id("ip", "192.168.0.1"),))


def test_super_id_passes_everything():
    checker = AclChecker()
    acl = [ACL(codes.PERM_READ, Id("digest", "x:y"))]
    assert checker.allowed(acl, codes.PERM_ADMIN, (Id("super", ""),))


def test_unknown_scheme_entry_never_matches():
    checker = AclChecker()
    acl = [ACL(codes.PERM_ALL, Id("kerberos", "bob"))]
    assert not checker.allowed(acl, codes.PERM_READ, (Id("kerberos", "bob"),))


@pytest.mark.parametrize("scheme, holder", [("sasl", "bob"), ("x509", "CN=bob,O=Example")])
def test_ids_given_elsewhere_match_without_the_scheme_configured(scheme, holder):
    """
    A data server of the split checks ids its session servers gave (only a server
    that knows sasl or x509 gives them): they match its entries with the scheme not
    configured on the data server itself.
    """
    checker = AclChecker()
    acl = [ACL(codes.PERM_READ, Id(scheme, holder))]
    assert checker.allowed(acl, codes.PERM_READ, (IP, Id(scheme, holder)))
    assert not checker.allowed(acl, codes.PERM_READ, (IP, Id(scheme, "someone-else")))
    assert not checker.allowed(acl, codes.PERM_WRITE, (IP, Id(scheme, holder)))


def test_fixup_takes_the_schemes_of_the_clients_server():
    """
    C{schemes} (the client's session server's) decide whether an x509 or sasl entry
    is valid; without it, the checker's own settings do.
    """
    plain, tls = AclChecker(), AclChecker(x509=True)
    x509_acl = [ACL(codes.PERM_ALL, Id("x509", "CN=alice,O=Example"))]
    sasl_acl = [ACL(codes.PERM_ALL, Id("sasl", "alice"))]
    assert plain.fixup(x509_acl, (IP,)) is None
    assert tls.fixup(x509_acl, (IP,)) == x509_acl
    assert plain.fixup(x509_acl, (IP,), frozenset({"x509"})) == x509_acl
    assert tls.fixup(x509_acl, (IP,), frozenset()) is None
    assert plain.fixup(sasl_acl, (IP,), frozenset({"sasl"})) == sasl_acl
    assert plain.fixup(sasl_acl, (IP,), frozenset({"x509"})) is None
    alice = Id("x509", "CN=alice,O=Example")
    auth_acl = [ACL(codes.PERM_ALL, Id("auth", ""))]
    assert plain.fixup(auth_acl, (IP, alice), frozenset({"x509"})) == [ACL(codes.PERM_ALL, alice)]


@pytest.mark.parametrize(
    "text, valid",
    [("u:h", True), (":h", True), ("u:", False), ("u", False), ("u:h:x", False), ("u::", False)],
)
def test_digest_id_validity_follows_java_split(text, valid):
    assert is_valid_digest_id(text) is valid


def test_ip_expr_validity():
    assert is_valid_ip_expr("1.2.3.4")
    assert is_valid_ip_expr("1.2.3.4/32")
    assert is_valid_ip_expr("1.2.3.4/+8")  # Integer.parseInt takes a sign
    assert not is_valid_ip_expr("1.2.3.4/-1")
    assert not is_valid_ip_expr("1.2.3")
    assert not is_valid_ip_expr("a.b.c.d")
    assert not is_valid_ip_expr("1.2.3.4/ 8")


def test_fixup_validates_and_dedups():
    checker = AclChecker()
    good = ACL(codes.PERM_ALL, ANYONE)
    assert checker.fixup([good, good], ()) == [good]
    assert checker.fixup([], ()) is None
    assert checker.fixup(None, ()) is None
    for bad in (
        Id("world", "someone"),
        Id("digest", "nocolon"),
        Id("ip", "300.1.1.1"),
        Id("super", ""),
        Id("unknown", "x"),
    ):
        assert checker.fixup([ACL(codes.PERM_ALL, bad)], ()) is None, bad


def test_fixup_expands_auth_to_digest_ids_only():
    checker = AclChecker()
    digest_id = Id("digest", generate_digest("u:p"))
    auth = (IP, Id("super", ""), digest_id)
    fixed = checker.fixup([ACL(codes.PERM_READ, Id("auth", "ignored"))], auth)
    assert fixed == [ACL(codes.PERM_READ, digest_id)]
    assert checker.fixup([ACL(codes.PERM_READ, Id("auth", ""))], (IP,)) is None


def test_authenticate_digest_and_super():
    checker = AclChecker(super_digest=generate_digest("super:test"))
    assert checker.authenticate("digest", b"bob:pw", "1.2.3.4") == [
        Id("digest", generate_digest("bob:pw"))
    ]
    assert checker.authenticate("digest", b"super:test", "1.2.3.4") == [
        Id("super", ""),
        Id("digest", generate_digest("super:test")),
    ]
    assert checker.authenticate("ip", b"", "1.2.3.4") == [Id("ip", "1.2.3.4")]
    assert checker.authenticate("kerberos", b"x", "1.2.3.4") is None


def test_zookeeper_auth_order_matches_recorded_zookeeper_output():
    """Orders a ZooKeeper 3.8 server reported (whoAmI) in the differential suite."""
    from zkreg.data.acl import java_string_hash, zookeeper_auth_order

    assert java_string_hash("hello") == 99162322
    assert java_string_hash("\U0001f600") == (31 * 0xD83D + 0xDE00)
    ip = Id("ip", "127.0.0.1")
    alice = Id("digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=")
    bob = Id("digest", "bob:DzYBVPYoUPHuiOrAcsz6mJwnG9k=")
    assert zookeeper_auth_order([ip, alice, bob]) == [bob, ip, alice]
    superuser = Id("super", "")
    super_digest = Id("digest", generate_digest("super:super-secret"))
    # ZooKeeper answered: super, digest super, ip.
    assert zookeeper_auth_order([ip, superuser, super_digest]) == [superuser, super_digest, ip]


def test_auth_expansion_follows_zookeeper_order():
    checker = AclChecker()
    ip = Id("ip", "127.0.0.1")
    alice = Id("digest", "alice:V55/p2T0OpjQ+low3NVAH4aLvm0=")
    bob = Id("digest", "bob:DzYBVPYoUPHuiOrAcsz6mJwnG9k=")
    fixed = checker.fixup([ACL(1, Id("auth", ""))], (ip, alice, bob))
    assert [entry.id for entry in fixed] == [bob, alice]
