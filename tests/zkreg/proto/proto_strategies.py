"""
Hypothesis strategies for jute values and records, derived from the field
declarations so that every record class gets one without being listed.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from zkreg.proto.jute import (
    BOOLEAN,
    BUFFER,
    INT,
    LONG,
    USTRING,
    OptionalType,
    VectorType,
)

INT_VALUES = st.integers(min_value=-(2**31), max_value=2**31 - 1)
LONG_VALUES = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Surrogates cannot be UTF-8 encoded; jute strings never hold them.
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


def values_of(jtype: Any) -> st.SearchStrategy[Any]:
    """@return: a strategy for any value a field of C{jtype} can hold (None included)."""
    if jtype is INT:
        return INT_VALUES
    if jtype is LONG:
        return LONG_VALUES
    if jtype is BOOLEAN:
        return st.booleans()
    if jtype is BUFFER:
        return st.none() | st.binary(max_size=12)
    if jtype is USTRING:
        return st.none() | TEXT
    if isinstance(jtype, OptionalType):
        return st.none() | values_of(jtype.inner)
    if isinstance(jtype, VectorType):
        return st.none() | st.lists(values_of(jtype.element), max_size=3)
    return records_of(jtype)


def records_of(record_class: Any) -> st.SearchStrategy[Any]:
    """@return: a strategy for instances of C{record_class} with arbitrary fields."""
    return st.builds(
        record_class, **{name: values_of(ftype) for name, ftype in record_class.fields}
    )


def sample_value(jtype: Any, seed: int = 0) -> Any:
    """
    A fixed, non-trivial value of C{jtype} (no None, no empty), for table-driven tests.
    """
    if jtype is INT:
        return -7 - seed
    if jtype is LONG:
        return (1 << 40) + seed
    if jtype is BOOLEAN:
        return True
    if jtype is BUFFER:
        return bytes([0, 255, seed & 0xFF])
    if jtype is USTRING:
        return f"/p\u00e9/{seed}"
    if isinstance(jtype, OptionalType):
        return sample_value(jtype.inner, seed)
    if isinstance(jtype, VectorType):
        return [sample_value(jtype.element, seed), sample_value(jtype.element, seed + 1)]
    return jtype(
        *[sample_value(ftype, seed + index) for index, (_, ftype) in enumerate(jtype.fields)]
    )
