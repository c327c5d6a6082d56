import base64
import io
import json

import numpy as np
import pytest

from clarity_worker import PROTOCOL, decode_image, handle_line, handshake, serve


def request(arr, rid="k1", spec=None):
    arr = np.asarray(arr)
    img = {
        "width": arr.shape[1],
        "height": arr.shape[0],
        "channels": 1 if arr.ndim == 2 else arr.shape[2],
        "dtype": str(arr.dtype),
        "encoding": "raw",
        "data": base64.b64encode(arr.astype(arr.dtype.newbyteorder("<")).tobytes()).decode(),
    }
    return json.dumps({"id": rid, "image": img, "spec": spec or {"seed": 0}}).encode()


def test_raw_images_decode_with_shape_and_dtype():
    gray16 = np.array([[0, 1, 65535], [256, 2, 3]], dtype=np.uint16)
    seen = {}

    def predict(image, spec):
        seen["image"] = image
        return "ok"

    handle_line(predict, request(gray16))
    assert seen["image"].dtype == np.uint16
    np.testing.assert_array_equal(seen["image"], gray16)
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    handle_line(predict, request(rgb))
    np.testing.assert_array_equal(seen["image"], rgb)


def test_numpy_results_become_json_and_errors_become_error_responses():
    def predict(image, spec):
        if spec.get("seed") == 1:
            raise RuntimeError("CUDA out of memory")
        p = np.array([0.25, 0.75], dtype=np.float32)
        return {
            "answer": "nodule",
            "probabilities": {"normal": p[0], "nodule": p[1]},
            "confidence": np.float64(0.75),
            "saliency": np.array([[0.0, 1.0]]),
            "trace": [{"step": "predict", "n": np.int64(3)}],
        }

    out = json.loads(handle_line(predict, request(np.zeros((2, 2), np.uint8))))
    assert out == {
        "id": "k1",
        "answer": "nodule",
        "probabilities": {"normal": 0.25, "nodule": 0.75},
        "confidence": 0.75,
        "saliency": {"width": 2, "height": 1, "values": [0.0, 1.0]},
        "trace": [{"step": "predict", "n": 3}],
    }
    err = json.loads(handle_line(predict, request(np.zeros((2, 2), np.uint8), spec={"seed": 1})))
    assert err == {"id": "k1", "error": "RuntimeError: CUDA out of memory"}
    bad = json.loads(handle_line(lambda i, s: 3, request(np.zeros((1, 1), np.uint8))))
    assert "predict must return a dict" in bad["error"]


def test_serve_writes_the_handshake_then_one_line_per_request():
    stdin = io.BytesIO(request(np.ones((2, 2), np.uint8), "a") + b"\n\n" + request(np.zeros((2, 2), np.uint8), "b") + b"\n")
    stdout = io.BytesIO()

    def predict(image, spec):
        return "bright" if image.mean() > 0.5 else "dark"

    serve(predict, model="m", version="7", settings={"t": 0.5}, stdin=stdin, stdout=stdout)
    lines = [json.loads(x) for x in stdout.getvalue().splitlines()]
    assert lines[0] == {"protocol": PROTOCOL, "model": "m", "version": "7", "settings": {"t": 0.5}}
    assert lines[1:] == [{"id": "a", "answer": "bright"}, {"id": "b", "answer": "dark"}]


def test_default_identity_hashes_the_defining_file():
    def predict(image, spec):
        return "x"

    hello = json.loads(handshake(predict))
    assert hello["model"].endswith("predict")
    assert hello["version"].startswith("sha256:")


def test_unknown_encoding_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown image encoding 'jpeg'"):
        decode_image({"encoding": "jpeg", "width": 1, "height": 1, "channels": 1, "dtype": "uint8"})
