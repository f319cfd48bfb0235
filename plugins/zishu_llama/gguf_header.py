"""Reading a GGUF file's header (its metadata and tensor table) without loading any weights, so the
engine can size the KV cache, check an adapter and reject a broken file before llama.cpp sees it.

Pure Python over an mmap: string arrays (a vocabulary of 150 000 tokens) are skipped, keeping only
their length; numeric arrays are read. Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

from zishu.errors import EngineError

MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class StringArray:
    """A string array in the metadata (say, the vocabulary), read only as far as its length."""

    length: int

    def __len__(self) -> int:
        return self.length


@dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]  # as ggml counts it: ne[0] (the row length) first
    offset: int  # from the start of the data section


@dataclass
class GGUFHeader:
    path: Path
    version: int
    fields: dict = field(default_factory=dict)
    tensors: dict[str, Tensor] = field(default_factory=dict)
    data_start: int = 0

    @property
    def arch(self) -> str:
        return self.fields.get("general.architecture", "")

    @property
    def type(self) -> str:
        """general.type: "model", "adapter" (a LoRA), … ("model" when the converter left it out)."""
        return self.fields.get("general.type", "model")

    def arch_field(self, name: str, default=None):
        """``{arch}.name``, e.g. arch_field("block_count")."""
        return self.fields.get(f"{self.arch}.{name}", default)

    @property
    def context_length(self) -> int | None:
        return self.arch_field("context_length")

    @property
    def vocab_size(self) -> int:
        return len(self.fields.get("tokenizer.ggml.tokens", ())) or 32000

    @property
    def chat_template(self) -> str | None:
        return self.fields.get("tokenizer.chat_template")

    def kv_bytes_per_token(self, bytes_per_value: int = 2) -> int:
        """The KV cache one token of context costs, all layers (an f16 cache by default)."""
        layers = int(self.arch_field("block_count", 0))
        embd = int(self.arch_field("embedding_length", 0))
        heads = self.arch_field("attention.head_count", 0)
        kv_heads = self.arch_field("attention.head_count_kv", heads)
        heads = max(heads) if isinstance(heads, list) else heads  # per-layer lists in some models
        per_layer = kv_heads if isinstance(kv_heads, list) else [kv_heads] * layers
        head_dim = embd // heads if heads else 0
        k_dim = self.arch_field("attention.key_length", head_dim)
        v_dim = self.arch_field("attention.value_length", head_dim)
        return sum(n * (k_dim + v_dim) for n in per_layer[:layers]) * bytes_per_value


def read_header(path: Path, who: str) -> GGUFHeader:
    """The header of the GGUF file at ``path``; EngineError naming ``who`` (the engine) and the file
    when it is not a GGUF file, is cut short, or its tensor data lies past the end of the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            if f.read(4) != MAGIC:
                raise EngineError(f"{who}: {path} is not a GGUF file (it does not start with 'GGUF')")
            if size < 24:
                raise EngineError(f"{who}: {path} is cut short: {size} bytes, not even a GGUF header")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                header = _Parser(data, path).header()
    except OSError as e:
        raise EngineError(f"{who}: cannot read {path}: {e}") from e
    except (struct.error, _Truncated) as e:
        raise EngineError(f"{who}: {path} is cut short or corrupt: its header runs past the end of the file") from e
    except (UnicodeDecodeError, ValueError) as e:
        raise EngineError(f"{who}: {path} has a corrupt GGUF header: {e}") from e
    last = max((t.offset for t in header.tensors.values()), default=-1)
    if header.data_start + last >= size:
        raise EngineError(f"{who}: {path} is cut short: its tensor data should reach past byte "
                          f"{header.data_start + last} but the file has {size} bytes (an interrupted download?)")
    return header


class _Truncated(Exception):
    pass


class _Parser:
    def __init__(self, data: mmap.mmap, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 4

    def header(self) -> GGUFHeader:
        version = self.scalar("<I")
        if version not in (2, 3):
            raise ValueError(f"GGUF version {version} is not supported (2 and 3 are)")
        n_tensors, n_fields = self.scalar("<Q"), self.scalar("<Q")
        header = GGUFHeader(self.path, version)
        for _ in range(n_fields):
            key = self.string()
            header.fields[key] = self.value(self.scalar("<I"))
        for _ in range(n_tensors):
            name = self.string()
            shape = tuple(self.scalar("<Q") for _ in range(self.scalar("<I")))
            self.scalar("<I")  # the ggml type
            header.tensors[name] = Tensor(shape, self.scalar("<Q"))
        alignment = int(header.fields.get("general.alignment", 32))
        header.data_start = -(-self.pos // alignment) * alignment
        return header

    def scalar(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        n = self.scalar("<Q")
        if self.pos + n > len(self.data):
            raise _Truncated
        text = self.data[self.pos:self.pos + n].decode("utf-8")
        self.pos += n
        return text

    def value(self, kind: int):
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise ValueError(f"unknown metadata value type {kind} at byte {self.pos}")
        item, n = self.scalar("<I"), self.scalar("<Q")
        if item == _STRING:
            for _ in range(n):
                length = self.scalar("<Q")
                self.pos += length
            if self.pos > len(self.data):
                raise _Truncated
            return StringArray(n)
        if item in _SCALARS:
            fmt = f"<{n}{_SCALARS[item][1]}"
            values = list(struct.unpack_from(fmt, self.data, self.pos))
            self.pos += struct.calcsize(fmt)
            return values
        return [self.value(item) for _ in range(n)]  # arrays of arrays
