"""
The jute primitives and the generated record machinery, on small records made here.
"""

from __future__ import annotations

import struct

import pytest

from zkreg.proto.jute import (
    BOOLEAN,
    BUFFER,
    INT,
    LONG,
    OPTIONAL_BOOLEAN,
    USTRING,
    DecodeError,
    Record,
    vector,
)


class Ints(Record):
    fields = (("small", INT), ("big", LONG), ("flag", BOOLEAN))


class Buffers(Record):
    fields = (("blob", BUFFER),)


class Strings(Record):
    fields = (("text", USTRING),)


class Vectors(Record):
    fields = (("names", vector(USTRING)), ("numbers", vector(INT)))


class Inner(Record):
    fields = (("a", INT), ("b", LONG))


class Outer(Record):
    fields = (("head", INT), ("inner", Inner), ("label", USTRING), ("inners", vector(Inner)))


class Tailed(Record):
    fields = (("value", INT), ("maybe", OPTIONAL_BOOLEAN))


class Empty(Record):
    fields = ()


# -- primitives: exact bytes ---------------------------------------------------------


def test_int_long_boolean_are_big_endian_fixed_width() -> None:
    """int is 4 bytes signed BE, long 8, boolean one byte 0/1."""
    record = Ints(small=-2, big=0x0102030405060708, flag=True)
    assert record.serialize() == bytes.fromhex("fffffffe" + "0102030405060708" + "01")
    assert Ints(0, 0, False).serialize() == bytes(13)


@pytest.mark.parametrize(
    "small, big",
    [(-(2**31), -(2**63)), (2**31 - 1, 2**63 - 1), (0, -1)],
)
def test_integer_extremes_round_trip(small: int, big: int) -> None:
    """The full signed ranges of int and long survive a round trip."""
    record = Ints(small, big, False)
    assert Ints.from_bytes(record.serialize()) == record


def test_integer_out_of_range_is_refused_on_encode() -> None:
    """An int field holding a value wider than 32 bits is a programming error."""
    with pytest.raises(struct.error):
        Ints(2**31, 0, False).serialize()


def test_boolean_decodes_any_nonzero_byte_as_true() -> None:
    """Like Java's DataInput.readBoolean, any non-zero byte is true."""
    decoded = Ints.from_bytes(bytes(12) + b"\x02")
    assert decoded.flag is True


def test_buffer_null_and_empty_are_different() -> None:
    """A null buffer is length -1; an empty one is length 0; they decode apart."""
    assert Buffers(None).serialize() == bytes.fromhex("ffffffff")
    assert Buffers(b"").serialize() == bytes.fromhex("00000000")
    assert Buffers.from_bytes(bytes.fromhex("ffffffff")).blob is None
    assert Buffers.from_bytes(bytes.fromhex("00000000")).blob == b""
    assert Buffers(None) != Buffers(b"")


def test_buffer_bytes_follow_length() -> None:
    assert Buffers(b"\x00ab").serialize() == bytes.fromhex("00000003") + b"\x00ab"


def test_ustring_is_utf8_with_byte_length_and_null() -> None:
    """The length counts UTF-8 bytes, not characters; -1 is null, 0 is ""."""
    assert Strings("é/").serialize() == bytes.fromhex("00000003c3a92f")
    assert Strings(None).serialize() == bytes.fromhex("ffffffff")
    assert Strings("").serialize() == bytes.fromhex("00000000")
    assert Strings.from_bytes(bytes.fromhex("ffffffff")).text is None
    assert Strings.from_bytes(bytes.fromhex("00000000")).text == ""
    assert Strings.from_bytes(bytes.fromhex("00000003c3a92f")).text == "é/"


def test_vector_null_empty_and_elements() -> None:
    """A vector is a count (-1 null) then its elements; null and [] stay apart."""
    assert Vectors(None, []).serialize() == bytes.fromhex("ffffffff00000000")
    full = Vectors(["a", None], [1, -1])
    assert full.serialize() == bytes.fromhex(
        "00000002" + "0000000161" + "ffffffff" + "00000002" + "00000001" + "ffffffff"
    )
    decoded = Vectors.from_bytes(Vectors(None, []).serialize())
    assert decoded.names is None and decoded.numbers == []
    assert Vectors.from_bytes(full.serialize()) == full


