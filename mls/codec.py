"""The TLS presentation language as RFC 9420 uses it (RFC 9420 §2.1; RFC 8446 §3).

Every wire struct of the package is declared once, as a frozen dataclass deriving from
:class:`Struct`, whose fields carry codec markers in ``typing.Annotated``::

    @dataclass(frozen=True)
    class Extension(Struct):
        extension_type: Annotated[int, U16]
        extension_data: Annotated[bytes, Opaque]

Fields are encoded in declaration order, which is the RFC's order. Tagged unions (the RFC's
``select``) use :class:`Select`, which reads the tag from a field decoded earlier in the same
struct. The few structs whose shape depends on something outside themselves override
``encode_into``/``decode_from``.

Contract: decoders are strict and total. Any byte string yields a value or raises
:class:`~mls.errors.DecodeError`: variable-size length headers must be minimal and may not use
the ``11`` prefix (§2.1.2), optional markers are 0 or 1, closed enums reject unknown values,
no claimed length is trusted before the bytes are there, and :meth:`Struct.decode` rejects
trailing bytes and inputs over a size cap before reading them.
"""

from __future__ import annotations

import dataclasses
import struct
import typing
from collections.abc import Callable, Mapping
from enum import IntEnum
from typing import Any, ClassVar, Generic, TypeVar

from .errors import DecodeError, UsageError

T = TypeVar("T")
S = TypeVar("S", bound="Struct")
E = TypeVar("E", bound=IntEnum)

MAX_VARINT = 2**30 - 1  # RFC 9420 §2.1.2: the largest value a length header can carry
DEFAULT_MAX_SIZE = 16 * 1024 * 1024
"""Inputs longer than this are refused by :meth:`Struct.decode` unless a caller raises it."""


class Reader:
    """A cursor over immutable bytes that never reads past its end."""

    __slots__ = ("_data", "_pos", "_end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self._data = data
        self._pos = pos
        self._end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def at_end(self) -> bool:
        return self._pos >= self._end

    def expect_end(self, what: str = "input") -> None:
        if self._pos != self._end:
            raise DecodeError(f"{self.remaining} trailing bytes after {what}")

    def read(self, n: int) -> bytes:
        pos = self._pos
        end = pos + n
        if n < 0 or end > self._end:
            raise DecodeError(f"truncated: need {n} bytes, have {self._end - pos}")
        self._pos = end
        return self._data[pos:end]

    def uint(self, width: int) -> int:
        pos = self._pos
        end = pos + width
        if end > self._end:
            raise DecodeError(f"truncated: need {width} bytes, have {self._end - pos}")
        self._pos = end
        return int.from_bytes(self._data[pos:end], "big")

    def varint(self) -> int:
        """A variable-size length header (RFC 9420 §2.1.2), minimal encoding enforced."""
        pos = self._pos
        if pos >= self._end:
            raise DecodeError("truncated: need a length header, have 0 bytes")
        first = self._data[pos]
        if first < 0x40:
            self._pos = pos + 1
            return first
        if first >= 0xC0:
            raise DecodeError("length header uses the reserved 11 prefix")
        if first < 0x80:
            value, floor = self.uint(2) & 0x3FFF, 1 << 6
        else:
            value, floor = self.uint(4) & 0x3FFFFFFF, 1 << 14
        if value < floor:
            raise DecodeError("length header is not minimally encoded")
        return value

    def sub(self, n: int) -> Reader:
        """A reader over the next ``n`` bytes; this reader moves past them."""
        if n < 0 or n > self._end - self._pos:
            raise DecodeError(
                f"truncated: length {n} exceeds the {self._end - self._pos} bytes left"
            )
        child = Reader(self._data, self._pos, self._pos + n)
        self._pos += n
        return child

    def vector(self) -> Reader:
        """A reader over the body of a varint-prefixed vector."""
        return self.sub(self.varint())

    def opaque(self) -> bytes:
        return self.read(self.varint())


class Writer:
    """Accumulates an encoding."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> None:
        self._buf += data

    def uint(self, value: int, width: int) -> None:
        if not 0 <= value < (1 << (8 * width)):
            raise UsageError(f"integer does not fit in uint{8 * width}")
        self._buf += value.to_bytes(width, "big")

    def varint(self, value: int) -> None:
        """Writes a minimal variable-size length header (RFC 9420 §2.1.2)."""
        self._buf += _length_header(value)

    def opaque(self, data: bytes) -> None:
        self._buf += _length_header(len(data))
        self._buf += data

    def vector(self, encode_body: Callable[[Writer], None]) -> None:
        """Writes a varint-prefixed vector whose body ``encode_body`` writes to this writer."""
        start = len(self._buf)
        encode_body(self)
        self._prefix_length(start)

    def _prefix_length(self, start: int) -> None:
        """Puts the length header of everything written since offset ``start`` before it."""
        buf = self._buf
        buf[start:start] = _length_header(len(buf) - start)

    def getvalue(self) -> bytes:
        return bytes(self._buf)


_ONE_BYTE_HEADERS = tuple(bytes((n,)) for n in range(64))


def opaque_bytes(data: bytes) -> bytes:
    """The encoding of ``opaque data<V>``: a minimal length header, then ``data``."""
    return _length_header(len(data)) + data


def _length_header(value: int) -> bytes:
    """The minimal variable-size length header of ``value`` (RFC 9420 §2.1.2)."""
    if value < 0 or value > MAX_VARINT:
        raise UsageError("length exceeds 2^30 - 1")
    if value < 1 << 6:
        return _ONE_BYTE_HEADERS[value]
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    return (value | 0x80000000).to_bytes(4, "big")


def reader_for(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Reader:
    """A reader over ``data`` for a top-level decoder: refuses non-bytes input and input over
    ``max_size`` before reading anything.

    Raises:
        DecodeError: ``data`` is not bytes-like, or is longer than ``max_size``.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"expected bytes, got {type(data).__name__}")
    if len(data) > max_size:
        raise DecodeError(f"input of {len(data)} bytes exceeds the {max_size}-byte cap")
    return Reader(bytes(data))


