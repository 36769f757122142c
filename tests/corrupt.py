"""Silent corruption for the tests: flip the lowest mantissa bit of some elements of a
safetensors file's tensor data, so every value stays finite and plausible."""

from __future__ import annotations

import json
import struct
from pathlib import Path


def flip_low_bits(path: Path, count: int = 10) -> None:
    """Flip bit 0 of the first byte of ``count`` evenly spread elements of the first tensor
    (little-endian: the least significant mantissa bit)."""
    data = bytearray(Path(path).read_bytes())
    header_size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_size])
    name = next(k for k in sorted(header) if k != "__metadata__")
    start, end = header[name]["data_offsets"]
    width = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}[header[name]["dtype"]]
    n = (end - start) // width
    for i in range(count):
        data[8 + header_size + start + (i * n // count) * width] ^= 1
    Path(path).write_bytes(bytes(data))
