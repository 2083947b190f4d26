"""
ACLs as ZooKeeper checks them: the world, auth, digest and ip schemes and the super user.

The rules follow C{ZooKeeperServer.checkACL}, C{PrepRequestProcessor.fixupACL} and the
two built-in providers, C{DigestAuthenticationProvider} and C{IPAuthenticationProvider}
plus C{sasl} and C{x509} when configured: an unknown scheme in an ACL is InvalidACL, an
ACL entry of an unknown scheme never matches, and an empty ACL on a node lets everyone in.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence

from zkreg.data import codes
from zkreg.proto.records import ACL, Id

_JAVA_INT = re.compile(r"[+-]?[0-9]+\Z")

#: The open ACL (C{world:anyone} with every permission): the ACL of /, /zookeeper and
#: /zookeeper/quota (ZooKeeper's ACL cache entry -1).  Every node of every
#: L{zkreg.data.tree.DataTree} with this ACL shares this very tuple
#: (C{DataTree.intern_acl}), so prep, reads and the txn codec recognise it by identity.
OPEN_ACL = (ACL(perms=codes.PERM_ALL, id=Id(scheme="world", id="anyone")),)


def generate_digest(user_password: str) -> str:
    """
    The C{digest} scheme id for C{"user:password"}: C{user:base64(sha1(user:password))}.

    @param user_password: what a client passes to addauth (the password may itself
        contain colons; only the first one separates the user).
    """
    user = user_password.split(":", 1)[0]
    sha1 = hashlib.sha1(user_password.encode("utf-8")).digest()
    return user + ":" + base64.b64encode(sha1).decode("ascii")


def _java_split_count(text: str, sep: str) -> int:
    """Number of parts Java's C{String.split(sep)} yields (trailing empties dropped)."""
    parts = text.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return len(parts)


def is_valid_digest_id(id_text: str) -> bool:
    """C{DigestAuthenticationProvider.isValid}: exactly C{user:hash}, as Java splits it."""
    return _java_split_count(id_text, ":") == 2


def _parse_java_int(text: str) -> int | None:
    if _JAVA_INT.match(text) is None:
        return None
    value = int(text)
    if not -0x80000000 <= value <= 0x7FFFFFFF:
        return None
    return value


def _ipv4_bytes(addr: str) -> bytearray | None:
    parts = addr.split(".")
    if len(parts) != 4:
        return None
    out = bytearray(4)
    for index, part in enumerate(parts):
        value = _parse_java_int(part)
        if value is None or not 0 <= value <= 255:
            return None
        out[index] = value
    return out


def _parse_ip_expr(expr: str) -> tuple[bytearray, int] | None:
    address, slash, bits_text = expr.partition("/")
    addr = _ipv4_bytes(address)
    if addr is None:
        return None
    bits = len(addr) * 8
    if slash:
        parsed = _parse_java_int(bits_text)
        if parsed is None or not 0 <= parsed <= bits:
            return None
        bits = parsed
    return addr, bits


def _mask(addr: bytearray, bits: int) -> None:
    start = bits // 8
    start_mask = ~((1 << (8 - bits % 8)) - 1) & 0xFF
    while start < len(addr):
        addr[start] &= start_mask
        start_mask = 0
        start += 1


def is_valid_ip_expr(expr: str) -> bool:
    """C{IPAuthenticationProvider.isValid}: an IPv4 address with an optional C{/bits}."""
    return _parse_ip_expr(expr) is not None


def ip_matches(address: str, expr: str) -> bool:
    """
    Whether a client address matches an ip ACL expression (C{10.0.0.0/8} or an address).

    IPv6 addresses never match, as in ZooKeeper 3.8 (its v6 parser is a TODO).
    """
    parsed = _parse_ip_expr(expr)
    if parsed is None:
        return False
    acl_addr, bits = parsed
    remote = _ipv4_bytes(address)
    if remote is None:
        return False
    _mask(acl_addr, bits)
    _mask(remote, bits)
    return remote == acl_addr


