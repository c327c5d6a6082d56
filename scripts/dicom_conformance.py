#!/usr/bin/env python3
"""DICOM conformance of Clarity's decoder against pydicom (+ pylibjpeg codec plugins).

Decodes every pixel-bearing file of pydicom's shipped test data with both, applies the same
documented value mapping to pydicom's pixels (frame 0; grey: modality LUT sequence or
rescale, then VOI LUT sequence or the file's window or the data's min..max, to 16 bits,
MONOCHROME1 inverted; colour: RGB with YBR_FULL/_422 converted by pydicom; palette colour
through pydicom's apply_color_lut; 32-bit colour samples >> 16), and compares sample by
sample. Files Clarity refuses must be listed, with the reason, in the expected-refusals file.

usage: dicom_conformance.py DUMP_BINARY EXPECTED_REFUSALS [--table OUT.md]
exit 0 when every file matches or is an expected refusal, 1 otherwise.
"""
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi

LOSSLESS = {
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.201",
}


def test_files():
    root = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files")
    out = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            try:
                ds = pydicom.dcmread(p, force=True, stop_before_pixels=False)
            except Exception:
                continue
            if "PixelData" in ds:
                out.append((os.path.relpath(p, root), p))
    return sorted(out)


def reference(ds):
    """pydicom's pixels of frame 0 mapped the way Clarity documents, or raises."""
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    spp = int(ds.get("SamplesPerPixel", 1))
    if frames > 1:
        arr = arr[0]
    pi = str(ds.PhotometricInterpretation).upper()
    if pi in ("MONOCHROME1", "MONOCHROME2") and spp == 1:
        m = apply_modality_lut(arr, ds)
        if ds.get("VOILUTSequence"):
            item = ds.VOILUTSequence[0]
            bits = int(item.LUTDescriptor[2])
            y = apply_voi(np.rint(m).astype(np.int64), ds).astype(np.float64) / (2**bits - 1)
        elif "WindowCenter" in ds and "WindowWidth" in ds:
            c = ds.WindowCenter
            w = ds.WindowWidth
            c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
            w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
            fn = str(ds.get("VOILUTFunction", "LINEAR")).upper()
            m = m.astype(np.float64)
            if fn == "SIGMOID":
                y = 1.0 / (1.0 + np.exp(-4.0 * (m - c) / w))
            elif fn == "LINEAR_EXACT":
                y = np.where(m <= c - w / 2, 0.0, np.where(m > c + w / 2, 1.0, (m - c) / w + 0.5))
            else:
                c2, w2 = c - 0.5, w - 1.0
                y = np.where(m <= c2 - w2 / 2, 0.0, np.where(m > c2 + w2 / 2, 1.0, (m - c2) / w2 + 0.5))
        else:
            m = m.astype(np.float64)
            lo, hi = float(m.min()), float(m.max())
            c2, w2 = (lo + hi) / 2, hi - lo
            if w2 == 0:
                y = np.where(m <= c2, 0.0, 1.0)
            else:
                y = np.where(m <= c2 - w2 / 2, 0.0, np.where(m > c2 + w2 / 2, 1.0, (m - c2) / w2 + 0.5))
        out = np.clip(np.rint(y * 65535.0), 0, 65535).astype(np.uint16)
        if pi == "MONOCHROME1":
            out = 65535 - out
        return out
    if pi == "PALETTE COLOR":
        return apply_color_lut(arr, ds)
    if arr.dtype.itemsize == 4:
        return (arr.astype(np.uint32) >> 16).astype(np.uint16)
    return arr


def main():
    dump, expected_path = sys.argv[1], sys.argv[2]
    table = sys.argv[sys.argv.index("--table") + 1] if "--table" in sys.argv else None
    expected = {}
    with open(expected_path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, reason = line.partition("\t")
                expected[name] = reason
    files = test_files()
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run([dump, tmp] + [p for _, p in files], capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stderr)
            return 1
        lines = [json.loads(l) for l in res.stdout.splitlines()]
        rows, failures = [], []
        for (rel, path), got in zip(files, lines):
            ds = pydicom.dcmread(path, force=True)
            ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "?"))
            pi = str(ds.get("PhotometricInterpretation", "?"))
            try:
                ref = reference(ds)
                ref_err = None
            except Exception as e:  # pydicom itself cannot decode it
                ref, ref_err = None, f"{type(e).__name__}: {e}"
            if got["status"] != "ok":
                if rel in expected:
                    rows.append((rel, ts, pi, "refused (expected)", got["error"].split(": ", 1)[-1]))
                elif ref_err is not None:
                    rows.append((rel, ts, pi, "refused; pydicom fails too", ref_err[:80]))
                else:
                    failures.append(f"{rel}: refused but pydicom decodes it: {got['error']}")
                    rows.append((rel, ts, pi, "FAIL: refused", got["error"]))
                continue
            if rel in expected:
                failures.append(f"{rel}: listed as refused but decodes now; update the list")
            if ref_err is not None:
                rows.append((rel, ts, pi, "decoded; pydicom fails", ref_err[:80]))
                continue
            raw = open(got["raw"], "rb").read()
            dtype = np.uint8 if got["bits"] == 8 else np.dtype("<u2")
            ours = np.frombuffer(raw, dtype=dtype).astype(np.int64)
            ref = np.asarray(ref)
            if ours.size != ref.size:
                failures.append(f"{rel}: {ours.size} samples vs pydicom {ref.size} {ref.shape}")
                rows.append((rel, ts, pi, "FAIL: size", f"{ours.size} vs {ref.size}"))
                continue
            diff = np.abs(ours - ref.reshape(-1).astype(np.int64))
            maxd = int(diff.max()) if diff.size else 0
            # One level of the file's own 8-bit scale, in our output's units (8-bit data
            # windowed to 16-bit grey: 257).
            level = 257 if (got["bits"] == 16 and pi.upper().startswith("MONO")
                            and int(ds.get("BitsStored", 8)) <= 8) else 1
            if ts in LOSSLESS:
                # Identical; a YBR→RGB conversion in f32 may round one level differently.
                tol, extra = (1 if pi.upper().startswith("YBR_FULL") else 0), 0
            else:
                # Lossy: within 2 levels; two JPEG decoders' chroma upsampling may put at most
                # 0.01% of the samples of a subsampled stream 3 levels apart.
                tol, extra = 2 * level, 3 * level
            over = int((diff > tol).sum())
            ok = maxd <= tol or (extra and maxd <= extra and over * 10000 <= diff.size)
            status = "match" if ok else "FAIL: differs"
            if not ok:
                failures.append(f"{rel}: max difference {maxd} > {tol}")
            detail = f"max diff {maxd} (tolerance {tol})"
            if over:
                detail += f"; {over} of {diff.size} samples above {tol}"
            rows.append((rel, ts, pi, status, detail))
    for r in rows:
        print("\t".join(r))
    decoded = sum(1 for r in rows if r[3] == "match")
    refused = sum(1 for r in rows if r[3].startswith("refused"))
    print(f"\n{len(rows)} pixel files: {decoded} match pydicom, {refused} refused, {len(failures)} failures")
    if table:
        with open(table, "w") as f:
            f.write("| file | transfer syntax | photometric | result | detail |\n|---|---|---|---|---|\n")
            for r in rows:
                f.write("| " + " | ".join(x.replace("|", "/") for x in r) + " |\n")
            f.write(f"\n{len(rows)} pixel files: {decoded} match pydicom, {refused} refused, {len(failures)} failures\n")
    for fl in failures:
        print("FAIL", fl)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
