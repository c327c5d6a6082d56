"""Decoding the ``image`` object of a clarity-worker/1 request into a numpy array.

Shapes: ``(height, width)`` for gray, ``(height, width, 3)`` for RGB; dtype ``uint8`` or
``uint16`` as Clarity's image (16-bit radiographs stay 16-bit).
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any, Dict

import numpy as np


def _shape(obj: Dict[str, Any]):
    h, w, c = int(obj["height"]), int(obj["width"]), int(obj["channels"])
    return (h, w) if c == 1 else (h, w, c)


def decode_image(obj: Dict[str, Any]) -> np.ndarray:
    """The request's ``image`` object as an array (read-only for ``raw``)."""
    enc = obj.get("encoding")
    if enc == "raw":
        dtype = {"uint8": np.uint8, "uint16": np.dtype("<u2")}[obj["dtype"]]
        arr = np.frombuffer(base64.b64decode(obj["data"]), dtype=dtype)
        arr = arr.reshape(_shape(obj))
        return arr.astype(np.uint16) if obj["dtype"] == "uint16" else arr
    if enc == "png":
        return decode_png(base64.b64decode(obj["data"]))
    if enc == "path":
        with open(obj["path"], "rb") as f:
            return decode_png(f.read())
    raise ValueError(f"unknown image encoding {enc!r} (expected raw, png or path)")


def decode_png(data: bytes) -> np.ndarray:
    """Decodes a PNG: with Pillow when it is installed, else with the small decoder below
    (non-interlaced gray/RGB, 8/16-bit: what Clarity writes)."""
    try:
        from PIL import Image  # type: ignore
    except ImportError:
        return _decode_png_py(data)
    import io

    with Image.open(io.BytesIO(data)) as im:
        arr = np.array(im)
    if arr.dtype == np.int32:  # Pillow's mode "I" for 16-bit gray
        arr = arr.astype(np.uint16)
    return arr


def _decode_png_py(data: bytes) -> np.ndarray:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if ihdr is None:
        raise ValueError("PNG without IHDR")
    w, h, depth, color, _, _, interlace = ihdr
    channels = {0: 1, 2: 3}.get(color)
    if channels is None or depth not in (8, 16) or interlace:
        raise ValueError(
            f"PNG colour type {color}, depth {depth}, interlace {interlace} needs Pillow "
            "(pip install pillow)"
        )
    bpp = channels * depth // 8
    stride = w * bpp
    raw = zlib.decompress(b"".join(idat))
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 0xFF
        else:
            cur = line.tolist()
            up = prev.tolist()
            for i in range(stride):
                a = cur[i - bpp] if i >= bpp else 0
                b = up[i]
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) >> 1
                elif f == 4:
                    c = up[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                else:
                    raise ValueError(f"PNG filter type {f} is invalid")
                cur[i] = (cur[i] + p) & 0xFF
            cur = np.array(cur, dtype=np.int32)
        out[y] = cur
        prev = cur
    if depth == 16:
        arr = out.view(">u2").astype(np.uint16)
    else:
        arr = out
    return arr.reshape((h, w) if channels == 1 else (h, w, channels))
