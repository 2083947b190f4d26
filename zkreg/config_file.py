"""
The zkreg configuration file: C{key = value} lines, C{#} comments.

A deliberately small format (the shape of ZooKeeper's C{zoo.cfg}, with key names
mirroring the command-line flags: C{--tick-time} is C{tick_time}), so an operator can
read it without documentation and L{zkreg.tap} can merge it under the command line.
Parsing is separate from validation: this module only turns text into strings by key,
and reports where a line is malformed; L{zkreg.tap.Options} coerces and checks values
exactly as it does for flags, so both sources produce the same error messages.
"""

from __future__ import annotations

import os


class ConfigFileError(ValueError):
    """
    The configuration file cannot be read or a line of it is malformed.
    """


def parse_config_text(text: str, source: str = "<config>") -> dict[str, str]:
    """
    Parse the text of a configuration file.

    @param text: the file's content.
    @param source: the file name, for error messages.
    @return: the values by key, as stripped strings; a key given twice keeps the last.
    @raise ConfigFileError: for a line without C{=} or with an empty key.
    """
    values: dict[str, str] = {}
    for line_number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        key = key.strip().replace("-", "_")
        if not separator or not key:
            raise ConfigFileError(
                f"{source}, line {line_number}: expected 'key = value', got {raw_line!r}"
            )
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
