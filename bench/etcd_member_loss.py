"""
How long writes pause when one etcd member of three is killed (kill -9) under load.

Three etcd members, two data servers on them (one active, one standby), one session
server following etcd, one kazoo client creating sequential nodes back to back.  Each
round kills one member chosen to cover the four cases that behave differently:

  - a follower the active data server does not talk to;
  - the follower it talks to (its HTTP requests there fail: the next member must be
    tried at once);
  - the etcd (Raft) leader, talked to or not: etcd elects another leader first
    (about one election timeout, 1 s by default) and requests in flight to the dead
    leader are lost;

then measures the longest gap between two acknowledged writes from the kill until
C{--after} writes later, whether the data tier failed over (a write of a new epoch),
restarts the member and waits until writes flow again.  At the end every
acknowledged write is checked to be there exactly once.

Usage::

    python -m bench.etcd_member_loss [--rounds N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import Any

from tests.integration.test_etcd_faults import PREFIX, longest_gap
from tests.integration.test_etcd_tier import check_exactly_once, connect
from tests.support.etcd import EtcdMember
from tests.support.etcd_tier import EtcdTier
from tests.support.waiting import wait_until
from tests.support.writers import Writer

CASES = ("follower, not used", "follower, used", "leader, not used", "leader, used")


def classify(cluster: EtcdTier, member: EtcdMember) -> str:
    """@return: which of L{CASES} killing C{member} now is."""
    active = cluster.active()
    used = active is not None and (active.state() or {}).get("etcd_endpoint") == member.url
    leader = cluster.etcd.raft_leader() is member
    return f"{'leader' if leader else 'follower'}, {'used' if used else 'not used'}"


def pick(cluster: EtcdTier, wanted: str) -> EtcdMember | None:
    """@return: a member whose kill now is case C{wanted}, or L{None}."""
    for member in cluster.etcd.members:
        if classify(cluster, member) == wanted:
            return member
    return None


def one_round(cluster: EtcdTier, writer: Writer, member: EtcdMember, after: int) -> dict[str, Any]:
    case = classify(cluster, member)
    takeovers_before = sum((server.state() or {}).get("takeovers", 0) for server in cluster.data)
    epoch_before = writer.epochs[-1]
    # the gap before the kill counts too: the write in flight when the member dies
    since = writer.acked_at[-1]
    killed_at = time.monotonic()
    member.kill()
    count = len(writer.acked)
    wait_until(
        lambda: len(writer.acked) >= count + after or writer.errors,
        timeout=120,
        message=f"{after} writes after the kill",
    )
    assert not writer.errors, writer.errors
    longest = longest_gap(list(writer.acked_at), since, after)
    epochs = set(writer.epochs[count:])
    takeovers = sum((server.state() or {}).get("takeovers", 0) for server in cluster.data)
    cluster.etcd.restart(member)
    # settle: the restarted member caught up, a Raft leader, writes flowing
    wait_until(cluster.etcd.raft_leader, timeout=60, message="a leader")
    count = len(writer.acked)
    wait_until(lambda: len(writer.acked) >= count + 50, timeout=60, message="writes again")
    return {
        "case": case,
        "member": member.name,
        "longest_pause_s": round(longest, 3),
        "kill_to_first_write_s": round(
            next((t for t in writer.acked_at if t > killed_at), killed_at) - killed_at, 3
        ),
        "failover": takeovers != takeovers_before or epochs != {epoch_before},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="rounds per case (default 2)")
    parser.add_argument("--after", type=int, default=20, help="writes measured after a kill")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--cases", default=",".join(CASES), help="which cases, separated by ';' or ','"
    )
    parser.add_argument("--keep-logs", help="copy the data servers' logs to this directory")
    options = parser.parse_args(argv)
    cases = [case for case in CASES if case in options.cases]
    cluster = EtcdTier(3, PREFIX, data_tier_timeout_ms=60000)
    results: list[dict[str, Any]] = []
    try:
        cluster.start()
        assert cluster.session is not None
        kazoo = connect(cluster.session)
        try:
            kazoo.create("/member-loss-bench")
            writer = Writer(kazoo, "/member-loss-bench")
            writer.start()
            wait_until(lambda: len(writer.acked) >= 100, timeout=60, message="writes")
            for _ in range(options.rounds):
                for wanted in cases:
                    member = None
                    deadline = time.monotonic() + 20
                    while member is None and time.monotonic() < deadline:
                        member = pick(cluster, wanted)
                        if member is None:
                            # the data server talks to the member that answered last:
                            # wait for the cluster to offer the case (or skip it)
                            time.sleep(0.5)
                    if member is None:
                        print(f"{wanted}: not reachable now, skipped", file=sys.stderr)
                        continue
                    result = one_round(cluster, writer, member, options.after)
                    results.append(result)
                    print(json.dumps(result), file=sys.stderr, flush=True)
            writer.stop()
            check_exactly_once(kazoo, "/member-loss-bench", writer.acked)
            print(f"{len(writer.acked)} acknowledged writes, each there exactly once")
        finally:
            kazoo.stop()
            kazoo.close()
    finally:
        if options.keep_logs:
            os.makedirs(options.keep_logs, exist_ok=True)
            for index, server in enumerate([*cluster.data, cluster.session]):
                if server is not None and server.log_path.exists():
                    target = os.path.join(options.keep_logs, f"{server.name}-{index}.log")
                    shutil.copyfile(server.log_path, target)
        cluster.stop()
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<22} {'rounds':>6} {'longest pause s':>16} {'failovers':>10}")
    for case in CASES:
        rows = [row for row in results if row["case"] == case]
        if rows:
            pauses = ", ".join(f"{row['longest_pause_s']:.2f}" for row in rows)
            failovers = sum(row["failover"] for row in rows)
            print(f"{case:<22} {len(rows):>6} {pauses:>16} {failovers:>10}")
    if options.json:
        with open(options.json, "w") as output:
            json.dump(results, output, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
