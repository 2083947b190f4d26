"""
The result table of the benchmark commands: one L{Row} per figure, each server's
median over repetitions, the zkreg/ZooKeeper ratio and the CPU use of both sides.

Separate from L{bench.run} because other commands (L{bench.liveness},
L{bench.etcd_tier}) print their figures in the same table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class Row:
    """
    One line of the result table.

    @ivar label: what is measured, with its unit.
    @ivar higher_is_better: whether a larger figure is the better one.
    @ivar figures: server name -> the figure of each repetition (the median is shown).
    @ivar cpu: server name -> C{(client %, server %)} over the measured window.
    """

    label: str
    higher_is_better: bool
    figures: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[tuple[float | None, float | None]]] = field(default_factory=dict)

    def figure(self, server: str) -> float | None:
        """@return: the median over repetitions of C{server}'s figure, or None."""
        values = self.figures.get(server)
        return statistics.median(values) if values else None

    def cpu_cell(self, server: str) -> str:
        """@return: median client and server CPU %, as C{"client/server"}."""
        samples = [c for c in self.cpu.get(server, []) if c[0] is not None and c[1] is not None]
        if not samples:
            return "-"
        client = statistics.median(c[0] for c in samples)  # type: ignore[misc]
        srv = statistics.median(c[1] for c in samples)  # type: ignore[misc]
        return f"{client:.0f}/{srv:.0f}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def render(rows: dict[str, Row], servers: list[str]) -> str:
    """
    @return: the table: workload, each server's figure, zkreg/ZooKeeper, and the
        client/server CPU use (100% = one core) during each measurement.
    """
    header = ["workload", *servers]
    if servers == ["zookeeper", "zkreg"]:
        header.append("zkreg/ZK")
    header += [f"cpu% cli/srv {name}" for name in servers]
    lines = [header]
    for row in rows.values():
        cells = [row.label] + [_fmt(row.figure(name)) for name in servers]
        if servers == ["zookeeper", "zkreg"]:
            zk, ours = row.figure("zookeeper"), row.figure("zkreg")
            cells.append(f"{ours / zk:.2f}" if zk and ours is not None else "-")
        cells += [row.cpu_cell(name) for name in servers]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for index, line in enumerate(lines):
        out.append(
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(line)
            )
        )
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
