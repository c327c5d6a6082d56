"""End to end: `clarity run` with Python workers, read back with read_sweep."""

import json
import signal
import subprocess
import time

import numpy as np
import pytest

from clarity_worker import read_observations, read_sweep
from conftest import sweep_config

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
    # A sealed sweep (storage format 2): the table, no journal, no JSONL copy.
    d = tmp_path / "out"
    assert (d / "observations.parquet").is_file()
    assert not (d / "journal.jsonl").exists() and not (d / "observations.jsonl").exists()
    assert df["saliency"].isna().all()
    # The worker's identity is the plan's adapter identity.
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    assert plan["adapter"]["model"] == "edge-energy"


def test_image_transports_agree_and_sweeps_are_byte_identical(tmp_path, clarity):
    w = tmp_path / "w.py"
    w.write_text(WORKER)
    tables = {}
    for image in ["raw", "png", "path", "raw"]:
        out = f"out-{image}-{len(tables)}"
        (tmp_path / f"{out}.toml").write_text(sweep_config(w, out, image=image))
        clarity("run", f"{out}.toml", "--quiet", cwd=tmp_path)
        tables[out] = (tmp_path / out / "observations.parquet").read_bytes()
    values = list(tables.values())
    # Same records, same bytes (PNG is lossless; the transport is not part of the content key;
    # two workers answer in any order, the table is in plan order).
    assert values[0] == values[1] == values[2] == values[3]


HOLDING_WORKER = """
import os, time
from clarity_worker import serve

calls = 0

def predict(image, spec):
    global calls
    calls += 1
    if os.path.exists("hold") and calls == 4:
        open("held", "w").close()   # three runs are done: the test interrupts the sweep now
        time.sleep(60)
    s = image.std() / image.max()
    return {"answer": "a" if s > 0.2 else "b", "probabilities": {"a": s, "b": 1 - s},
            "saliency": image[:4, :4] / image.max(), "metadata": {"mean": float(image.mean())}}

serve(predict, model="holding", version="1")
"""


def test_an_interrupted_sweep_reads_from_its_journal_like_the_sealed_table(
    tmp_path, clarity_exe, clarity
):
    """read_observations on an unfinished sweep (journal.jsonl) gives the rows that the sealed
    observations.parquet has for the same runs, saliency and metadata included."""
    w = tmp_path / "w.py"
    w.write_text(HOLDING_WORKER)
    (tmp_path / "s.toml").write_text(sweep_config(w, "out", workers=1))
    (tmp_path / "hold").touch()
    proc = subprocess.Popen([clarity_exe, "run", "s.toml", "--quiet"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "held").exists():
            assert proc.poll() is None, f"the sweep ended early: {proc.communicate()}"
            assert time.monotonic() < deadline, "the worker never reached the held case"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = tmp_path / "out"
    assert (out / "journal.jsonl").is_file() and not (out / "observations.parquet").exists()
    partial = read_observations(out)
    assert 0 < len(partial) < 6 and (partial["status"] == "ok").all()

    (tmp_path / "hold").unlink()
    clarity("run", "s.toml", "--quiet", cwd=tmp_path)  # resumes, then seals
    assert not (out / "journal.jsonl").exists()
    sealed = read_observations(out).set_index("key")
    assert len(sealed) == 6
    for _, row in partial.iterrows():
        other = sealed.loc[row["key"]]
        for col in ["case_id", "cell", "seed", "status", "answer", "confidence", "entropy",
                    "p.a", "p.b", "metadata", "gaussian_blur.sigma", "label"]:
            assert row[col] == other[col], col
        assert row["saliency"].shape == (4, 4) and row["saliency"].dtype == np.float32
        np.testing.assert_array_equal(row["saliency"], other["saliency"])


def test_missing_plan_or_records_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="plan.json: missing"):
        read_sweep(tmp_path)
    (tmp_path / "plan.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="no observations.parquet .*run the sweep first"):
        read_sweep(tmp_path)


def test_a_malformed_journal_line_names_the_file_and_line(tmp_path):
    (tmp_path / "plan.json").write_text("{}")
    (tmp_path / "journal.jsonl").write_text('{"key": "k"}\nnot json\n{"key": "j"}\n')
    with pytest.raises(ValueError, match=r"journal.jsonl line 2: malformed JSON"):
        read_observations(tmp_path)
    # A torn last line (the sweep was killed mid-write) is dropped, as Clarity does.
    rec = '{"key": "k", "case_id": "c", "cell": 0, "seed": 0, "outcome": {"status": "ok"}}'
    (tmp_path / "journal.jsonl").write_text(rec + '\n{"ke')
    assert list(read_observations(tmp_path)["key"]) == ["k"]
