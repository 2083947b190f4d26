"""
The zkreg configuration file: C{key = value} lines, C{#} comments.

A deliberately small format: one C{key = value} per line, C{#} starting a comment
(a whole line, or after the value following a space), a key at most once (the shape of ZooKeeper's C{zoo.cfg}, with key names
mirroring the command-line flags: C{--tick-time} is C{tick_time}), so an operator can
read it without documentation and L{zkreg.tap} can merge it under the command line.
Parsing is separate from validation: this module only turns text into strings by key,
and reports where a line is malformed; L{zkreg.tap.Options} coerces and checks values
exactly as it does for flags, so both sources produce the same error messages.
"""

from __future__ import annotations

import os
import re

#: A comment after a value: a "#" following whitespace ("tick_time = 2000  # ms").
_INLINE_COMMENT = re.compile(r"\s#.*$")


class ConfigFileError(ValueError):
    """
    The configuration file cannot be read or a line of it is malformed.
    """


def parse_config_text(text: str, source: str = "<config>") -> dict[str, str]:
    """
    Parse the text of a configuration file.

    @param text: the file's content.
    @param source: the file name, for error messages.
    @return: the values by key, as stripped strings, inline comments removed.
    @raise ConfigFileError: for a line without C{=} or with an empty key, and for a key
        given twice (naming both lines: which one was meant is the operator's call).
    """
    values: dict[str, str] = {}
    line_of: dict[str, int] = {}
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = _INLINE_COMMENT.sub("", raw_line).strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        key = key.strip().replace("-", "_")
        if not separator or not key:
            raise ConfigFileError(
                f"{source}, line {line_number}: expected 'key = value', got {raw_line!r}"
            )
        if key in line_of:
            raise ConfigFileError(
                f"{source}: {key} is set twice, on line {line_of[key]} and line "
                f"{line_number}; keep one"
            )
        line_of[key] = line_number
        values[key] = value.strip()
    return values


def load_config_file(path: str) -> dict[str, str]:
    """
    Read and parse a configuration file.

    @param path: the file to read.
    @return: see L{parse_config_text}.
    @raise ConfigFileError: when the file cannot be read or is malformed.
    """
    try:
        with open(path, encoding="utf-8") as config_file:
            text = config_file.read()
    except OSError as error:
        raise ConfigFileError(
            f"cannot read config file {path}: {os.strerror(error.errno or 0)}"
        ) from error
    return parse_config_text(text, path)


def parse_bool(value: str) -> bool:
    """
    Read a boolean setting the way operators write them.

    @param value: C{true/false}, C{yes/no}, C{on/off} or C{1/0}, any case.
    @raise ValueError: for anything else.
    """
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")
