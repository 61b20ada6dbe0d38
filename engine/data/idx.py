"""MNIST's IDX files, read as they are or gzip-compressed (torchvision's downloads leave the .gz files)."""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one MNIST uses


def find(folder: Path, name: str) -> Path | None:
    """`folder/name`, else `folder/name.gz`, else None."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def read(path: Path) -> np.ndarray:
    """The array an IDX file of unsigned bytes holds; ValueError says what is wrong with the file."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":  # the gzip magic number, whatever the file is called
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ValueError(f"damaged gzip data ({exc})") from None
    if len(data) < 4 or data[:2] != b"\0\0":
        raise ValueError("no IDX header (it starts with two zero bytes)")
    if data[2] != UBYTE:
        raise ValueError(f"IDX type code {data[2]:#04x}; MNIST files hold unsigned bytes (0x08)")
    ndim = data[3]
    head = 4 + 4 * ndim
    if len(data) < head:
        raise ValueError("the IDX header is cut short")
    shape = struct.unpack(f">{ndim}I", data[4:head])
    size = math.prod(shape)
    if len(data) - head != size:
        raise ValueError(f"{len(data) - head:,} bytes of data where its header says {size:,} "
                         f"({' x '.join(map(str, shape))})")
    return np.frombuffer(bytearray(data[head:]), dtype=np.uint8).reshape(shape)
