"""
The error classes: one per ZooKeeper code, printed the Python way (the class names
the error, the message is the path), importable on their own.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import traceback

import pytest

from curatorish import errors
from zkreg.proto.consts import Err


def test_an_error_prints_its_class_and_path() -> None:
    error = errors.NodeExistsError("/app/config")
    assert str(error) == "/app/config"
    assert repr(error) == "NodeExistsError('/app/config')"
    try:
        raise error
    except errors.ZooKeeperError:
        last_line = traceback.format_exc().strip().splitlines()[-1]
    assert last_line == "curatorish.errors.NodeExistsError: /app/config"
    assert "KeeperErrorCode" not in last_line


def test_detail_follows_the_path_and_no_path_reads_as_the_description() -> None:
    assert str(errors.NoNodeError("/a", "while syncing")) == "/a: while syncing"
    assert repr(errors.NoNodeError("/a", "while syncing")) == "NoNodeError('/a', 'while syncing')"
    assert str(errors.SessionExpiredError()) == "The session has expired."
    assert repr(errors.SessionExpiredError()) == "SessionExpiredError()"
    assert str(errors.ConnectionClosedError()).startswith("The client was closed")


def test_every_protocol_code_has_its_class() -> None:
    for code in Err:
        if code == Err.OK:
            continue
        error = errors.error_for_code(int(code), "/p")
        assert type(error) is not errors.ZooKeeperError, code
        assert error.code == code and error.path == "/p"
        assert errors.error_class_for_code(int(code)) is type(error)
    # A subclass that only refines a code does not take it over.
    assert errors.error_class_for_code(Err.CONNECTIONLOSS) is errors.ConnectionLossError
    unknown = errors.error_for_code(-999, "/p")
    assert type(unknown) is errors.ZooKeeperError and unknown.code == -999
    assert str(unknown) == "/p: unknown error code -999"


def test_errors_survive_pickling() -> None:
    copy = pickle.loads(pickle.dumps(errors.BadVersionError("/v", "expected 3")))
    assert type(copy) is errors.BadVersionError
    assert (copy.path, copy.message, str(copy)) == ("/v", "expected 3", "/v: expected 3")


def test_all_names_every_error_class() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.ZooKeeperError)
    }
    assert classes <= set(errors.__all__)
    assert set(errors.__all__) - classes == {"error_for_code", "error_class_for_code"}


@pytest.mark.parametrize(
    "statement",
    [
        "from curatorish import errors",
        "import curatorish.errors as errors",
        "from curatorish.errors import NoNodeError as E; from curatorish import errors",
        "import curatorish.recipes.face; from curatorish import errors",
        "import curatorish.connection.session; from curatorish import errors",
    ],
)
def test_errors_import_first_in_a_fresh_process(statement: str) -> None:
    """No import-order trap: the module works whatever is imported before it."""
    code = f"{statement}; print(type(errors.error_for_code(-101, '/x')).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "NoNodeError"
