"""
The jute binary encoding, and the L{Record} base every wire record derives from.

Jute (ZooKeeper's serialization, C{org.apache.jute.BinaryOutputArchive}) is big-endian
and untagged: C{int} is 4 bytes signed, C{long} 8, C{boolean} one byte (0 or 1),
C{buffer} and C{ustring} an C{int} length then the bytes (length -1 means null), and
C{vector<T>} an C{int} count then the elements (count -1 means null).  Records are
their fields in order with nothing around them.

A record class declares its fields once::

    class CreateRequest(Record):
        fields = (("path", USTRING), ("data", BUFFER), ("acl", vector(ACL)), ("flags", INT))

and the metaclass turns that declaration into C{__slots__}, C{__init__}, C{__eq__},
C{__hash__}, C{__repr__} and a matched encoder/decoder pair.  The codecs are generated
as Python source at class creation, because the server encodes and decodes a record per
request and per-field dispatch through descriptor objects costs several times more:
runs of fixed-size fields (including the fields of nested fixed-size records such as
C{Stat}, and the length prefixes of strings, buffers and vectors) become one
precompiled C{struct.Struct} call each, and a decoder makes its records empty and
unpacks straight into their slots (so decoding never calls C{__init__}).

Values: C{int}/C{long} are Python ints, C{boolean} a bool, C{buffer} C{bytes} or
L{None}, C{ustring} C{str} or L{None}, C{vector<T>} a list (or L{None}; tuples are
accepted on encode and compare equal to lists), a nested record an instance of its
class (never L{None}: jute cannot encode a null record).  L{None} and the empty value
are different on the wire (length -1 against length 0) and stay different here.

Decoding is strict where ZooKeeper's Java decoder is lenient, so that decoding is
exactly the inverse of encoding: a length or count below -1 (Java reads a negative
count as an empty vector), a length running past the end of the input, and invalid
UTF-8 in a C{ustring} (Java substitutes U+FFFD) all raise L{DecodeError}, the only
exception decoding raises.  A boolean byte other than 0 decodes as true, as in Java.  Encoding a wrongly typed value raises whatever Python
raises (C{struct.error}, C{TypeError}, C{AttributeError}): that is a programming error,
not bad input.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

__all__ = [
    "BOOLEAN",
    "BUFFER",
    "INT",
    "LONG",
    "OPTIONAL_BOOLEAN",
    "USTRING",
    "DecodeError",
    "JuteType",
    "OptionalType",
    "Record",
    "RecordMeta",
    "VectorType",
    "vector",
]


class DecodeError(ValueError):
    """
    The bytes are not a valid encoding of the record asked for.

    Raised for truncated input, a length or count below -1 or running past the end of
    the input, invalid UTF-8 in a string, and trailing bytes where a record must end
    the input.  The only exception any decoder in L{zkreg.proto} raises.
    """


class JuteType:
    """
    One jute type as a field declaration refers to it.

    @ivar name: the jute spelling (C{"int"}, C{"vector<ustring>"}, a record name).
    @ivar fmt: the C{struct} format character of a fixed-size primitive, else L{None}.
    @ivar min_size: the fewest bytes an encoded value takes, used to reject vector
        counts that could not fit in what is left of the input before looping.
    """

    __slots__ = ("name", "fmt", "min_size")

    def __init__(self, name: str, fmt: str | None, min_size: int) -> None:
        self.name = name
        self.fmt = fmt
        self.min_size = min_size

    def __repr__(self) -> str:
        return f"<jute {self.name}>"


class VectorType(JuteType):
    """
    C{vector<T>}: an C{int} count (-1 for null) and the elements.

    @ivar element: the element type, a L{JuteType} or a L{Record} subclass.
    """

    __slots__ = ("element",)

    def __init__(self, element: Any) -> None:
        super().__init__(f"vector<{_type_name(element)}>", None, 4)
        self.element = element


class OptionalType(JuteType):
    """
    A trailing field that old peers omit (C{ConnectRequest.readOnly}).

    Decoding takes the field when bytes remain and gives L{None} when the input ends
    before it; encoding writes it only when it is not L{None}.  Only allowed as the
    last field of a record that is decoded from a buffer ending where it ends (a frame).

    @ivar inner: the type of the field when present (a fixed-size primitive).
    """

    __slots__ = ("inner",)

    def __init__(self, inner: JuteType) -> None:
        super().__init__(f"optional<{inner.name}>", None, 0)
        self.inner = inner


INT = JuteType("int", "i", 4)
LONG = JuteType("long", "q", 8)
BOOLEAN = JuteType("boolean", "?", 1)
BUFFER = JuteType("buffer", None, 4)
USTRING = JuteType("ustring", None, 4)
OPTIONAL_BOOLEAN = OptionalType(BOOLEAN)


def vector(element: Any) -> VectorType:
    """
    @param element: a primitive (L{INT}, L{USTRING}, ...) or a L{Record} subclass.
    @return: the type C{vector<element>}.
    """
    return VectorType(element)


def _type_name(jtype: Any) -> str:
    if isinstance(jtype, JuteType):
        return jtype.name
    return jtype.__name__


def _min_size(jtype: Any) -> int:
    if isinstance(jtype, JuteType):
        return jtype.min_size
    return jtype._min_size


_INT_STRUCT = struct.Struct(">i")


def _vectors_equal(left: Any, right: Any) -> bool:
    """
    Vector equality that lets a tuple equal a list with the same elements.
    """
    if left is None or right is None:
        return left is right
    return list(left) == list(right)


def _freeze(value: Any) -> Any:
    """
    A hashable stand-in for a vector value.
    """
    return None if value is None else tuple(value)


class _Block:
    """
    Source being generated for one straight-line block of an encoder or decoder.

    Consecutive fixed-size items gather in C{run} and are written (or read) by one
    struct call when the block is flushed.

    @ivar lines: generated source lines.
    @ivar indent: the indentation of this block.
    @ivar run: pending fixed-size items, C{(fmt, expression-or-target)}.
    """

    def __init__(self, gen: _Generator, indent: str) -> None:
        self.gen = gen
        self.lines: list[str] = []
        self.indent = indent
        self.run: list[tuple[str, str]] = []

    def emit(self, line: str) -> None:
        self.lines.append(self.indent + line)

    def child(self) -> _Block:
        return _Block(self.gen, self.indent + "    ")

    def adopt(self, block: _Block) -> None:
        block.flush_encode() if self.gen.encoding else block.flush_decode()
        self.lines.extend(block.lines)

    def flush_encode(self) -> None:
        if self.run:
            packer = self.gen.struct_for("".join(fmt for fmt, _ in self.run))
            args = ", ".join(expr for _, expr in self.run)
            self.emit(f"_out += {packer}.pack({args})")
            self.run = []

    def flush_decode(self) -> None:
        if self.run:
            fmt = "".join(fmt for fmt, _ in self.run)
            unpacker = self.gen.struct_for(fmt)
            targets = ", ".join(target for _, target in self.run)
            self.emit(f"{targets}, = {unpacker}.unpack_from(_buf, _off)")
            self.emit(f"_off += {struct.calcsize('>' + fmt)}")
            self.run = []


class _Generator:
    """
    Writes the source of one record class's encoder and decoder.

    @ivar namespace: the globals the generated functions run with (structs, classes).
    """

    def __init__(self, encoding: bool) -> None:
        self.encoding = encoding
        self.namespace: dict[str, Any] = {
            "DecodeError": DecodeError,
            "_new": object.__new__,
            "_INT_STRUCT": _INT_STRUCT,
        }
        self._structs: dict[str, str] = {}
        self._counter = 0

    def temp(self, stem: str) -> str:
        self._counter += 1
        return f"_{stem}{self._counter}"

    def struct_for(self, fmt: str) -> str:
        name = self._structs.get(fmt)
        if name is None:
            name = f"_S{len(self._structs)}"
            self._structs[fmt] = name
            self.namespace[name] = struct.Struct(">" + fmt)
        return name

    def bind(self, value: Any) -> str:
        name = self.temp("G")
        self.namespace[name] = value
        return name

    # Encoding.

    def encode(self, block: _Block, jtype: Any, expr: str) -> None:
        """
        Generate the writing of C{expr} (an expression without side effects, or a
        local) of type C{jtype} to C{_out}.
        """
        if isinstance(jtype, VectorType):
            local = self.temp("v")
            block.emit(f"{local} = {expr}")
            block.run.append(("i", f"-1 if {local} is None else len({local})"))
            block.flush_encode()
            element = self.temp("e")
            block.emit(f"if {local}:")
            loop = block.child()
            loop.emit(f"for {element} in {local}:")
            body = loop.child()
            self.encode(body, jtype.element, element)
            loop.adopt(body)
            block.adopt(loop)
        elif isinstance(jtype, OptionalType):
            block.flush_encode()
            local = self.temp("o")
            packer = self.struct_for(jtype.inner.fmt or "")
            block.emit(f"{local} = {expr}")
            block.emit(f"if {local} is not None:")
            block.emit(f"    _out += {packer}.pack({local})")
        elif jtype is USTRING or jtype is BUFFER:
            local = self.temp("b")
            block.emit(f"{local} = {expr}")
            if jtype is USTRING:
                block.emit(f"if {local} is not None:")
                block.emit(f"    {local} = {local}.encode('utf-8')")
            block.run.append(("i", f"-1 if {local} is None else len({local})"))
            block.flush_encode()
            block.emit(f"if {local}:")
            block.emit(f"    _out += {local}")
        elif isinstance(jtype, JuteType):
            block.run.append((jtype.fmt or "", expr))
        else:
            local = self.temp("r")
            block.emit(f"{local} = {expr}")
            for name, ftype in jtype._fields:
                self.encode(block, ftype, f"{local}.{name}")

    # Decoding.

    def decode(self, block: _Block, jtype: Any, target: str) -> None:
        """
        Generate the reading of a value of type C{jtype} from C{_buf} at C{_off} into
        C{target}, a local or an attribute of a record being filled in.

        Records are made empty (C{object.__new__}) and their slots assigned as the
        fields are read, which lets a run of fixed-size fields unpack straight into
        the slots of the record and of nested records alike.
        """
        if isinstance(jtype, VectorType):
            count = self.temp("n")
            block.run.append(("i", count))
            block.flush_decode()
            block.emit(f"if {count} < 0:")
            block.emit(f"    if {count} != -1:")
            block.emit(f"        raise DecodeError('negative vector count %d' % {count})")
            block.emit(f"    {target} = None")
            block.emit("else:")
            inner = block.child()
            min_size = _min_size(jtype.element)
            if min_size:
                inner.emit(f"if {count} * {min_size} > _end - _off:")
                inner.emit(f"    raise DecodeError('vector count %d past the end' % {count})")
            items = self.temp("l")
            inner.emit(f"{items} = []")
            inner.emit(f"{target} = {items}")
            element = self.temp("e")
            inner.emit(f"for _ in range({count}):")
            body = inner.child()
            self.decode(body, jtype.element, element)
            body.flush_decode()
            body.emit(f"{items}.append({element})")
            inner.lines.extend(body.lines)
            block.lines.extend(inner.lines)
        elif isinstance(jtype, OptionalType):
            block.flush_decode()
            unpacker = self.struct_for(jtype.inner.fmt or "")
            block.emit("if _off < _end:")
            block.emit(f"    {target}, = {unpacker}.unpack_from(_buf, _off)")
            block.emit(f"    _off += {jtype.inner.min_size}")
            block.emit("else:")
            block.emit(f"    {target} = None")
        elif jtype is USTRING or jtype is BUFFER:
            length = self.temp("n")
            block.run.append(("i", length))
            block.flush_decode()
            stop = self.temp("x")
            block.emit(f"if {length} < 0:")
            block.emit(f"    if {length} != -1:")
            block.emit(f"        raise DecodeError('negative length %d' % {length})")
            block.emit(f"    {target} = None")
            block.emit("else:")
            block.emit(f"    {stop} = _off + {length}")
            block.emit(f"    if {stop} > _end:")
            block.emit(f"        raise DecodeError('length %d past the end' % {length})")
            if jtype is USTRING:
                block.emit(f"    {target} = str(_buf[_off:{stop}], 'utf-8')")
            else:
                block.emit(f"    {target} = bytes(_buf[_off:{stop}])")
            block.emit(f"    _off = {stop}")
        elif isinstance(jtype, JuteType):
            block.run.append((jtype.fmt or "", target))
        else:
            record = self.temp("r")
            block.emit(f"{record} = _new({self.bind(jtype)})")
            block.emit(f"{target} = {record}")
            for name, ftype in jtype._fields:
                self.decode(block, ftype, f"{record}.{name}")


def _compile(source: str, namespace: dict[str, Any], name: str, filename: str) -> Any:
    code = compile(source, filename, "exec")
    exec(code, namespace)
    return namespace[name]


def _build_codec(cls: type, fields: tuple) -> dict[str, Any]:
    """
    Generate C{_serialize_into}, C{serialize} and C{_decode} for a record class.
    """
    filename = f"<jute {cls.__name__}>"
    enc = _Generator(encoding=True)
    top = _Block(enc, "    ")
    for name, ftype in fields:
        enc.encode(top, ftype, f"self.{name}")
    top.flush_encode()
    into_src = "def _serialize_into(self, _out):\n" + "\n".join(top.lines or ["    pass"]) + "\n"
    writes = [line for line in top.lines if "_out" in line]
    if len(writes) == 1 and top.lines[-1] == writes[0]:
        # All fixed-size: one struct call whose bytes are the result, no bytearray.
        last = top.lines[-1].replace("_out += ", "return ", 1)
        ser_src = "def serialize(self):\n" + "\n".join(top.lines[:-1] + [last]) + "\n"
    else:
        # The same body over a fresh buffer: no second call on the hot path.
        ser_src = (
            "def serialize(self):\n"
            "    _out = bytearray()\n"
            + "\n".join(top.lines or ["    pass"])
            + "\n    return bytes(_out)\n"
        )
    methods = {
        "_serialize_into": _compile(into_src, enc.namespace, "_serialize_into", filename),
        "serialize": _compile(ser_src, enc.namespace, "serialize", filename),
    }

    # serialize_into is the generated function itself: no extra call on the hot path.
    methods["serialize_into"] = methods["_serialize_into"]

    dec = _Generator(encoding=False)
    body = _Block(dec, "        ")
    dec.namespace["_cls"] = cls
    dec.namespace["struct_error"] = struct.error
    body.emit("_rec = _new(_cls)")
    for name, ftype in fields:
        dec.decode(body, ftype, f"_rec.{name}")
    body.flush_decode()
    result = "_rec"
    body_src = (
        "    try:\n"
        + "\n".join(body.lines or ["        pass"])
        + "\n"
        + "    except (struct_error, UnicodeDecodeError) as _exc:\n"
        + "        raise DecodeError(str(_exc)) from None\n"
        + f"    return {result}, _off\n"
    )
    # _decode is what enclosing records call; deserialize is the public entry, the
    # same body behind an argument check so that it costs no extra call.
    dec_src = "def _decode(_buf, _off, _end):\n" + body_src
    public_src = (
        "def deserialize(_cls_arg, _buf, _off=0):\n"
        "    if _off < 0:\n"
        "        raise DecodeError('negative offset %d' % _off)\n"
        "    _end = len(_buf)\n" + body_src
    )
    methods["_decode"] = staticmethod(_compile(dec_src, dec.namespace, "_decode", filename))
    methods["deserialize"] = classmethod(
        _compile(public_src, dec.namespace, "deserialize", filename)
    )
    methods["_source"] = into_src + ser_src + dec_src
    return methods


def _build_plumbing(cls: type, fields: tuple) -> dict[str, Any]:
    """
    Generate C{__init__}, C{__eq__}, C{__hash__} and C{__repr__}.
    """
    names = [name for name, _ in fields]
    vector_names = {name for name, ftype in fields if isinstance(ftype, VectorType)}
    optional_names = {name for name, ftype in fields if isinstance(ftype, OptionalType)}
    namespace: dict[str, Any] = {"_veq": _vectors_equal, "_freeze": _freeze}
    params = ", ".join(f"{n}=None" if n in optional_names else n for n in names)
    init_body = "\n".join(f"    self.{n} = {n}" for n in names) or "    pass"
    init_src = f"def __init__(self{', ' if params else ''}{params}):\n{init_body}\n"
    comparisons = [
        f"_veq(self.{n}, other.{n})" if n in vector_names else f"self.{n} == other.{n}"
        for n in names
    ]
    eq_src = (
        "def __eq__(self, other):\n"
        "    if other.__class__ is not self.__class__:\n"
        "        return NotImplemented\n"
        f"    return {' and '.join(comparisons) or 'True'}\n"
    )
    hashed = [f"_freeze(self.{n})" if n in vector_names else f"self.{n}" for n in names]
    hash_src = f"def __hash__(self):\n    return hash((self.__class__, {', '.join(hashed)}{',' if len(hashed) == 1 else ''}))\n"
    return {
        "__init__": _compile(init_src, namespace, "__init__", f"<jute {cls.__name__}>"),
        "__eq__": _compile(eq_src, namespace, "__eq__", f"<jute {cls.__name__}>"),
        "__hash__": _compile(hash_src, namespace, "__hash__", f"<jute {cls.__name__}>"),
    }


class RecordMeta(type):
    """
    Turns a record's C{fields} declaration into slots and generated methods.
    """

    def __new__(mcs, name: str, bases: tuple, namespace: dict[str, Any]) -> RecordMeta:
        fields = namespace.get("fields")
        if fields is None:
            namespace.setdefault("__slots__", ())
            return super().__new__(mcs, name, bases, namespace)
        fields = tuple(fields)
        for index, (field_name, ftype) in enumerate(fields):
            if isinstance(ftype, OptionalType) and index != len(fields) - 1:
                raise TypeError(f"{name}.{field_name}: an optional field must be the last")
            if not isinstance(ftype, JuteType) and not (
                isinstance(ftype, RecordMeta) and hasattr(ftype, "_fields")
            ):
                raise TypeError(f"{name}.{field_name}: {ftype!r} is not a jute type")
        namespace["__slots__"] = tuple(field_name for field_name, _ in fields)
        namespace["__match_args__"] = namespace["__slots__"]
        namespace["fields"] = fields
        cls = super().__new__(mcs, name, bases, namespace)
        setattr(cls, "_fields", fields)  # noqa: B010 (set on the new class, not declared)
        setattr(cls, "_min_size", sum(_min_size(ftype) for _, ftype in fields))  # noqa: B010
        for attr, value in _build_plumbing(cls, fields).items():
            setattr(cls, attr, value)
        for attr, value in _build_codec(cls, fields).items():
            setattr(cls, attr, value)
        return cls


class Record(metaclass=RecordMeta):
    """
    Base of every jute record.

    Subclasses set C{fields}, a tuple of C{(name, type)} pairs in wire order; the
    constructor takes the fields positionally or by keyword, all required except an
    optional trailing field (default L{None}, meaning absent).

    Records are mutable; they hash by value so that, e.g., an L{Id} can be put in a
    set, so do not change a record that is a set member or a dict key.

    @cvar fields: the declaration.
    """

    fields: ClassVar[tuple]
    _fields: ClassVar[tuple]
    _min_size: ClassVar[int]
    _source: ClassVar[str]
    _decode: ClassVar[Callable[[Any, int, int], tuple[Any, int]]]

    if TYPE_CHECKING:
        # Fields are generated slots: let the type checker accept them.
        def __init__(self, *args: Any, **kwargs: Any) -> None: ...

        def __getattr__(self, name: str) -> Any: ...

        def _serialize_into(self, out: bytearray) -> None: ...

    def serialize(self) -> bytes:
        """
        @return: the jute encoding of this record.
        """
        out = bytearray()
        self._serialize_into(out)
        return bytes(out)

    def serialize_into(self, out: bytearray) -> None:
        """
        Append the jute encoding of this record to C{out}.

        Lets a caller build a whole frame (length prefix, header, body) in one buffer.
        """
        self._serialize_into(out)

    @classmethod
    def deserialize(cls, buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Any, int]:
        """
        Decode one record from C{buf} starting at C{offset}.

        @param buf: bytes, bytearray, or a memoryview of bytes.  A record with an
            optional trailing field takes it when bytes remain, so give such a record
            a buffer that ends where the record ends.
        @return: C{(record, offset just past it)}.
        @raise DecodeError: when the bytes there are not such a record.
        """
        if offset < 0:
            raise DecodeError(f"negative offset {offset}")
        return cls._decode(buf, offset, len(buf))

    @classmethod
    def from_bytes(cls, buf: bytes | bytearray | memoryview) -> Any:
        """
        Decode a record that must take up exactly all of C{buf}.

        @raise DecodeError: when it is not such a record or bytes are left over.
        """
        record, end = cls._decode(buf, 0, len(buf))
        if end != len(buf):
            raise DecodeError(f"{len(buf) - end} bytes after {cls.__name__}")
        return record

    def replace(self, **changes: Any) -> Any:
        """
        @return: a copy of this record with the named fields changed.
        """
        values = {name: getattr(self, name) for name, _ in self._fields}
        values.update(changes)
        return self.__class__(**values)

    def as_dict(self) -> dict[str, Any]:
        """
        @return: the field values by name (nested records stay records).
        """
        return {name: getattr(self, name) for name, _ in self._fields}

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in self._fields)
        return f"{self.__class__.__name__}({inner})"
