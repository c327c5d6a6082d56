"""The clarity-worker/1 protocol, worker side.

Clarity starts the worker once; the worker writes one handshake line on stdout, then for each
request line on stdin (``{"id", "image", "spec"}``) writes one response line
(``{"id", "answer", ...}`` or ``{"id", "error"}``). stdout belongs to the protocol: while
serving, ``print`` and anything written to file descriptor 1 (C libraries included) goes to
stderr instead.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Optional

import numpy as np

from .image import decode_image

PROTOCOL = "clarity-worker/1"

Predict = Callable[[np.ndarray, Dict[str, Any]], Any]


def _default_identity(predict: Predict):
    try:
        source = inspect.getsourcefile(predict)
    except TypeError:
        source = None
    module = getattr(predict, "__module__", None) or "predict"
    if module == "__main__" and source:
        module = Path(source).stem
    model = f"{module}.{getattr(predict, '__qualname__', 'predict')}"
    if source and os.path.isfile(source):
        with open(source, "rb") as f:
            version = "sha256:" + hashlib.sha256(f.read()).hexdigest()
    else:
        version = "unversioned"
    return model, version


def handshake(
    predict: Predict,
    model: Optional[str] = None,
    version: Optional[str] = None,
    settings: Optional[Dict[str, Any]] = None,
) -> bytes:
    """The handshake line (without newline). ``model``/``version`` default to the function's
    module and name and a SHA-256 of the file that defines it: set ``version`` when the
    weights live elsewhere, so a new model gives new content keys."""
    dm, dv = _default_identity(predict)
    hello: Dict[str, Any] = {
        "protocol": PROTOCOL,
        "model": model or dm,
        "version": version or dv,
    }
    if settings:
        hello["settings"] = _jsonable(settings)
    return json.dumps(hello, sort_keys=True, allow_nan=False).encode()


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"non-finite number {v} in the result")
    return v


def _saliency(s: Any) -> Any:
    if isinstance(s, dict) or s is None:
        return s
    arr = np.asarray(s, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"saliency must be a 2-D array (height, width), got shape {arr.shape}")
    return {"width": arr.shape[1], "height": arr.shape[0], "values": arr.ravel().tolist()}


def _response(rid: Any, result: Any) -> Dict[str, Any]:
    if isinstance(result, str):
        result = {"answer": result}
    if not isinstance(result, dict):
        raise TypeError(
            f"predict must return a dict (or the answer as a str), got {type(result).__name__}"
        )
    out = dict(result)
    if "saliency" in out:
        out["saliency"] = _saliency(out["saliency"])
    if "probabilities" in out and out["probabilities"] is not None:
        out["probabilities"] = {str(k): float(v) for k, v in out["probabilities"].items()}
    out = _jsonable(out)
    out["id"] = rid
    return out


def handle_line(predict: Predict, line: bytes) -> bytes:
    """One request line in, one response line out (without newline). Exceptions in
    ``predict`` become an ``error`` response (the traceback goes to stderr)."""
    req = json.loads(line)
    rid = req.get("id")
    try:
        image = decode_image(req["image"])
        resp = _response(rid, predict(image, req.get("spec") or {}))
        return json.dumps(resp, sort_keys=True, allow_nan=False).encode()
    except Exception as e:  # noqa: BLE001 - every failure is reported for this run
        traceback.print_exc(file=sys.stderr)
        msg = f"{type(e).__name__}: {e}"
        return json.dumps({"id": rid, "error": msg}, sort_keys=True).encode()


def serve(
    predict: Predict,
    model: Optional[str] = None,
    version: Optional[str] = None,
    settings: Optional[Dict[str, Any]] = None,
    *,
    stdin: Optional[BinaryIO] = None,
    stdout: Optional[BinaryIO] = None,
) -> None:
    """Serves ``predict(image, spec)`` until stdin closes.

    ``image`` is a numpy array ``(H, W)`` or ``(H, W, 3)``, ``uint8`` or ``uint16``; ``spec`` is
    the adapter's ``spec`` table plus ``perturbations``, ``seed``, ``case_id`` and ``prompt``.
    ``predict`` returns a dict with ``answer`` (str) and optionally ``confidence``,
    ``entropy``, ``probabilities`` (label → p), ``justification``, ``trace`` (list of dicts),
    ``saliency`` (2-D array in [0, 1]) and ``metadata`` (dict) — or just the answer string.
    """
    if stdout is None:
        # Keep the real stdout for the protocol; send everything else written to fd 1
        # (print, C libraries) to stderr.
        sys.stdout.flush()
        stdout = os.fdopen(os.dup(1), "wb", buffering=0)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    if stdin is None:
        stdin = sys.stdin.buffer

    def write(b: bytes) -> None:
        stdout.write(b + b"\n")
        stdout.flush()

    write(handshake(predict, model, version, settings))
    for line in stdin:
        if line.strip():
            write(handle_line(predict, line))