def java_string_hash(text: str) -> int:
    """C{String.hashCode()}: over UTF-16 code units, as a 32-bit unsigned value."""
    units = text.encode("utf-16-be", "surrogatepass")
    value = 0
    for index in range(0, len(units), 2):
        value = (31 * value + (units[index] << 8 | units[index + 1])) & 0xFFFFFFFF
    return value


def _id_hash(auth_id: Id) -> int:
    # The jute-generated Id.hashCode(): 37 * (37 * 17 + scheme) + id.
    value = (37 * 17 + java_string_hash(auth_id.scheme or "")) & 0xFFFFFFFF
    return (37 * value + java_string_hash(auth_id.id or "")) & 0xFFFFFFFF


def zookeeper_auth_order(ids: Sequence[Id]) -> list[Id]:
    """
    The order in which ZooKeeper iterates a session's ids, given the order they were
    added.

    A ZooKeeper connection keeps its ids in a C{ConcurrentHashMap} key set, so whoAmI
    lists them, and the C{auth} ACL scheme expands to them, in hash-bucket order:
    bucket C{spread(hashCode) & (table size - 1)}, insertion order within a bucket.  The
    table starts at 16 buckets and doubles when three quarters full (exact below 12
    ids; beyond, ZooKeeper's resize may reorder a bucket, which is not modelled).

    @param ids: the session's ids in the order they were added, without duplicates.
    """
    size = 16
    while len(ids) > size - (size >> 2):
        size <<= 1
    mask = size - 1
    keyed = []
    for position, auth_id in enumerate(ids):
        hashed = _id_hash(auth_id)
        keyed.append((((hashed ^ (hashed >> 16)) & 0x7FFFFFFF) & mask, position, auth_id))
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry[2] for entry in keyed]


_DN_ATTRIBUTE = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)\s*=")


def is_valid_dn(text: str) -> bool:
    """
    Whether an C{x509} ACL id is a distinguished name (what Java's C{X500Principal}
    accepts, C{X509AuthenticationProvider.isValid}): names separated by unescaped
    C{,} (or C{;}), several values in one joined by C{+}, each C{type=value}; the
    empty name is valid.
    """
    if not text.strip():
        return True
    parts = re.split(r"(?<!\\)[,;+]", text)
    return all(_DN_ATTRIBUTE.match(part) for part in parts)


