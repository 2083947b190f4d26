"""
The discovery example (examples/discovery/) runs as documented: the demo starts zkreg,
two web services and the client; the client lists both instances, calls them, sees one
go away and a new one appear, and every service unregisters when stopped.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.servers import REPO_ROOT


def test_demo_shows_instances_appearing_and_going_away() -> None:
    result = subprocess.run(
        [sys.executable, "examples/discovery/demo.py", "--pause", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    registered = [line.split()[2] for line in lines if line.startswith("registered hello")]
    assert len(registered) == 3
    listings = [line for line in lines if line.startswith("instances now:")]
    short = [instance_id[:8] for instance_id in registered]
    both = [line for line in listings if short[0] in line and short[1] in line]
    assert both, listings
    # The first stops: a later listing without it, then one with the third.
    after = listings[listings.index(both[0]) + 1 :]
    assert any(short[0] not in line and short[1] in line for line in after), listings
    assert any(short[2] in line for line in after), listings
    assert any(line.startswith("GET ") and "-> hello from" in line for line in lines)
    assert sorted(line.split()[1] for line in lines if line.startswith("unregistered")) == sorted(
        registered
    )
