"""
Every provider of a zkreg interface provides it fully (zope's verifyObject), so a
method the interface promises cannot be missing from one implementation.
"""

from __future__ import annotations

from twisted.internet import task
from zope.interface.verify import verifyObject

from zkreg.config import ServerConfig
from zkreg.data.replica import ReplicaFeeder
from zkreg.data.tree import DataTree
from zkreg.interfaces import ICommitListener, IDataLink, IDurableLog, IReadView
from zkreg.persistence.durable import ForkSnapshotter
from zkreg.persistence.memlog import ManualLog, MemoryLog
from zkreg.session.assembly import build_standalone


def test_memory_logs_are_durable_logs():
    assert verifyObject(IDurableLog, MemoryLog())
    assert verifyObject(IDurableLog, ManualLog())


def test_tree_is_a_read_view():
    assert verifyObject(IReadView, DataTree())


def test_commit_listeners(tmp_path):
    tree = DataTree()
    assert verifyObject(ICommitListener, ReplicaFeeder(tree))
    assert verifyObject(ICommitListener, ForkSnapshotter(str(tmp_path), tree, None))
    _, factory = build_standalone(ServerConfig(), clock=task.Clock())
    assert verifyObject(ICommitListener, factory)


def test_standalone_link_and_view():
    _, factory = build_standalone(ServerConfig(), clock=task.Clock())
    assert verifyObject(IDataLink, factory.link)
    assert verifyObject(IReadView, factory.link.read_view())
