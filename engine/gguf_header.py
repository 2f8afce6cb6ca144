"""The metadata and tensor table of a GGUF file, read with ``struct``.

Why not ``gguf.GGUFReader``: it wraps every value of the header in its own
numpy memmap view (several per vocabulary entry: ~200k small arrays for
Phi-3's 32k tokens), which took 1.5 s per file and, worse, set off full
garbage collections that held the GIL for 60-280 ms while the window was
painting (bench.ui, model loading). Here a header is plain Python values:
strings and ints, and only the arrays asked for (the vocabulary) are kept.

The layout (GGUF v2/v3, llama.cpp's ``gguf.md``): magic, version (u32),
tensor count and key/value count (u64), the key/values (key string, value
type u32, value), then per tensor: name, n_dims (u32), dims (u64 each),
type (u32), offset (u64). Tensor data starts at the next multiple of
``general.alignment`` (default 32). Strings are a u64 length + UTF-8 bytes.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32

# GGUF value types -> struct format of one scalar (8 = string, 9 = array).
_SCALARS = {
    **{0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?"},
    **{10: "Q", 11: "q", 12: "d"},
}
_STRING, _ARRAY = 8, 9

Value = str | int | float | bool | list[object] | None


class HeaderError(ValueError):
    """The header cannot be parsed: truncated, damaged or not GGUF v2/v3."""


@dataclass(frozen=True)
class TensorEntry:
    name: str
    type_id: int  # gguf.GGMLQuantizationType's value
    n_elements: int
    offset: int  # from the start of the tensor data


@dataclass
class GGUFHeader:
    version: int
    # Scalars and strings; arrays only where asked for (others are None).
    fields: dict[str, Value] = field(default_factory=dict)
    tensors: list[TensorEntry] = field(default_factory=list)
    data_offset: int = 0  # where tensor data starts in the file


def read_header(path: Path, *, arrays: Collection[str] = ()) -> GGUFHeader:
    """Parse ``path``'s header; ``arrays``: the keys whose array values to keep."""
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            return _Parser(data, arrays).header()
        except (struct.error, UnicodeDecodeError, OverflowError, MemoryError) as exc:
            raise HeaderError(f"unreadable header: {type(exc).__name__}: {exc}") from exc


class _Parser:
    def __init__(self, data: mmap.mmap, arrays: Collection[str]) -> None:
        self._data = data
        self._arrays = frozenset(arrays)
        self._pos = 0
        self._order = "<"

    def header(self) -> GGUFHeader:
        if self._data[:4] != b"GGUF":
            raise HeaderError("GGUF magic missing")
        self._pos = 4
        version = self._scalar("I")
        if version & 0xFFFF == 0:  # written on a machine of the other byte order
            self._order = ">"
            version = struct.unpack("<I", struct.pack(">I", version))[0]
        if version not in SUPPORTED_VERSIONS:
            raise HeaderError(f"GGUF version {version} is not supported")
        tensor_count, kv_count = self._scalar("Q"), self._scalar("Q")
        header = GGUFHeader(version=version)
        for _ in range(kv_count):
            key = self._string()
            if key in header.fields:
                raise HeaderError(f"duplicate key {key}")
            header.fields[key] = self._value(self._scalar("I"), keep_array=key in self._arrays)
        names: set[str] = set()
        for _ in range(tensor_count):
            name = self._string()
            if name in names:
                raise HeaderError(f"duplicate tensor {name}")
            names.add(name)
            n_dims = self._scalar("I")
            n_elements = 1
            for dim in struct.unpack_from(f"{self._order}{n_dims}Q", self._data, self._pos):
                n_elements *= dim
            self._pos += 8 * n_dims
            type_id, offset = self._scalar("I"), self._scalar("Q")
            header.tensors.append(TensorEntry(name, type_id, n_elements, offset))
        alignment = header.fields.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise HeaderError(f"invalid alignment {alignment!r}")
        header.data_offset = -(-self._pos // alignment) * alignment
        return header

    def _scalar(self, fmt: str) -> int:
        (value,) = struct.unpack_from(self._order + fmt, self._data, self._pos)
        self._pos += struct.calcsize(fmt)
        return int(value)

    def _string(self) -> str:
        length = self._scalar("Q")
        end = self._pos + length
        if end > len(self._data):
            raise HeaderError("string runs past the end of the file")
        text = self._data[self._pos : end].decode("utf-8")
        self._pos = end
        return text

    def _value(self, kind: int, *, keep_array: bool) -> Value:
        fmt = _SCALARS.get(kind)
        if fmt is not None:
            (value,) = struct.unpack_from(self._order + fmt, self._data, self._pos)
            self._pos += struct.calcsize(fmt)
            return value
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            item, count = self._scalar("I"), self._scalar("Q")
            return self._array(item, count, keep_array)
        raise HeaderError(f"unknown value type {kind}")

    def _array(self, item: int, count: int, keep: bool) -> list[object] | None:
        fmt = _SCALARS.get(item)
        if fmt is not None:  # one unpack for the whole array
            size = struct.calcsize(fmt) * count
            if self._pos + size > len(self._data):
                raise HeaderError("array runs past the end of the file")
            values = (
                list(struct.unpack_from(f"{self._order}{count}{fmt}", self._data, self._pos))
                if keep
                else None
            )
            self._pos += size
            return values
        if item == _STRING:
            if keep:
                return [self._string() for _ in range(count)]
            for _ in range(count):
                length = self._scalar("Q")  # (read first: it moves the position)
                self._pos += length
            if self._pos > len(self._data):
                raise HeaderError("array runs past the end of the file")
            return None
        # Arrays of arrays (no known model writes them): walk them, keep nothing.
        for _ in range(count):
            self._value(item, keep_array=False)
        return None