def test_nested_records_are_inlined_without_framing() -> None:
    """A nested record is its fields in place, with nothing around them."""
    record = Outer(1, Inner(2, 3), "x", [Inner(4, 5)])
    expected = (
        struct.pack(">iiq", 1, 2, 3) + struct.pack(">i", 1) + b"x" + struct.pack(">iiq", 1, 4, 5)
    )
    assert record.serialize() == expected
    assert Outer.from_bytes(expected) == record


def test_empty_record_encodes_to_nothing() -> None:
    assert Empty().serialize() == b""
    assert Empty.deserialize(b"abc", 1) == (Empty(), 1)


# -- API -------------------------------------------------------------------------------


def test_deserialize_returns_new_offset_and_reads_from_offset() -> None:
    """deserialize starts at the offset and returns where the record ended."""
    payload = b"junk" + Ints(5, 6, True).serialize() + b"tail"
    record, end = Ints.deserialize(payload, 4)
    assert record == Ints(5, 6, True)
    assert end == 4 + 13


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview], ids=lambda w: w.__name__)
def test_deserialize_accepts_bytes_bytearray_and_memoryview(wrap: type) -> None:
    """Every bytes-like input decodes the same, and yields real bytes and str values."""
    record = Outer(1, Inner(2, 3), "é", [Inner(4, 5)])
    other = Buffers(b"data")
    decoded, _ = Outer.deserialize(wrap(record.serialize()))
    assert decoded == record
    blob = Buffers.from_bytes(wrap(other.serialize())).blob
    assert type(blob) is bytes and blob == b"data"


def test_serialize_into_appends() -> None:
    """serialize_into appends to an existing buffer, so a frame can be built in one."""
    out = bytearray(b"HDR")
    Strings("ab").serialize_into(out)
    Ints(1, 2, False).serialize_into(out)
    assert bytes(out) == b"HDR" + Strings("ab").serialize() + Ints(1, 2, False).serialize()


def test_from_bytes_refuses_trailing_bytes() -> None:
    with pytest.raises(DecodeError, match="1 bytes after Strings"):
        Strings.from_bytes(Strings("a").serialize() + b"!")


