"""
A zkreg whose log syncs fail on demand: C{os.fdatasync} raises ENOSPC while a marker
file exists, so a test switches a real server's disk failure on and off.
"""

from __future__ import annotations

from typing import Any

#: twistd with os.fdatasync failing (ENOSPC) while the marker file exists.
FAULTY_SYNC_TWISTD = """
import errno, os, sys
marker = os.environ["ZKREG_TEST_FAIL_SYNC_MARKER"]
real_fdatasync = os.fdatasync
def fdatasync(fd):
    if os.path.exists(marker):
        raise OSError(errno.ENOSPC, "No space left on device (injected by the test)")
    return real_fdatasync(fd)
os.fdatasync = fdatasync
from twisted.scripts.twistd import run
sys.argv[0] = "twistd"
run()
"""


class FailingSync:
    """
    Mix into a L{tests.support.servers.ZkregServer} subclass (before it): the server's
    log syncs fail while C{self.marker} exists.
    """

    workdir: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.marker = self.workdir / "fail-sync"

    def command(self) -> list[str]:
        argv: list[str] = super().command()  # type: ignore[misc]
        assert argv[1] == "-c"
        argv[2] = FAULTY_SYNC_TWISTD
        return argv

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = super().environment()  # type: ignore[misc]
        env["ZKREG_TEST_FAIL_SYNC_MARKER"] = str(self.marker)
        return env
