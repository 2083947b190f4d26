"""
Free loopback ports for servers started by tests: curatorish.zkreg_launch's L{free_port}
(a port free on 127.0.0.1 right now; released before returning, so another process
could take it, and a server that then fails to bind reports it in its log).
"""

from __future__ import annotations

from curatorish.zkreg_launch import free_port

__all__ = ["free_port"]
