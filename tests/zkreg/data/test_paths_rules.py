"""Path validation as PathUtils.validatePath."""

from __future__ import annotations

import pytest

from zkreg.data.paths import is_valid_path, parent_of, split_path


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


def test_parent_and_split():
    assert parent_of("/a") == "/"
    assert parent_of("/a/b") == "/a"
    assert split_path("/a/b") == ("/a", "b")
    assert split_path("/a") == ("/", "a")
    assert split_path("a") is None
    assert split_path("/a\x00") is None
