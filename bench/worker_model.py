"""The model of the worker benchmark (bench/worker.sh), run two ways by the same code:

- per run (``[adapter] kind = "command"``): Clarity starts ``python3 worker_model.py --config
  spec.json --output DIR --seed N`` for every run (the R2L artifact contract): Python starts,
  imports numpy, "loads the model", reads the PNG, predicts, writes manifest.json and
  trace_pack.jsonl, exits;
- as a worker (``kind = "worker"``, no arguments): started once, ``serve(predict)``.

The model is a small numpy stand-in (a fixed random projection of the downsampled image, two
classes); ``load()`` stands for loading weights, which a real model pays once per process.
"""

import json
import sys
from pathlib import Path

import numpy as np

LABELS = ["normal", "nodule"]


def load():
    rng = np.random.default_rng(7)
    return rng.standard_normal((2, 32 * 32)) / 32.0


def make_predict(weights):
    def predict(image, spec):
        x = image.astype(np.float32) / np.iinfo(image.dtype).max
        if x.ndim == 3:
            x = x.mean(axis=2)
        h, w = x.shape
        x = x[: h - h % 32, : w - w % 32].reshape(32, h // 32, 32, w // 32).mean(axis=(1, 3))
        logits = weights @ (x.ravel() - x.mean())
        p = np.exp(logits - logits.max())
        p /= p.sum()
        return {"answer": LABELS[int(p.argmax())], "probabilities": dict(zip(LABELS, p.tolist()))}

    return predict


def per_run(argv):
    """One run under the command adapter's R2L contract."""
    from clarity_worker.image import decode_png

    args = dict(zip(argv[0::2], argv[1::2]))
    spec = json.loads(Path(args["--config"]).read_text())
    out = Path(args["--output"])
    out.mkdir(parents=True, exist_ok=True)
    image = decode_png(Path(spec["image_path"]).read_bytes())
    r = make_predict(load())(image, spec)
    seed = int(args["--seed"])
    manifest = {"run_id": f"seed-{seed}", "timestamp": "0", "seed": seed, "artifacts": []}
    (out / "manifest.json").write_text(json.dumps(manifest))
    p = r["probabilities"][r["answer"]]
    (out / "trace_pack.jsonl").write_text(
        json.dumps({"step": "predict", "answer": r["answer"], "confidence_score": p}) + "\n"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        per_run(sys.argv[1:])
    else:
        from clarity_worker import serve

        serve(make_predict(load()), model="bench-projection", version="1")
