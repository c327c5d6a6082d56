"""docs/adapters.md's "Your PyTorch model in 10 lines", executed as written in a real sweep
(the block is read from the markdown, so the doc cannot drift from what works)."""

import re

from clarity_worker import read_observations
from conftest import REPO, sweep_config

MARKER = "<!-- pytorch-in-10-lines -->"


def docs_example():
    text = (REPO / "docs" / "adapters.md").read_text(encoding="utf-8")
    m = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", text, re.S)
    assert m, f"docs/adapters.md lost its 'your PyTorch model in 10 lines' example ({MARKER})"
    return m.group(1)


def test_the_docs_pytorch_in_10_lines_example_runs_a_sweep(tmp_path, clarity):
    code = docs_example()
    body = [l for l in code.splitlines() if l.strip() and not l.strip().startswith("#")]
    assert len(body) <= 10, f"the example has {len(body)} lines of code"
    w = tmp_path / "my_worker.py"
    w.write_text(code)
    (tmp_path / "s.toml").write_text(
        sweep_config(w, "out", workers=1, axes='"gaussian_blur.sigma" = [2, 8]')
    )
    clarity("run", "s.toml", "--quiet", cwd=tmp_path)
    df = read_observations(tmp_path / "out")
    assert len(df) == 6 and (df["status"] == "ok").all(), df.get("error")
    assert set(df["answer"]) <= {"normal", "nodule"}
    # The model's probabilities reach the table; confidence is p[answer].
    assert (df["p.normal"] + df["p.nodule"]).round(6).eq(1).all()
    assert df["confidence"].between(0.5, 1.0).all()
    assert (df["confidence"] == df[["p.normal", "p.nodule"]].max(axis=1)).all()
