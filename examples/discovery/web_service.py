"""
A Twisted web service that registers itself for discovery.

    python examples/discovery/web_service.py --zk 127.0.0.1:2181 [--name hello] [--port 0]

It listens on 127.0.0.1 (a free port by default), answers every GET with its own
instance id, and registers as an instance of the service C{name} under C{/services}
(curator-x-discovery's layout and JSON, so a Java client finds it too).  The
registration is ephemeral: it goes when the process goes, and comes back by itself
after a reconnection or a session loss.  It unregisters on SIGTERM / Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys

from twisted.internet import defer, endpoints, task
from twisted.web import resource, server

from curatorish import CuratorFramework, ExponentialBackoffRetry
from curatorish.discovery import ServiceDiscovery, ServiceInstance, UriSpec


class Hello(resource.Resource):
    isLeaf = True

    def __init__(self, instance_id: str) -> None:
        super().__init__()
        self.instance_id = instance_id

    def render_GET(self, request: server.Request) -> bytes:
        return f"hello from {self.instance_id}\n".encode()


async def main(reactor: object, zk: str, name: str, port: int) -> None:
    # A short session: an instance that dies without unregistering (kill -9, a lost
    # machine) leaves the registry within 10 s rather than Curator's default 60 s.
    client = CuratorFramework(
        zk, retry_policy=ExponentialBackoffRetry(1000, 3), session_timeout_ms=10_000
    )
    client.start()
    instance = ServiceInstance(
        name, address="127.0.0.1", uri_spec=UriSpec("{scheme}://{address}:{port}/")
    )
    endpoint = endpoints.TCP4ServerEndpoint(reactor, port, interface="127.0.0.1")
    listening = await endpoint.listen(server.Site(Hello(instance.id)))
    instance.port = listening.getHost().port
    discovery = ServiceDiscovery(client, "/services", this_instance=instance)
    await discovery.start()
    print(f"registered {name} {instance.id} at {instance.build_uri_spec()}", flush=True)

    stopped: defer.Deferred[None] = defer.Deferred()

    async def shutdown() -> None:
        await discovery.close()
        await client.close()
        print(f"unregistered {instance.id}", flush=True)
        stopped.callback(None)

    reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
        "before", "shutdown", lambda: defer.ensureDeferred(shutdown())
    )
    await stopped


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A web service that registers itself.")
    parser.add_argument("--zk", default="127.0.0.1:2181", help="ZooKeeper-compatible server")
    parser.add_argument("--name", default="hello", help="the service name")
    parser.add_argument("--port", type=int, default=0, help="listening port (0: any free one)")
    options = parser.parse_args(argv)
    task.react(
        lambda reactor: defer.ensureDeferred(main(reactor, options.zk, options.name, options.port))
    )


if __name__ == "__main__":
    run(sys.argv[1:])
