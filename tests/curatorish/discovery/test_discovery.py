"""
ServiceDiscovery, ServiceCache and ServiceProvider against ZooKeeper 3.8 and zkreg:
registration modes and layout, queries, re-registration after a reconnect, a session
expiry and a server restart, caches converging under churn with connection cuts, the
strategies and the down-instance policy.
"""

from __future__ import annotations

import random
import threading
import uuid
from typing import Any

from curatorish.discovery import (
    DownInstancePolicy,
    JsonInstanceSerializer,
    RandomStrategy,
    RoundRobinStrategy,
    ServiceCacheListener,
    ServiceDiscovery,
    ServiceInstance,
    ServiceType,
    StickyStrategy,
)
from curatorish.errors import NoNodeError
from curatorish.kill_session import expire_session, session_of
from tests.support.waiting import wait_until


def _base() -> str:
    return f"/services-{uuid.uuid4().hex[:8]}"


def test_register_query_unregister(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    base = _base()
    web = ServiceInstance("web", address="10.0.0.1", port=8080, payload={"zone": "a"})
    discovery = ServiceDiscovery(client, base, this_instance=web)
    discovery.start()
    static = ServiceInstance("db", address="10.0.0.2", port=5432, service_type=ServiceType.STATIC)
    sequential = ServiceInstance("jobs", "worker", service_type=ServiceType.DYNAMIC_SEQUENTIAL)
    discovery.register_service(static)
    discovery.register_service(sequential)

    assert discovery.query_for_names() == ["db", "jobs", "web"]
    assert discovery.query_for_instances("web") == [web]
    assert discovery.query_for_instance("db", static.id) == static
    assert discovery.query_for_instance("db", "absent") is None
    assert discovery.query_for_instances("absent") == []
    # The layout and modes: base/name/id; DYNAMIC ephemeral, STATIC persistent.
    data, stat = client.get_data(f"{base}/web/{web.id}")
    assert data == JsonInstanceSerializer().serialize(web)
    assert stat.ephemeralOwner == client.session_id
    assert client.exists(f"{base}/db/{static.id}").ephemeralOwner == 0
    [node] = client.get_children(f"{base}/jobs")
    assert node.startswith("worker") and len(node) == len("worker") + 10
    assert client.exists(f"{base}/jobs/{node}").ephemeralOwner == client.session_id

    moved = ServiceInstance("web", web.id, "10.0.0.9", 9090, registration_time_utc=1)
    discovery.update_service(moved)
    assert discovery.query_for_instance("web", web.id) == moved
    discovery.unregister_service(static)
    assert discovery.query_for_instances("db") == []
    discovery.close()
    # The instances are gone; their parents are containers, which the server may
    # already have reaped once empty (its check runs every 500 ms).
    for name in ("web", "jobs"):
        assert _children(client, f"{base}/{name}") == []


def _children(client: Any, path: str) -> list[str]:
    """@return: the children of C{path}, none when it was reaped meanwhile."""
    try:
        return client.get_children(path)
    except NoNodeError:
        return []


def test_registration_comes_back_after_session_expiry_and_stays_across_cuts(
    server: Any, make_client: Any, proxy: Any
) -> None:
    client = make_client(proxy.hosts, session_timeout_ms=6_000)
    observer = make_client(server.hosts)
    base = _base()
    instance = ServiceInstance("api", address="h", port=1)
    discovery = ServiceDiscovery(client, base, this_instance=instance)
    discovery.start()
    path = f"{base}/api/{instance.id}"
    first = observer.exists(path)
    # A reconnect on the same session leaves the node alone (no blip for subscribers).
    proxy.cut()
    wait_until(lambda: client.state is not None and client.state.value == "RECONNECTED")
    assert observer.exists(path).czxid == first.czxid

    old_session = client.session_id
    expire_session(server.hosts, *session_of(client))
    wait_until(
        lambda: (
            (stat := observer.exists(path)) is not None
            and stat.ephemeralOwner not in (0, old_session)
        ),
        timeout=30,
        message="the instance registered again by the new session",
    )
    assert observer.exists(path).ephemeralOwner == client.session_id
    discovery.close()


def test_registration_survives_a_server_restart(private_server: Any, make_client: Any) -> None:
    hosts = getattr(private_server, "hosts", None) or private_server.connect_string
    client = make_client(hosts, session_timeout_ms=4_000)
    base = _base()
    instance = ServiceInstance("api", port=1)
    discovery = ServiceDiscovery(client, base, this_instance=instance)
    discovery.start()
    private_server.restart()
    observer = make_client(hosts)
    wait_until(
        lambda: observer.exists(f"{base}/api/{instance.id}") is not None,
        timeout=40,
        message="the instance registered after the restart",
    )
    discovery.close()


def _by_id(instance: ServiceInstance) -> str:
    return instance.id


def test_registration_survives_an_outage_longer_than_the_session(
    private_server: Any, make_client: Any
) -> None:
    """The server is down past the session timeout: the client gives the session up
    (LOST), and its new session registers the instance again once the server is back
    (replacing the old session's node if the server still has it)."""
    hosts = getattr(private_server, "hosts", None) or private_server.connect_string
    states: list[str] = []
    client = make_client(hosts, session_timeout_ms=4_000, states=states)
    base = _base()
    instance = ServiceInstance("api", port=1)
    discovery = ServiceDiscovery(client, base, this_instance=instance)
    discovery.start()
    old_session = client.session_id
    private_server.stop()
    wait_until(lambda: "LOST" in states, timeout=30, message="the session given up")
    private_server.start()
    observer = make_client(hosts)
    path = f"{base}/api/{instance.id}"
    wait_until(
        lambda: (
            (stat := observer.exists(path)) is not None
            and stat.ephemeralOwner == client.session_id != old_session
        ),
        timeout=60,
        message="the instance registered by the new session",
    )
    discovery.close()


class _Changes(ServiceCacheListener):
    def __init__(self) -> None:
        self.count = 0
        self.states: list[str] = []

    def cache_changed(self) -> None:
        self.count += 1

    def state_changed(self, client: Any, state: Any) -> None:
        self.states.append(state.value)


def test_service_caches_converge_under_churn_and_cuts(
    server: Any, make_client: Any, proxy: Any
) -> None:
    """Hundreds of instances registered, updated and removed by three processes' worth
    of clients while the subscribers' connection is cut: every cache ends equal."""
    rng = random.Random(10)
    base = _base()
    names = [f"svc{i}" for i in range(4)]
    registrars = [ServiceDiscovery(make_client(server.hosts), base) for _ in range(3)]
    for registrar in registrars:
        registrar.start()
    subscriber = ServiceDiscovery(make_client(proxy.hosts, session_timeout_ms=8_000), base)
    subscriber.start()
    caches = {name: subscriber.service_cache(name) for name in names}
    changes = _Changes()
    for cache in caches.values():
        cache.add_listener(changes)
        cache.start()
    live: dict[str, tuple[ServiceDiscovery, ServiceInstance]] = {}
    for step in range(400):
        roll = rng.random()
        if roll < 0.55 or len(live) < 20:
            registrar = rng.choice(registrars)
            instance = ServiceInstance(rng.choice(names), port=rng.randint(1, 65535))
            registrar.register_service(instance)
            live[instance.id] = (registrar, instance)
        elif roll < 0.8:
            registrar, instance = live[rng.choice(sorted(live))]
            instance = ServiceInstance(
                instance.name, instance.id, port=rng.randint(1, 65535), payload={"step": step}
            )
            registrar.update_service(instance)
            live[instance.id] = (registrar, instance)
        else:
            registrar, instance = live.pop(rng.choice(sorted(live)))
            registrar.unregister_service(instance)
        if step % 100 == 50:
            proxy.cut()
    assert len(live) > 100
    for name, cache in caches.items():
        truth = sorted((i for _, i in live.values() if i.name == name), key=lambda i: i.id)
        wait_until(
            lambda cache=cache, truth=truth: sorted(cache.get_instances(), key=_by_id) == truth,
            timeout=60,
            message=f"the cache of {name}",
        )
        assert subscriber.query_for_instances(name) == sorted(
            truth, key=lambda i: subscriber.path_for_instance(name, i.id)
        )
    assert changes.count > 0 and "RECONNECTED" in changes.states
    for registrar in registrars:
        registrar.close()
    wait_until(lambda: all(cache.get_instances() == [] for cache in caches.values()))
    subscriber.close()


def test_provider_strategies(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    base = _base()
    # Writes "enabled" (Curator 5.4's default serializer leaves it out).
    serializer = JsonInstanceSerializer(compatible_serialization_mode=False)
    discovery = ServiceDiscovery(client, base, serializer=serializer)
    discovery.start()
    instances = [ServiceInstance("web", f"i{n}", port=n) for n in range(3)]
    for instance in instances:
        discovery.register_service(instance)

    round_robin = discovery.service_provider("web", RoundRobinStrategy())
    round_robin.start()
    picked = [round_robin.get_instance().id for _ in range(6)]
    assert picked == ["i0", "i1", "i2", "i0", "i1", "i2"]

    rng = random.Random(3)
    randomly = discovery.service_provider_builder().service_name("web")
    randomly = randomly.provider_strategy(RandomStrategy(rng)).build()
    randomly.start()
    assert {randomly.get_instance().id for _ in range(60)} == {"i0", "i1", "i2"}

    sticky = discovery.service_provider("web", StickyStrategy(RoundRobinStrategy()))
    sticky.start()
    first = sticky.get_instance()
    assert all(sticky.get_instance().id == first.id for _ in range(5))
    discovery.unregister_service(first)
    wait_until(lambda: sticky.get_instance().id != first.id)
    assert sticky.get_instance().id == sticky.get_instance().id

    filtered = (
        discovery.service_provider_builder()
        .service_name("web")
        .additional_filter(lambda instance: instance.port != 2)
        .build()
    )
    filtered.start()
    remaining = {i.id for i in filtered.get_all_instances()}
    assert {filtered.get_instance().id for _ in range(6)} == remaining - {"i2"}
    disabled = ServiceInstance("web", "off", enabled=False)
    discovery.register_service(disabled)
    wait_until(lambda: len(filtered.get_all_instances()) == len(remaining) + 1)
    assert "off" not in {filtered.get_instance().id for _ in range(6)}
    discovery.close()


def test_down_instance_policy(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    discovery = ServiceDiscovery(client, _base())
    discovery.start()
    for n in range(2):
        discovery.register_service(ServiceInstance("web", f"i{n}"))
    now = [100.0]
    from curatorish.discovery import ServiceProvider

    provider = ServiceProvider(
        discovery,
        "web",
        RoundRobinStrategy(),
        down_instance_policy=DownInstancePolicy(timeout_s=30, error_threshold=2),
        clock=lambda: now[0],
    )
    provider.start()
    bad = next(i for i in provider.get_all_instances() if i.id == "i0")
    provider.note_error(bad)
    assert {provider.get_instance().id for _ in range(4)} == {"i0", "i1"}  # one error: up
    provider.note_error(bad)
    assert {provider.get_instance().id for _ in range(4)} == {"i1"}  # threshold: down
    now[0] += 31
    assert {provider.get_instance().id for _ in range(4)} == {"i0", "i1"}  # timed out: up
    provider.note_error(next(i for i in provider.get_all_instances() if i.id == "i1"))
    provider.note_error(next(i for i in provider.get_all_instances() if i.id == "i1"))
    provider.note_error(bad)
    provider.note_error(bad)
    assert provider.get_instance() is None
    discovery.close()


def test_async_face(server: Any, make_client: Any) -> None:
    blocking = make_client(server.hosts)
    base = _base()
    seen = threading.Event()

    async def run(client: Any) -> list[ServiceInstance]:
        discovery = ServiceDiscovery(client, base)
        await discovery.start()
        await discovery.register_service(ServiceInstance("web", "a", port=1))
        cache = discovery.service_cache("web")

        class Listener(ServiceCacheListener):
            def cache_changed(self) -> None:
                seen.set()

        cache.add_listener(Listener())
        await cache.start()
        found = cache.get_instances()
        await discovery.register_service(ServiceInstance("web", "b", port=2))
        await discovery.close()
        return found

    assert [i.id for i in blocking.run(run)] == ["a"]
    assert seen.wait(10)


def test_watch_instances_follows_updates_by_others(server: Any, make_client: Any) -> None:
    client = make_client(server.hosts)
    other = make_client(server.hosts)
    base = _base()
    instance = ServiceInstance("web", "w1", "h", 1)
    discovery = ServiceDiscovery(client, base, this_instance=instance, watch_instances=True)
    discovery.start()
    changed = ServiceInstance("web", "w1", "h", 2, payload={"by": "operator"})
    other.set_data(f"{base}/web/w1", JsonInstanceSerializer().serialize(changed))
    wait_until(lambda: discovery.registered_instances() == [changed])
    discovery.close()