def test_constructor_positional_and_keyword_and_required() -> None:
    """Fields may be given by position or keyword; a missing field is a TypeError."""
    assert Inner(1, 2) == Inner(a=1, b=2) == Inner(1, b=2)
    with pytest.raises(TypeError):
        Inner(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Inner(1, 2, c=3)  # type: ignore[call-arg]


def test_records_have_slots_not_dicts() -> None:
    record = Inner(1, 2)
    assert not hasattr(record, "__dict__")
    with pytest.raises(AttributeError):
        record.c = 3  # type: ignore[attr-defined]


def test_equality_is_by_class_and_value() -> None:
    """Equal fields and class make equal records; another class with the same fields does not."""

    class Twin(Record):
        fields = (("a", INT), ("b", LONG))

    assert Inner(1, 2) == Inner(1, 2)
    assert Inner(1, 2) != Inner(1, 3)
    assert Inner(1, 2) != Twin(1, 2)
    assert Inner(1, 2) != (1, 2)


def test_vectors_compare_equal_as_list_or_tuple_and_hash_alike() -> None:
    """A tuple-built vector equals the decoded list, and both hash the same."""
    built = Vectors(("a", "b"), (1,))
    decoded = Vectors.from_bytes(built.serialize())
    assert isinstance(decoded.names, list)
    assert built == decoded
    assert hash(built) == hash(decoded)
    assert Vectors(None, []) != Vectors([], [])


def test_records_hash_by_value() -> None:
    assert len({Inner(1, 2), Inner(1, 2), Inner(2, 1)}) == 2


def test_records_support_positional_patterns() -> None:
    """match/case can take fields positionally, in declaration order."""
    match Outer(1, Inner(2, 3), "x", []):
        case Outer(head, Inner(a, b), label, _):
            assert (head, a, b, label) == (1, 2, 3, "x")
        case _:
            pytest.fail("pattern did not match")


def test_repr_names_class_and_fields() -> None:
    assert repr(Outer(1, Inner(2, 3), None, [])) == (
        "Outer(head=1, inner=Inner(a=2, b=3), label=None, inners=[])"
    )


def test_replace_and_as_dict() -> None:
    record = Inner(1, 2)
    assert record.replace(b=5) == Inner(1, 5)
    assert record == Inner(1, 2)
    assert record.as_dict() == {"a": 1, "b": 2}


def test_generated_source_is_kept_for_inspection() -> None:
    """Each class keeps its generated codec source (useful when debugging)."""
    assert "def _decode" in Outer._source and "unpack_from" in Outer._source


# -- optional trailing field -------------------------------------------------------------


def test_optional_field_absent_decodes_none_and_encodes_nothing() -> None:
    """An optional trailing field absent from the input is None, and None writes no byte."""
    assert Tailed(7, None).serialize() == bytes.fromhex("00000007")
    assert Tailed.from_bytes(bytes.fromhex("00000007")) == Tailed(7, None)
    assert Tailed(7) == Tailed(7, None)


def test_optional_field_present_round_trips() -> None:
    assert Tailed(7, False).serialize() == bytes.fromhex("0000000700")
    assert Tailed.from_bytes(bytes.fromhex("0000000701")) == Tailed(7, True)
    assert Tailed(7, None) != Tailed(7, False)


def test_optional_field_must_be_last() -> None:
    with pytest.raises(TypeError, match="must be the last"):

        class Bad(Record):
            fields = (("maybe", OPTIONAL_BOOLEAN), ("value", INT))


def test_field_type_must_be_jute() -> None:
    with pytest.raises(TypeError, match="not a jute type"):

        class Bad(Record):
            fields = (("value", int),)


# -- malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, payload, message",
    [
        (Ints, b"", "unpack"),
        (Ints, bytes(12), "unpack"),
        (Buffers, bytes.fromhex("fffffffe"), "negative length -2"),
        (Buffers, bytes.fromhex("80000000"), "negative length"),
        (Buffers, bytes.fromhex("00000005abcd"), "past the end"),
        (Buffers, bytes.fromhex("7fffffff"), "past the end"),
        (Strings, bytes.fromhex("00000002c328"), "utf-8"),
        (Strings, bytes.fromhex("00000001"), "past the end"),
        (Vectors, bytes.fromhex("fffffffe"), "negative vector count"),
        (Vectors, bytes.fromhex("7fffffff"), "past the end"),
        (Vectors, bytes.fromhex("00000001"), "past the end"),
        (Vectors, bytes.fromhex("0000000100000000"), "unpack"),
        (Outer, bytes(4), "unpack"),
    ],
)
def test_malformed_input_raises_decode_error_only(cls: type, payload: bytes, message: str) -> None:
    """Truncation, bad lengths and bad UTF-8 all surface as DecodeError."""
    with pytest.raises(DecodeError, match=message):
        cls.deserialize(payload)


def test_huge_vector_count_fails_fast() -> None:
    """A count that cannot fit in what is left is refused before any looping."""
    with pytest.raises(DecodeError, match="past the end"):
        Vectors.from_bytes(bytes.fromhex("10000000") + bytes(64))


def test_offset_past_end_or_negative_is_decode_error() -> None:
    payload = Ints(1, 2, True).serialize()
    with pytest.raises(DecodeError):
        Ints.deserialize(payload, len(payload))
    with pytest.raises(DecodeError, match="negative offset"):
        Ints.deserialize(payload, -13)


def test_decode_error_is_a_value_error() -> None:
    """Callers that catch ValueError also catch DecodeError."""
    assert issubclass(DecodeError, ValueError)
