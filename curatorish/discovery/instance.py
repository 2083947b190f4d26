"""
A registered service instance and its URI template: Curator's C{ServiceInstance},
C{ServiceType} and C{UriSpec}, with the same fields and the same template rules.
"""

from __future__ import annotations

import enum
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


class ServiceType(enum.Enum):
    """
    Curator's C{ServiceType}: how an instance's node lives.  C{DYNAMIC} is ephemeral
    (gone with the registering session); C{DYNAMIC_SEQUENTIAL} ephemeral with a
    sequence suffix on its node name; C{STATIC} and C{PERMANENT} persistent.
    """

    DYNAMIC = "DYNAMIC"
    STATIC = "STATIC"
    PERMANENT = "PERMANENT"
    DYNAMIC_SEQUENTIAL = "DYNAMIC_SEQUENTIAL"

    @property
    def is_dynamic(self) -> bool:
        return self in (ServiceType.DYNAMIC, ServiceType.DYNAMIC_SEQUENTIAL)


@dataclass(frozen=True)
class UriSpecPart:
    """One token of a L{UriSpec}: literal text, or the name of a variable."""

    value: str
    variable: bool


# Curator's predefined variables.
FIELD_SCHEME = "scheme"
FIELD_NAME = "name"
FIELD_ID = "id"
FIELD_ADDRESS = "address"
FIELD_PORT = "port"
FIELD_SSL_PORT = "ssl-port"
FIELD_REGISTRATION_TIME_UTC = "registration-time-utc"
FIELD_SERVICE_TYPE = "service-type"
FIELD_OPEN_BRACE = "["
FIELD_CLOSE_BRACE = "]"


class UriSpec:
    """
    Curator's C{UriSpec}: a template such as C{"{scheme}://{address}:{port}/api"}.

    Rules, as Curator's: C{{name}} is a variable (blanks around the name are
    trimmed); a variable with no value is left out (so a template's parts are
    optional); C{{[}} and C{{]}} give literal braces; C{scheme} is C{http}, or
    C{https} when the instance has an SSL port; variables given to L{build} override
    the instance's.  Braces that do not pair raise L{ValueError}.
    """

    def __init__(self, template: str | None = None, parts: list[UriSpecPart] | None = None) -> None:
        self.parts: list[UriSpecPart] = list(parts or [])
        if template is not None:
            self.parts.extend(_parse(template))

    def build(
        self, instance: ServiceInstance | None = None, variables: Mapping[str, Any] | None = None
    ) -> str:
        values: dict[str, Any] = {
            FIELD_OPEN_BRACE: "{",
            FIELD_CLOSE_BRACE: "}",
            FIELD_SCHEME: "http",
        }
        if instance is not None:
            values.update(
                {
                    FIELD_NAME: _text(instance.name),
                    FIELD_ID: _text(instance.id),
                    FIELD_ADDRESS: _text(instance.address),
                    FIELD_PORT: _text(instance.port),
                    FIELD_SSL_PORT: _text(instance.ssl_port),
                    FIELD_REGISTRATION_TIME_UTC: _text(instance.registration_time_utc),
                    FIELD_SERVICE_TYPE: instance.service_type.value.lower()
                    if instance.service_type is not None
                    else "",
                }
            )
            if instance.ssl_port is not None:
                values[FIELD_SCHEME] = "https"
        values.update(variables or {})
        out = []
        for part in self.parts:
            if not part.variable:
                out.append(part.value)
            elif values.get(part.value) is not None:
                out.append(_text(values[part.value]))
        return "".join(out)

    def __iter__(self) -> Iterator[UriSpecPart]:
        return iter(self.parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UriSpec) and self.parts == other.parts

    def __hash__(self) -> int:
        return hash(tuple(self.parts))

    def __repr__(self) -> str:
        return f"UriSpec(parts={self.parts!r})"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse(template: str) -> list[UriSpecPart]:
    """Split as Java's C{StringTokenizer(template, "{}", true)}: no empty tokens."""
    parts = []
    inside = False
    for token in re.split(r"([{}])", template):
        if not token:
            continue
        if token == "{":
            if inside:
                raise ValueError("{ is not allowed inside of a variable specification")
            inside = True
        elif token == "}":
            if not inside:
                raise ValueError("} must be preceded by {")
            inside = False
        else:
            parts.append(UriSpecPart(token.strip() if inside else token, inside))
    if inside:
        raise ValueError("Final variable not closed - expected }")
    return parts


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ServiceInstance:
    """
    Curator's C{ServiceInstance}: one instance of the service C{name}, stored at
    C{base_path/name/id}.  C{id} defaults to a random UUID and
    C{registration_time_utc} (milliseconds) to now, as Curator's builder does.

    @ivar payload: any JSON value; a dict is exchanged with Java as a map.
    """

    name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    address: str | None = None
    port: int | None = None
    ssl_port: int | None = None
    payload: Any = None
    registration_time_utc: int = field(default_factory=_now_ms)
    service_type: ServiceType = ServiceType.DYNAMIC
    uri_spec: UriSpec | None = None
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.name is None:
            raise ValueError("name cannot be null")
        if self.id is None:
            self.id = str(uuid.uuid4())
        if self.registration_time_utc is None:
            self.registration_time_utc = _now_ms()
        self.service_type = ServiceType(self.service_type)
        if isinstance(self.uri_spec, str):
            self.uri_spec = UriSpec(self.uri_spec)

    def build_uri_spec(self, variables: Mapping[str, Any] | None = None) -> str:
        """@return: the URI from L{uri_spec} (C{""} without one)."""
        return self.uri_spec.build(self, variables) if self.uri_spec is not None else ""


__all__ = ["ServiceInstance", "ServiceType", "UriSpec", "UriSpecPart"]
