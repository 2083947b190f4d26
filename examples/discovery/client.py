"""
A client that discovers the web service and follows its instances.

    python examples/discovery/client.py --zk 127.0.0.1:2181 [--name hello] [--seconds 0]

A L{ServiceCache} prints the instances each time the set changes (instances appearing
and going away); every second a L{ServiceProvider} (round robin) picks an instance
and the client GETs it, noting an error on the provider when it does not answer, so
that a dead instance is skipped until the cache drops it.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from twisted.internet import defer, task
from twisted.web.client import Agent, readBody

from curatorish import CuratorFramework, ExponentialBackoffRetry
from curatorish.discovery import (
    RoundRobinStrategy,
    ServiceCacheListener,
    ServiceDiscovery,
)

# Twisted warns about its own Agent's transport here; the body is read all the same.
warnings.filterwarnings("ignore", message="Using readBody with a transport")


class PrintChanges(ServiceCacheListener):
    def __init__(self, cache: object) -> None:
        self.cache = cache

    def cache_changed(self) -> None:
        instances = self.cache.get_instances()  # type: ignore[attr-defined]
        described = ", ".join(f"{i.id[:8]}@{i.port}" for i in instances) or "none"
        print(f"instances now: {described}", flush=True)


async def main(reactor: object, zk: str, name: str, seconds: float) -> None:
    client = CuratorFramework(zk, retry_policy=ExponentialBackoffRetry(1000, 3))
    client.start()
    discovery = ServiceDiscovery(client, "/services")
    await discovery.start()
    cache = discovery.service_cache(name)
    cache.add_listener(PrintChanges(cache))
    await cache.start()
    PrintChanges(cache).cache_changed()
    provider = discovery.service_provider(name, RoundRobinStrategy())
    await provider.start()
    agent = Agent(reactor)
    ticks = 0
    while seconds <= 0 or ticks < seconds:
        instance = provider.get_instance()
        if instance is not None:
            try:
                response = await agent.request(b"GET", instance.build_uri_spec().encode())
                body = (await readBody(response)).decode().strip()
                print(f"GET {instance.build_uri_spec()} -> {body}", flush=True)
            except Exception as error:
                provider.note_error(instance)
                print(f"GET {instance.build_uri_spec()} failed: {type(error).__name__}", flush=True)
        await task.deferLater(reactor, 1.0, lambda: None)
        ticks += 1
    await discovery.close()
    await client.close()


def run(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Discover the web service and call it.")
    parser.add_argument("--zk", default="127.0.0.1:2181", help="ZooKeeper-compatible server")
    parser.add_argument("--name", default="hello", help="the service name")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    options = parser.parse_args(argv)
    task.react(
        lambda reactor: defer.ensureDeferred(
            main(reactor, options.zk, options.name, options.seconds)
        )
    )


if __name__ == "__main__":
    run(sys.argv[1:])