# --------------------------------------------------------------------------------------------
# Codecs: the field markers


class Codec(Generic[T]):
    """Encodes and decodes one kind of value. Subclasses are the field markers."""

    def encode(self, w: Writer, value: T) -> None:
        raise NotImplementedError

    def decode(self, r: Reader) -> T:
        raise NotImplementedError


_INT_FORMATS = {1: "B", 2: "H", 4: "I", 8: "Q"}


class UInt(Codec[int]):
    """``uint8`` .. ``uint64``."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.format = _INT_FORMATS[width]
        """The ``struct`` format character of one value (big-endian with a ``>`` prefix)."""

    def encode(self, w: Writer, value: int) -> None:
        w.uint(value, self.width)

    def decode(self, r: Reader) -> int:
        return r.uint(self.width)

    def __repr__(self) -> str:
        return f"U{8 * self.width}"


U8 = UInt(1)
U16 = UInt(2)
U32 = UInt(4)
U64 = UInt(8)


class OpaqueCodec(Codec[bytes]):
    """``opaque data<V>``: a varint length, then the bytes (RFC 9420 §2.1.2)."""

    def encode(self, w: Writer, value: bytes) -> None:
        w.opaque(value)

    def decode(self, r: Reader) -> bytes:
        return r.read(r.varint())

    def __repr__(self) -> str:
        return "Opaque"


Opaque = OpaqueCodec()


class Fixed(Codec[bytes]):
    """``opaque data[n]``: exactly ``n`` bytes, no length."""

    def __init__(self, size: int) -> None:
        self.size = size

    def encode(self, w: Writer, value: bytes) -> None:
        if len(value) != self.size:
            raise UsageError(f"fixed-size field needs {self.size} bytes, got {len(value)}")
        w.write(value)

    def decode(self, r: Reader) -> bytes:
        return r.read(self.size)


class Enum(Codec[E]):
    """A closed enum carried as a fixed-width integer: unknown values are a decode error, and
    encoding refuses them too (they could not be decoded back)."""

    def __init__(self, enum: type[E], width: int) -> None:
        self.enum = enum
        self.width = width
        self._members: dict[int, E] = {int(m): m for m in enum}

    def encode(self, w: Writer, value: E) -> None:
        if value not in self._members:
            raise UsageError(f"{value!r} is not a {self.enum.__name__}")
        w.uint(int(value), self.width)

    def decode(self, r: Reader) -> E:
        raw = r.uint(self.width)
        member = self._members.get(raw)
        if member is None:
            raise DecodeError(f"unknown {self.enum.__name__} value {raw}")
        return member


class Vector(Codec[tuple[T, ...]]):
    """``T items<V>``: a varint byte length, then elements until it is used up.

    A body that is not a whole number of elements is a decode error. Vectors of fixed-width
    integers are packed and unpacked in one step.
    """

    def __init__(self, element: Codec[T] | type[Struct]) -> None:
        self.element: Codec[T] = as_codec(element)

    def encode(self, w: Writer, value: tuple[T, ...]) -> None:
        element = self.element
        if isinstance(element, UInt):
            try:
                body = struct.pack(f">{len(value)}{element.format}", *value)
            except struct.error:
                raise UsageError(f"a vector element does not fit in {element!r}") from None
            w.opaque(body)
            return
        buf = w._buf
        start = len(buf)
        encode = element.encode
        for item in value:
            encode(w, item)
        w._prefix_length(start)

    def decode(self, r: Reader) -> tuple[T, ...]:
        n = r.varint()
        start = r._pos
        end = start + n
        saved_end = r._end
        if end > saved_end:
            raise DecodeError(f"truncated: length {n} exceeds the {saved_end - start} bytes left")
        element = self.element
        if isinstance(element, UInt):
            count, rest = divmod(n, element.width)
            if rest:
                raise DecodeError(f"vector of {element!r} has {n} bytes, not a multiple")
            r._pos = end
            return struct.unpack_from(f">{count}{element.format}", r._data, start)
        decode = element.decode
        items = []
        # Elements are read from this reader with its end moved to the body's end, so no
        # element can read past the body; the end is restored whatever happens.
        r._end = end
        try:
            while r._pos < end:
                before = r._pos
                items.append(decode(r))
                if r._pos == before:
                    raise DecodeError("vector element of zero bytes")
        finally:
            r._end = saved_end
        return tuple(items)


class Optional(Codec[T | None]):
    """``optional<T>``: a presence octet, 0 or 1 (RFC 9420 §2.1.1)."""

    def __init__(self, inner: Codec[T] | type[Struct]) -> None:
        self.inner: Codec[T] = as_codec(inner)

    def encode(self, w: Writer, value: T | None) -> None:
        if value is None:
            w._buf += b"\x00"
        else:
            w._buf += b"\x01"
            self.inner.encode(w, value)

    def decode(self, r: Reader) -> T | None:
        present = r.uint(1)
        if present == 0:
            return None
        if present != 1:
            raise DecodeError(f"optional presence octet is {present}, not 0 or 1")
        return self.inner.decode(r)


class EmptyCodec(Codec[None]):
    """``struct {}``: no bytes at all. The field's value is ``None``."""

    def encode(self, w: Writer, value: None) -> None:
        if value is not None:
            raise UsageError("an empty variant carries no value")

    def decode(self, r: Reader) -> None:
        return None