class AclChecker:
    """
    ACL decisions for one server: permission checks, ACL validation and expansion,
    and the identities an addauth grants.

    @ivar super_digest: C{"super:<base64 sha1>"}; a session that authenticates with
        the matching digest credentials also gets the C{super} id, which passes every
        check.
    @ivar x509: whether the C{x509} scheme is known (ZooKeeper knows it only with
        its X509AuthenticationProvider configured; zkreg when a TLS listener is).
    @ivar sasl: whether the C{sasl} scheme is known (ZooKeeper registers its
        SASLAuthenticationProvider only when SASL is configured): a C{sasl:<user>}
        entry matches a session SASL-authenticated as that user (or as C{super}).
    """

    def __init__(
        self, super_digest: str | None = None, sasl: bool = False, x509: bool = False
    ) -> None:
        self.super_digest = super_digest
        self.sasl = sasl
        self.x509 = x509

    def allowed(self, acl: Sequence[ACL], perm: int, auth: Iterable[Id]) -> bool:
        """
        C{ZooKeeperServer.checkACL}: may a session holding C{auth} do C{perm} on a node
        with C{acl}?

        @param perm: a permission bit mask; any ACL entry granting one of its bits to
            one of the session's ids suffices.
        """
        if not acl:
            return True
        for auth_id in auth:
            if auth_id.scheme == "super":
                return True
        for entry in acl:
            if not entry.perms & perm:
                continue
            entry_id = entry.id
            scheme = entry_id.scheme
            if scheme == "world":
                if entry_id.id == "anyone":
                    return True
            elif scheme == "digest":
                for auth_id in auth:
                    if auth_id.scheme == "digest" and auth_id.id == entry_id.id:
                        return True
            elif scheme == "ip":
                for auth_id in auth:
                    if auth_id.scheme == "ip" and ip_matches(auth_id.id, entry_id.id):
                        return True
            elif scheme == "sasl":
                # No sasl or x509 check needs the scheme known here: only a session
                # server that knows the scheme gives a session such an id (in the
                # split, the data server checks ids its session servers gave).
                for auth_id in auth:
                    if auth_id.scheme == "sasl" and auth_id.id in ("super", entry_id.id):
                        return True
            elif scheme == "x509":
                for auth_id in auth:
                    if auth_id.scheme == "x509" and auth_id.id == entry_id.id:
                        return True
        return False

    def fixup(
        self,
        acl: Sequence[ACL] | None,
        auth: Iterable[Id],
        schemes: frozenset[str] | None = None,
    ) -> list[ACL] | None:
        """
        C{PrepRequestProcessor.fixupACL}: validate an ACL given to create or setACL,
        removing duplicates and expanding C{auth} entries to the session's
        authenticated ids (in L{zookeeper_auth_order}: pass C{auth} in the order the
        ids were added).

        @param schemes: the optional schemes (C{sasl}, C{x509}) known where the
            client connected, when that is another process (a session server of the
            split); L{None}: this checker's own L{sasl} and L{x509}.
        @return: the ACL to store, or L{None} where ZooKeeper answers InvalidACL (empty
            list, unknown scheme, malformed id, C{auth} without any digest identity).
        """
        if not acl:
            return None
        sasl = self.sasl if schemes is None else "sasl" in schemes
        x509 = self.x509 if schemes is None else "x509" in schemes
        unique: list[ACL] = []
        seen: set[tuple] = set()
        for entry in acl:
            if entry is None or entry.id is None:
                return None
            key = (entry.perms, entry.id.scheme, entry.id.id)
            if key not in seen:
                seen.add(key)
                unique.append(entry)
        result: list[ACL] = []
        for entry in unique:
            scheme = entry.id.scheme
            id_text = entry.id.id
            if scheme is None:
                return None
            if scheme == "world" and id_text == "anyone":
                result.append(entry)
            elif scheme == "auth":
                # Only digest, x509 (and sasl) identities are "authenticated"; the ip id
                # every session carries is not, and 'super' has no provider.  ZooKeeper
                # iterates the session's ids in its hash-set order.
                expanded = [
                    ACL(perms=entry.perms, id=a)
                    for a in zookeeper_auth_order(list(auth))
                    if a.scheme == "digest"
                    or (a.scheme == "sasl" and sasl)
                    or (a.scheme == "x509" and x509)
                ]
                if not expanded:
                    return None
                result.extend(expanded)
            elif scheme == "digest":
                if id_text is None or not is_valid_digest_id(id_text):
                    return None
                result.append(entry)
            elif scheme == "ip":
                if id_text is None or not is_valid_ip_expr(id_text):
                    return None
                result.append(entry)
            elif scheme == "sasl" and sasl:
                if not id_text:
                    return None
                result.append(entry)
            elif scheme == "x509" and x509:
                if id_text is None or not is_valid_dn(id_text):
                    return None
                result.append(entry)
            else:
                return None
        return result

    def authenticate(self, scheme: str, auth_data: bytes, remote_ip: str) -> list[Id] | None:
        """
        The ids an C{addauth} adds to a session (C{AuthenticationProvider.handleAuthentication}).

        @param remote_ip: the client's address, the id the C{ip} scheme grants.
        @return: the new ids, or L{None} for an unknown scheme (AuthFailed).
        """
        if scheme == "digest":
            digest = generate_digest(auth_data.decode("utf-8", "replace"))
            ids = [Id(scheme="digest", id=digest)]
            if self.super_digest is not None and digest == self.super_digest:
                ids.insert(0, Id(scheme="super", id=""))
            return ids
        if scheme == "ip":
            return [Id(scheme="ip", id=remote_ip)]
        return None
