"""
Which local snapshot a data server on etcd may load instead of etcd's
(L{zkreg.persistence.etcd.cache.LocalSnapshot.usable}): only one the etcd log
continues.
"""

from __future__ import annotations

from zkreg.persistence.etcd.cache import LocalSnapshot, digest

SLOT = b"slot 7 as written"
LOCAL = LocalSnapshot("/cache/snapshot.0000000100000040", 0x100000040, 7, digest(SLOT), "f" * 64)


def test_etcds_own_snapshot_by_file_digest() -> None:
    """At the manifest's slot (deleted from the log): only with the same file digest."""
    assert LOCAL.usable({"seq": 7, "sha256": "f" * 64}, None)
    assert not LOCAL.usable({"seq": 7, "sha256": "e" * 64}, None)
    assert not LOCAL.usable({"seq": 7}, None)  # a manifest without a digest


def test_past_the_manifest_by_slot_value() -> None:
    """Past etcd's snapshot (or with none): only while its slot is there, unchanged."""
    assert LOCAL.usable({"seq": 3, "sha256": "a" * 64}, SLOT)
    assert LOCAL.usable(None, SLOT)
    assert not LOCAL.usable(None, None)  # another tier, or a wiped one
    assert not LOCAL.usable(None, b"slot 7 of another log")


def test_older_than_the_manifest() -> None:
    """Before etcd's snapshot: the slots after it were deleted, never usable."""
    assert not LOCAL.usable({"seq": 8, "sha256": "f" * 64}, SLOT)
