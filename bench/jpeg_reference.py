#!/usr/bin/env python3
"""Writes the `jpeg` kernel's reference fixture: small gray and RGB images encoded and decoded by
libjpeg-turbo at its defaults, through Pillow, checked against OpenCV's imencode/imdecode (both
link libjpeg-turbo; the script stops if they disagree).

    target/bench-venv/bin/python bench/jpeg_reference.py crates/clarity-perturb/tests/fixtures/jpeg_libjpeg_turbo.bin

(bench/compare.sh creates that virtual environment.) Format, little-endian, repeated to the end:
u16 width, u16 height, u8 channels (1 or 3), u8 quality, then width*height*channels input
bytes, then as many decoded bytes (row-major, RGB interleaved).
"""
import io
import struct
import sys

import cv2
import numpy as np
import PIL
from PIL import Image, features

SIZES = [(1, 1), (2, 3), (4, 3), (5, 4), (6, 5), (7, 9), (16, 16), (17, 15), (33, 20), (37, 29)]
# (quality, noise amplitude) per case, cycled over the sizes: extremes of both.
SETTINGS = [(1, 255), (10, 20), (50, 0), (75, 8), (95, 255), (100, 3), (25, 40), (5, 0), (90, 20)]


def image(w, h, c, rng, noise):
    """Gradient + a bright disc + uniform noise, clipped: flat, smooth, edgy and clipped blocks."""
    y, x = np.mgrid[0:h, 0:w]
    base = x * 255 // max(w, 1) + y * 97 // max(h, 1)
    disc = np.where((x - 9) ** 2 + (y - 7) ** 2 < 30, 120, 0)
    planes = [base + disc + 60 * k for k in range(c)]
    a = np.stack(planes, axis=-1) + rng.integers(-noise, noise + 1, size=(h, w, c))
    a = np.clip(a, 0, 255).astype(np.uint8)
    return a[:, :, 0] if c == 1 else a


def pillow(a, q):
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=q)
    return np.array(Image.open(io.BytesIO(buf.getvalue())))


def opencv(a, q):
    if a.ndim == 2:
        ok, enc = cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    ok, enc = cv2.imencode(".jpg", a[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR)[:, :, ::-1]


def main(path):
    rng = np.random.default_rng(20261206)
    out = bytearray()
    n = 0
    for c in (1, 3):
        for i, (w, h) in enumerate(SIZES):
            for j in range(3):
                q, noise = SETTINGS[(3 * i + j + c) % len(SETTINGS)]
                a = image(w, h, c, rng, noise)
                p = pillow(a, q)
                o = opencv(a, q)
                if not np.array_equal(p, o):
                    sys.exit(f"Pillow and OpenCV disagree on {w}x{h}x{c} q{q}")
                out += struct.pack("<HHBB", w, h, c, q) + a.tobytes() + p.tobytes()
                n += 1
    # Flat colours whose luma lands exactly on a half (libjpeg rounds Y up, Cb/Cr down there).
    for rgb in [(3, 55, 187), (184, 132, 0), (252, 200, 68)]:
        a = np.empty((16, 16, 3), np.uint8)
        a[:] = rgb
        p = pillow(a, 100)
        if not np.array_equal(p, opencv(a, 100)):
            sys.exit(f"Pillow and OpenCV disagree on flat {rgb}")
        out += struct.pack("<HHBB", 16, 16, 3, 100) + a.tobytes() + p.tobytes()
        n += 1
    with open(path, "wb") as f:
        f.write(out)
    print(
        f"{n} cases, {len(out)} bytes: Pillow {PIL.__version__} (libjpeg-turbo "
        f"{features.version('libjpeg_turbo')}), OpenCV {cv2.__version__} agree"
    )


if __name__ == "__main__":
    main(sys.argv[1])
