"""
ServiceInstance, UriSpec and JsonInstanceSerializer without a server: Curator's
template rules, and the exact bytes curator-x-discovery 5.4 writes (fixtures recorded
from Curator 5.4's JsonInstanceSerializer, Debian's jar, Jackson 2.14).
"""

from __future__ import annotations

import pytest

from curatorish.discovery import (
    JsonInstanceSerializer,
    ServiceInstance,
    ServiceType,
    UriSpec,
    UriSpecPart,
)

#: Curator 5.4, new JsonInstanceSerializer<>(Map.class) (compatible mode: no "enabled"),
#: of ServiceInstance("web", "id-1", "10.0.0.1", 8080, 8443, {zone, weight, nested},
#: 1700000000000L, DYNAMIC, new UriSpec("{scheme}://{address}:{port}/x{[}y{]}{missing}")).
CURATOR_MAP_PAYLOAD = (
    b'{"name":"web","id":"id-1","address":"10.0.0.1","port":8080,"sslPort":8443,'
    b'"payload":{"@class":"java.util.LinkedHashMap","zone":"eu-1","weight":3,'
    b'"nested":{"x":[1,2]}},"registrationTimeUTC":1700000000000,"serviceType":"DYNAMIC",'
    b'"uriSpec":{"parts":[{"value":"scheme","variable":true},{"value":"://","variable":false},'
    b'{"value":"address","variable":true},{"value":":","variable":false},'
    b'{"value":"port","variable":true},{"value":"/x","variable":false},'
    b'{"value":"[","variable":true},{"value":"y","variable":false},'
    b'{"value":"]","variable":true},{"value":"missing","variable":true}]}}'
)
#: ... its buildUriSpec().
CURATOR_MAP_PAYLOAD_URI = "https://10.0.0.1:8080/x{y}"
#: String payload, no address/ports/uriSpec, STATIC.
CURATOR_STRING_PAYLOAD = (
    b'{"name":"web","id":"id-2","address":null,"port":null,"sslPort":null,"payload":"hello",'
    b'"registrationTimeUTC":5,"serviceType":"STATIC","uriSpec":null}'
)
#: new JsonInstanceSerializer<>(Map.class, false): "enabled" written.
CURATOR_WITH_ENABLED = (
    b'{"name":"web","id":"id-1","address":"10.0.0.1","port":8080,"sslPort":null,'
    b'"payload":null,"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null,'
    b'"enabled":false}'
)
#: Non-ASCII, quotes, a newline; a Java immutable map's class tag.
CURATOR_ESCAPES = (
    '{"name":"wéb/\\n\\"x","id":"i","address":null,"port":null,"sslPort":null,'
    '"payload":{"@class":"java.util.ImmutableCollections$MapN","d":1.5,"u":"☃"},'
    '"registrationTimeUTC":1,"serviceType":"DYNAMIC","uriSpec":null}'
).encode()


def test_bytes_equal_curators_for_a_map_payload() -> None:
    instance = ServiceInstance(
        "web",
        "id-1",
        "10.0.0.1",
        8080,
        8443,
        {"zone": "eu-1", "weight": 3, "nested": {"x": [1, 2]}},
        1700000000000,
        ServiceType.DYNAMIC,
        UriSpec("{scheme}://{address}:{port}/x{[}y{]}{missing}"),
    )
    assert JsonInstanceSerializer().serialize(instance) == CURATOR_MAP_PAYLOAD
    assert instance.build_uri_spec() == CURATOR_MAP_PAYLOAD_URI
    assert JsonInstanceSerializer().deserialize(CURATOR_MAP_PAYLOAD) == instance


def test_bytes_equal_curators_for_a_string_payload_and_nulls() -> None:
    instance = ServiceInstance(
        "web", "id-2", payload="hello", registration_time_utc=5, service_type=ServiceType.STATIC
    )
    assert JsonInstanceSerializer().serialize(instance) == CURATOR_STRING_PAYLOAD
    assert JsonInstanceSerializer().deserialize(CURATOR_STRING_PAYLOAD) == instance
    assert instance.build_uri_spec() == ""


def test_enabled_is_written_only_out_of_compatible_mode() -> None:
    instance = ServiceInstance(
        "web", "id-1", "10.0.0.1", 8080, registration_time_utc=1, enabled=False
    )
    serializer = JsonInstanceSerializer(compatible_serialization_mode=False)
    assert serializer.serialize(instance) == CURATOR_WITH_ENABLED
    assert JsonInstanceSerializer().deserialize(CURATOR_WITH_ENABLED).enabled is False
    # Compatible mode (Curator 5.4's default) leaves it out; missing reads as enabled.
    assert b"enabled" not in JsonInstanceSerializer().serialize(instance)
    assert JsonInstanceSerializer().deserialize(CURATOR_STRING_PAYLOAD).enabled is True


def test_escapes_and_class_tags_read_and_written_as_jackson() -> None:
    read = JsonInstanceSerializer().deserialize(CURATOR_ESCAPES)
    assert read.name == 'wéb/\n"x'
    assert read.payload == {"d": 1.5, "u": "☃"}
    rewritten = JsonInstanceSerializer().serialize(read)
    assert rewritten == CURATOR_ESCAPES.replace(
        b"java.util.ImmutableCollections$MapN", b"java.util.LinkedHashMap"
    )
    control = ServiceInstance("a\x01b\tc", "i", registration_time_utc=1)
    assert b'"a\\u0001b\\tc"' in JsonInstanceSerializer().serialize(control)


def test_unknown_fields_are_ignored_and_lists_untagged() -> None:
    data = (
        b'{"name":"n","id":"i","payload":["java.util.ArrayList",[1,"two"]],'
        b'"registrationTimeUTC":7,"serviceType":"PERMANENT","future":{"x":1}}'
    )
    instance = JsonInstanceSerializer().deserialize(data)
    assert instance.payload == [1, "two"]
    assert instance.service_type is ServiceType.PERMANENT
    assert b'"payload":["java.util.ArrayList",[1,"two"]]' in JsonInstanceSerializer().serialize(
        instance
    )
    with pytest.raises(ValueError):
        JsonInstanceSerializer().deserialize(b"[1]")


def test_uri_spec_rules() -> None:
    instance = ServiceInstance(
        "svc", "abc", "host", 80, registration_time_utc=42, service_type=ServiceType.DYNAMIC
    )
    spec = UriSpec(
        "{scheme}://{address}:{ssl-port}/{name}/{id}/{registration-time-utc}/{service-type}"
    )
    assert spec.build(instance) == "http://host:/svc/abc/42/dynamic"
    assert (
        spec.build(instance, {"scheme": "grpc", "ssl-port": 9})
        == "grpc://host:9/svc/abc/42/dynamic"
    )
    assert UriSpec("{ scheme }").parts == [UriSpecPart("scheme", True)]
    assert UriSpec("{}x").parts == [UriSpecPart("x", False)]
    assert UriSpec("{optional}/path").build() == "/path"
    for bad in ("{a{b}}", "a}", "{open"):
        with pytest.raises(ValueError):
            UriSpec(bad)


def test_defaults_as_curators_builder() -> None:
    first, second = ServiceInstance("s"), ServiceInstance("s")
    assert first.id != second.id and len(first.id) == 36
    assert first.registration_time_utc > 1_600_000_000_000
    assert first.service_type is ServiceType.DYNAMIC and first.enabled
    assert ServiceInstance("s", uri_spec="{scheme}://x").uri_spec == UriSpec("{scheme}://x")
