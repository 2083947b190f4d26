"""
Curator's C{JsonInstanceSerializer}, byte for byte: the JSON that curator-x-discovery
5.4 (Jackson) writes for a C{ServiceInstance}, so Java and Python services share one
registry.

What Jackson writes, and so what this writes: compact JSON, fields in the order
C{name, id, address, port, sslPort, payload, registrationTimeUTC, serviceType,
uriSpec} (then C{enabled}, only when not in compatible mode), nulls written out,
UTF-8 text unescaped except C{"}, C{\\} and control characters.  The payload carries
Jackson's class tag: a map is written C{{"@class":"java.util.LinkedHashMap", ...}}, a
list C{["java.util.ArrayList", [...]]}; strings, numbers and booleans bare.  Reading
removes the tags, and ignores unknown fields (as Curator's reader does).

Curator 5.4's C{new JsonInstanceSerializer<>(Payload.class)} is in I{compatible
serialization mode} (CURATOR-275): it does not write C{enabled}, and a reader takes a
missing C{enabled} as true.  This serializer's default is the same; pass
C{compatible_serialization_mode=False} to write C{enabled} (as Curator's two-argument
constructor with C{false} does).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from curatorish.discovery.instance import ServiceInstance, ServiceType, UriSpec, UriSpecPart

#: The Java class Jackson names for a map / list payload written by curatorish.
MAP_CLASS = "java.util.LinkedHashMap"
LIST_CLASS = "java.util.ArrayList"

_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
}


class InstanceSerializer(Protocol):
    """Curator's C{InstanceSerializer}: instances to node data and back."""

    def serialize(self, instance: ServiceInstance) -> bytes: ...

    def deserialize(self, data: bytes) -> ServiceInstance: ...


class JsonInstanceSerializer:
    """Curator's C{JsonInstanceSerializer} (see the module docstring)."""

    def __init__(self, compatible_serialization_mode: bool = True) -> None:
        self.compatible_serialization_mode = compatible_serialization_mode

    def serialize(self, instance: ServiceInstance) -> bytes:
        fields: list[tuple[str, Any]] = [
            ("name", instance.name),
            ("id", instance.id),
            ("address", instance.address),
            ("port", instance.port),
            ("sslPort", instance.ssl_port),
            ("payload", _tagged(instance.payload)),
            ("registrationTimeUTC", instance.registration_time_utc),
            ("serviceType", instance.service_type.value if instance.service_type else None),
            ("uriSpec", _uri_spec_json(instance.uri_spec)),
        ]
        if not self.compatible_serialization_mode:
            fields.append(("enabled", instance.enabled))
        return _encode_object(fields).encode("utf-8")

    def deserialize(self, data: bytes) -> ServiceInstance:
        """
        @raise ValueError: the data is not a JSON object (or lacks C{name}).
        """
        raw = json.loads(data.decode("utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("a service instance is a JSON object")
        uri_spec = raw.get("uriSpec")
        return ServiceInstance(
            name=raw.get("name", ""),
            id=raw.get("id", ""),
            address=raw.get("address"),
            port=raw.get("port"),
            ssl_port=raw.get("sslPort"),
            payload=_untagged(raw.get("payload")),
            registration_time_utc=raw.get("registrationTimeUTC", 0),
            service_type=ServiceType(raw.get("serviceType") or "DYNAMIC"),
            uri_spec=_uri_spec_from_json(uri_spec) if uri_spec is not None else None,
            enabled=bool(raw.get("enabled", True)),
        )


def _tagged(payload: Any) -> Any:
    if isinstance(payload, dict) and "@class" not in payload:
        return {"@class": MAP_CLASS, **payload}
    if isinstance(payload, (list, tuple)):
        return [LIST_CLASS, list(payload)]
    return payload


def _untagged(payload: Any) -> Any:
    if isinstance(payload, dict) and "@class" in payload:
        return {key: value for key, value in payload.items() if key != "@class"}
    if (
        isinstance(payload, list)
        and len(payload) == 2
        and isinstance(payload[0], str)
        and payload[0].startswith("java.")
        and isinstance(payload[1], list)
    ):
        return payload[1]
    return payload


def _uri_spec_json(spec: UriSpec | None) -> Any:
    if spec is None:
        return None
    return {"parts": [{"value": part.value, "variable": part.variable} for part in spec.parts]}


def _uri_spec_from_json(raw: Any) -> UriSpec:
    parts = raw.get("parts") or [] if isinstance(raw, dict) else []
    return UriSpec(
        parts=[
            UriSpecPart(str(part.get("value", "")), bool(part.get("variable"))) for part in parts
        ]
    )


# -- Jackson's JSON -------------------------------------------------------------------


def _encode_object(fields: list[tuple[str, Any]]) -> str:
    return "{" + ",".join(_encode_string(key) + ":" + _encode(value) for key, value in fields) + "}"


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, dict):
        return _encode_object([(str(key), item) for key, item in value.items()])
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _encode_string(text: str) -> str:
    """As Jackson: raw UTF-8; short escapes; other control characters as \\u00XX."""
    out = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


__all__ = ["InstanceSerializer", "JsonInstanceSerializer"]
