"""End to end: `clarity run` with Python workers, read back with read_sweep."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from clarity_worker import read_observations, read_sweep
from conftest import REPO, sweep_config

WORKER = '''
import numpy as np
from clarity_worker import serve

def predict(image, spec):
    x = image.astype(np.float64) / np.iinfo(image.dtype).max
    # An edge-energy statistic: blur lowers it, so answers flip along the axis.
    e = float(np.abs(np.diff(x, axis=1)).mean())
    p = 1.0 / (1.0 + np.exp(-(e - 0.02) * 400))
    print("this print must not break the protocol")
    return {"answer": "sharp" if p > 0.5 else "blurred",
            "probabilities": {"sharp": p, "blurred": 1 - p},
            "justification": f"edge energy {e:.4f}",
            "trace": [{"step": "edge_energy", "value": e}],
            "metadata": {"shape": list(image.shape), "dtype": str(image.dtype),
                         "blur": spec["perturbations"][0]["params"] if spec["perturbations"] else None}}

serve(predict, model="edge-energy", version="1")
'''


def test_a_sweep_with_python_workers_reads_back_into_pandas(tmp_path, clarity):
    w = tmp_path / "w.py"
    w.write_text(WORKER)
    (tmp_path / "s.toml").write_text(sweep_config(w, "out"))
    clarity("run", "s.toml", "--quiet", cwd=tmp_path)
    sweep = read_sweep(tmp_path / "out")
    df = sweep.observations
    assert len(df) == 6 and (df["status"] == "ok").all()
    assert sweep.axes == ["gaussian_blur.sigma"]
    assert sorted(df["gaussian_blur.sigma"].unique()) == [0.0, 1.0, 3.0]
    assert set(df["answer"]) <= {"sharp", "blurred"}
    assert np.allclose(df["p.sharp"] + df["p.blurred"], 1.0)
    # confidence = p[answer], filled by Clarity from the probabilities.
    for _, r in df.iterrows():
        assert r["confidence"] == pytest.approx(r[f"p.{r['answer']}"], abs=1e-6)
    assert df["metadata"].map(lambda m: m["trace"][0]["step"]).eq("edge_energy").all()
    assert sweep.metrics is not None and len(sweep.metrics)
    # The worker's identity is the plan's adapter identity.
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["adapter"]["model"] == "edge-energy"


def test_image_transports_agree_and_sweeps_are_byte_identical(tmp_path, clarity):
    w = tmp_path / "w.py"
    w.write_text(WORKER)
    texts = {}
    for image in ["raw", "png", "path", "raw"]:
        out = f"out-{image}-{len(texts)}"
        (tmp_path / f"{out}.toml").write_text(sweep_config(w, out, image=image))
        clarity("run", f"{out}.toml", "--quiet", cwd=tmp_path)
        texts[out] = (tmp_path / out / "observations.jsonl").read_text()
    values = list(texts.values())
    # Same answers (PNG is lossless; the transport is not part of the content key).
    assert values[0] == values[1] == values[2]
    assert values[0] == values[3]


def test_parquet_observations_are_read_when_present(tmp_path, clarity):
    pytest.importorskip("pyarrow", reason="SKIPPED: pyarrow is not installed")
    w = tmp_path / "w.py"
    w.write_text(WORKER)
    (tmp_path / "s.toml").write_text(sweep_config(w, "out"))
    clarity("run", "s.toml", "--quiet", cwd=tmp_path)
    d = tmp_path / "out"
    jsonl = read_observations(d, prefer="jsonl")
    if not (d / "observations.parquet").exists():
        # This Clarity writes JSONL only: write the same table as Parquet to read it back.
        jsonl.drop(columns=["metadata"]).to_parquet(d / "observations.parquet")
    pq = read_observations(d)
    assert len(pq) == len(jsonl)
    assert list(pq["key"]) == list(jsonl["key"])
    assert "gaussian_blur.sigma" in pq.columns


def test_missing_plan_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="plan.json: missing"):
        read_sweep(tmp_path)


def docs_example():
    text = (REPO / "docs" / "adapters.md").read_text()
    m = re.search(r"<!-- pytorch-in-10-lines -->\s*```python\n(.*?)```", text, re.S)
    assert m, "docs/adapters.md lost its 'your PyTorch model in 10 lines' example"
    return m.group(1)


def test_the_docs_pytorch_in_10_lines_example_runs(tmp_path, clarity):
    code = docs_example()
    body = [l for l in code.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert len(body) <= 10, f"the example has {len(body)} lines of code"
    w = tmp_path / "my_worker.py"
    w.write_text(code)
    (tmp_path / "s.toml").write_text(sweep_config(w, "out", workers=1))
    clarity("run", "s.toml", "--quiet", cwd=tmp_path)
    df = read_observations(tmp_path / "out")
    assert (df["status"] == "ok").all()
    assert set(df["answer"]) <= {"normal", "nodule"}
    assert df["confidence"].between(0.5, 1.0).all()
