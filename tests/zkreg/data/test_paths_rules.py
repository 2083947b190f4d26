"""Path validation as PathUtils.validatePath."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkreg.data.paths import checked_parent_of, is_valid_path, parent_of


@pytest.mark.parametrize(
    "path",
    ["/", "/a", "/a/b", "/a.b", "/..a", "/a..", "/...", "/a/.b", "/ü", "/\u00a0", "/a b"],
)
def test_valid(path):
    assert is_valid_path(path)


@pytest.mark.parametrize(
    "path",
    [
        "",
        None,
        "a",
        "/a/",
        "//",
        "/a//b",
        "/.",
        "/..",
        "/a/.",
        "/a/..",
        "/./a",
        "/../a",
        "/a\x00",
        "/a\x01",
        "/a\x7f",
        "/a\x9f",
        "/a\ud800",
        "/a\ue000",
        "/a\uf8ff",
        "/a\ufff0",
        "/a\uffff",
        "/a\U0001f600",
    ],
)
def test_invalid(path):
    assert not is_valid_path(path)


def test_parent_and_checked_parent():
    assert parent_of("/a") == "/"
    assert parent_of("/a/b") == "/a"
    assert checked_parent_of("/a/b") == "/a"
    assert checked_parent_of("/a") == "/"
    assert checked_parent_of("a") is None
    assert checked_parent_of("/a\x00") is None


_REFUSED_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\U0010ffff]")


def _reference_is_valid(path: str) -> bool:
    """validatePath read literally: name by name, every character against the ranges."""
    if not path or path[0] != "/":
        return False
    if path == "/":
        return True
    if path[-1] == "/" or _REFUSED_CHAR.search(path):
        return False
    return all(name not in ("", ".", "..") for name in path[1:].split("/"))


_PATH_PIECES = ["/", ".", "..", "a", " ", "~", "\x00", "\x1f", "\x7f", "\x80", "\x9f", "\xa0"]
_PATH_PIECES += ["\ud7ff", "\ud800", "\uf8ff", "\uf900", "\ufff0", "\U0001f600", "ü"]


@settings(max_examples=3000)
@given(st.lists(st.sampled_from(_PATH_PIECES), max_size=8), st.booleans())
def test_same_as_name_by_name(pieces, rooted):
    """The fast checks (ASCII printable, substring searches) refuse exactly what a
    name-by-name reading of validatePath refuses."""
    path = ("/" if rooted else "") + "".join(pieces)
    assert is_valid_path(path) == _reference_is_valid(path)