Empty = EmptyCodec()


class Select(Codec[Any]):
    """A ``select`` on a tag field decoded earlier in the same struct (RFC 8446 §3.8).

    Args:
        tag: the name of the field whose value picks the variant.
        variants: the codec for each tag value. A tag value with no entry is a decode error.
    """

    def __init__(self, tag: str, variants: Mapping[Any, Codec[Any] | type[Struct]]) -> None:
        self.tag = tag
        self.variants: dict[Any, Codec[Any]] = {k: as_codec(v) for k, v in variants.items()}

    def variant(self, tag_value: Any) -> Codec[Any]:
        try:
            return self.variants[tag_value]
        except KeyError:
            raise DecodeError(f"no variant for {self.tag} = {tag_value!r}") from None

    def encode(self, w: Writer, value: Any) -> None:  # pragma: no cover - needs the tag
        raise UsageError("Select fields are encoded by their struct")

    def decode(self, r: Reader) -> Any:  # pragma: no cover - needs the tag
        raise UsageError("Select fields are decoded by their struct")


class StructCodec(Codec[S]):
    """A nested struct, encoded inline."""

    def __init__(self, cls: type[S]) -> None:
        self.cls = cls

    def encode(self, w: Writer, value: S) -> None:
        if not isinstance(value, self.cls):
            raise UsageError(f"expected {self.cls.__name__}, got {type(value).__name__}")
        value.encode_into(w)

    def decode(self, r: Reader) -> S:
        return self.cls.decode_from(r)


def as_codec(spec: Codec[T] | type[Struct]) -> Codec[T]:
    if isinstance(spec, Codec):
        return spec
    if isinstance(spec, type) and issubclass(spec, Struct):
        return StructCodec(spec)  # type: ignore[return-value]
    raise TypeError(f"not a codec: {spec!r}")


# --------------------------------------------------------------------------------------------
# Struct: the one declaration form


STRUCTS: list[type[Struct]] = []
"""Every Struct subclass, in definition order (the property tests walk it)."""

