"""
Interop with Apache Curator 5.4's curator-x-discovery (tests/java/DiscoveryInterop.java),
against zkreg: an instance registered by either side is read by the other with every
field equal (the payload as a map, the built URI), and each side's ServiceCache sees the
other's registration and unregistration.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from curatorish.discovery import ServiceDiscovery, ServiceInstance, ServiceType, UriSpec
from tests.support.waiting import wait_until


def _hex(text: str | None) -> str:
    return "-" if text is None else text.encode().hex()


def _fields(instance: ServiceInstance) -> dict[str, Any]:
    """Every field, in the shape DiscoveryInterop's "get" prints."""
    return {
        "name": instance.name,
        "id": instance.id,
        "address": instance.address,
        "port": instance.port,
        "sslPort": instance.ssl_port,
        "payload": instance.payload,
        "registrationTimeUTC": instance.registration_time_utc,
        "serviceType": instance.service_type.value,
        "enabled": instance.enabled,
        "uri": instance.build_uri_spec(),
    }


def _java_cached(java: Any, name: str) -> list[str]:
    line = java.request(f"cached {_hex(name)}", "IDS")
    return [each for each in line[len("IDS") :].strip().split(",") if each]


PAYLOAD = {"zone": "eu-1", "weight": 3, "tags": ["a", "b"], "limits": {"rps": 2.5}, "ok": True}


def test_java_registration_read_by_curatorish(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    base = f"/interop-{uuid.uuid4().hex[:8]}"
    client = make_client(curatorish_zkreg.hosts)
    discovery = ServiceDiscovery(client, base)
    discovery.start()
    cache = discovery.service_cache("pay")
    cache.start()
    with java_program("DiscoveryInterop").start(curatorish_zkreg.hosts, base) as java:
        java.expect("READY", timeout=60)
        spec = "{scheme}://{address}:{ssl-port}/v1/{name}/{id}{optional}"
        words = [
            _hex("pay"),
            _hex("java-1"),
            _hex("10.1.2.3"),
            "8080",
            "8443",
            "DYNAMIC",
            _hex(spec),
            _hex(json.dumps(PAYLOAD)),
            "1700000000123",
        ]
        assert java.request("register " + " ".join(words), "REGISTERED") == "REGISTERED"
        found = discovery.query_for_instance("pay", "java-1")
        assert found is not None
        java_view = json.loads(java.request(f"get {_hex('pay')} {_hex('java-1')}", "INSTANCE")[9:])
        assert _fields(found) == java_view
        assert found.payload == PAYLOAD
        assert found.build_uri_spec() == "https://10.1.2.3:8443/v1/pay/java-1"
        assert found.uri_spec == UriSpec(spec)
        wait_until(lambda: [i.id for i in cache.get_instances()] == ["java-1"])

        java.request(f"unregister {_hex('pay')} {_hex('java-1')}", "UNREGISTERED")
        wait_until(lambda: cache.get_instances() == [], message="the Java unregistration")
        assert discovery.query_for_instance("pay", "java-1") is None
        java.request("quit", "BYE")
    discovery.close()


def test_curatorish_registration_read_by_curator(
    curatorish_zkreg: Any, make_client: Any, java_program: Any
) -> None:
    base = f"/interop-{uuid.uuid4().hex[:8]}"
    client = make_client(curatorish_zkreg.hosts)
    discovery = ServiceDiscovery(client, base)
    discovery.start()
    instances = [
        ServiceInstance(
            "orders",
            "py-1",
            "192.168.0.7",
            9000,
            None,
            PAYLOAD,
            1700000000999,
            ServiceType.DYNAMIC,
            UriSpec("{scheme}://{address}:{port}{[}x{]}"),
        ),
        ServiceInstance("orders", "py-2", service_type=ServiceType.STATIC, payload=None),
    ]
    with java_program("DiscoveryInterop").start(curatorish_zkreg.hosts, base) as java:
        java.expect("READY", timeout=60)
        java.request(f"cache {_hex('orders')}", "CACHING")
        for instance in instances:
            discovery.register_service(instance)
            line = java.request(f"get {_hex('orders')} {_hex(instance.id)}", "INSTANCE")
            assert json.loads(line[9:]) == _fields(instance)
        assert _fields(instances[0])["uri"] == "http://192.168.0.7:9000{x}"
        wait_until(lambda: _java_cached(java, "orders") == ["py-1", "py-2"])

        discovery.unregister_service(instances[0])
        wait_until(lambda: _java_cached(java, "orders") == ["py-2"], message="seen by Curator")
        assert java.request(f"get {_hex('orders')} {_hex('py-1')}", "INSTANCE") == "INSTANCE null"
        java.request("quit", "BYE")
    discovery.close()