_Step = tuple[str, Any, str | None, dict[Any, Any] | None]
"""One field of a struct's plan: ``(name, encode or decode function, tag, variants)``. For a
``Select`` field ``tag`` names the tag field and ``variants`` maps each tag value to the
variant's function; otherwise both are ``None``."""


class Struct:
    """Base class of wire structs (frozen dataclasses whose fields carry codec markers).

    The markers are resolved once per class, on first use, into two plans (one step per field,
    holding the bound encode or decode function), so the generic :meth:`encode_into` and
    :meth:`decode_from` are a loop over the plan.
    """

    __codec_fields__: ClassVar[tuple[tuple[str, Codec[Any]], ...] | None] = None
    __encode_plan__: ClassVar[tuple[_Step, ...] | None] = None
    __decode_plan__: ClassVar[tuple[_Step, ...] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__codec_fields__ = None
        cls.__encode_plan__ = None
        cls.__decode_plan__ = None
        STRUCTS.append(cls)

    @classmethod
    def codec_fields(cls) -> tuple[tuple[str, Codec[Any]], ...]:
        """``(name, codec)`` for each field, in wire order; resolved once, on first use."""
        resolved = cls.__codec_fields__
        if resolved is None:
            hints = typing.get_type_hints(cls, include_extras=True)
            out = []
            for f in dataclasses.fields(cls):  # type: ignore[arg-type]
                hint = hints[f.name]
                if typing.get_origin(hint) is typing.Annotated:
                    marker = typing.get_args(hint)[1]
                else:
                    marker = hint
                out.append((f.name, as_codec(marker)))
            resolved = tuple(out)
            cls.__codec_fields__ = resolved
        return resolved

    @classmethod
    def _plans(cls) -> tuple[tuple[_Step, ...], tuple[_Step, ...]]:
        encode_plan: list[_Step] = []
        decode_plan: list[_Step] = []
        for name, codec in cls.codec_fields():
            if isinstance(codec, Select):
                encoders = {k: v.encode for k, v in codec.variants.items()}
                decoders = {k: v.decode for k, v in codec.variants.items()}
                encode_plan.append((name, None, codec.tag, encoders))
                decode_plan.append((name, None, codec.tag, decoders))
            else:
                encode_plan.append((name, codec.encode, None, None))
                decode_plan.append((name, codec.decode, None, None))
        cls.__encode_plan__ = tuple(encode_plan)
        cls.__decode_plan__ = tuple(decode_plan)
        return cls.__encode_plan__, cls.__decode_plan__

    def encode_into(self, w: Writer) -> None:
        plan = type(self).__encode_plan__ or type(self)._plans()[0]
        for name, encode, tag, variants in plan:
            if variants is not None:
                encode = variants.get(getattr(self, tag))  # type: ignore[arg-type]
                if encode is None:
                    raise UsageError(f"{type(self).__name__}.{name}: no variant for its tag")
            encode(w, getattr(self, name))

    @classmethod
    def decode_from(cls: type[S], r: Reader) -> S:
        plan = cls.__decode_plan__ or cls._plans()[1]
        values: dict[str, Any] = {}
        for name, decode, tag, variants in plan:
            if variants is not None:
                tag_value = values[tag]  # type: ignore[index]
                decode = variants.get(tag_value)
                if decode is None:
                    raise DecodeError(f"{cls.__name__}: no variant for {tag} = {tag_value!r}")
            values[name] = decode(r)
        return cls(**values)

    def encode(self) -> bytes:
        w = Writer()
        self.encode_into(w)
        return w.getvalue()

    @classmethod
    def decode(cls: type[S], data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> S:
        """Decodes exactly one value from ``data``; trailing bytes are an error.

        Raises:
            DecodeError: the bytes are not exactly one valid encoding, or exceed ``max_size``.
        """
        r = reader_for(data, max_size)
        value = cls.decode_from(r)
        r.expect_end(cls.__name__)
        return value


def decode_exact(
    codec: Codec[T] | type[Struct], data: bytes, *, max_size: int = DEFAULT_MAX_SIZE
) -> T:
    """Decodes exactly one value of any codec from ``data``.

    Raises:
        DecodeError: the bytes are not exactly one valid encoding, or exceed ``max_size``.
    """
    c: Codec[T] = as_codec(codec)
    r = reader_for(data, max_size)
    value = c.decode(r)
    r.expect_end()
    return value


def encode_value(codec: Codec[T] | type[Struct], value: T) -> bytes:
    """Encodes one value of any codec."""
    w = Writer()
    as_codec(codec).encode(w, value)
    return w.getvalue()
