"""Reading a Clarity sweep directory into pandas.

Whatever the sweep directory's storage format, ``observations`` has one row per run with the
same columns: ``key``, ``case_id``, ``cell``, ``seed``, ``status``; for runs that succeeded the
observation's fields (``answer``, ``justification``, ``confidence``, ``entropy``,
``p.<label>`` per class probability, ``metadata`` as a dict, ``saliency`` as a float32 array
``(height, width)`` or None); for failed runs ``error`` and ``attempts``; then the swept
parameters as columns (from ``plan.json``), ``is_baseline`` and the case's ``label``.

Where the records are read from, in this order (as Clarity's own reader, ``SweepRecords``):

1. ``observations.parquet`` — a sealed sweep (storage format 2; needs pyarrow), plan order;
2. ``observations.jsonl`` — a sealed sweep of format 1 (older versions), plan order;
3. ``journal.jsonl`` — a sweep still running or interrupted: the runs finished so far.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

PathLike = Union[str, Path]

PARQUET, LEGACY_JSONL, JOURNAL = "observations.parquet", "observations.jsonl", "journal.jsonl"

_OBS_FIELDS = ("answer", "justification", "confidence", "entropy")


def _pandas():
    try:
        import pandas as pd
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading sweeps needs pandas: pip install pandas") from e
    return pd


def _load_plan(d: Path) -> Dict[str, Any]:
    p = d / "plan.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: missing; is {d} a Clarity sweep directory?")
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def _cell_columns(plan: Dict[str, Any]) -> Dict[int, Dict[str, Any]]:
    axes = plan.get("axes", [])
    out = {}
    for cell in plan.get("cells", []):
        row = {"is_baseline": bool(cell.get("is_baseline", False))}
        for axis, i in zip(axes, cell.get("coords", [])):
            row[axis["name"]] = axis["values"][i]
        out[int(cell["index"])] = row
    return out


def _saliency_array(width: Any, height: Any, values: Any):
    import numpy as np

    if width is None or height is None or values is None:
        return None
    if isinstance(values, (bytes, bytearray, memoryview)):
        arr = np.frombuffer(bytes(values), dtype="<f4").astype(np.float32)
    else:
        arr = np.asarray(values, dtype=np.float32)
    return arr.reshape(int(height), int(width))


def _flatten(rec: Dict[str, Any]) -> Dict[str, Any]:
    """One JSONL run record (format 1 table or journal line) as a row."""
    row = {k: rec.get(k) for k in ("key", "case_id", "cell", "seed")}
    outcome = rec.get("outcome") or {}
    row["status"] = outcome.get("status")
    if outcome.get("status") == "ok":
        obs = outcome.get("observation") or {}
        for k in _OBS_FIELDS:
            row[k] = obs.get(k)
        for label, p in (obs.get("probabilities") or {}).items():
            row[f"p.{label}"] = p
        row["metadata"] = obs.get("metadata") or {}
        s = obs.get("saliency")
        row["saliency"] = _saliency_array(s["width"], s["height"], s["values"]) if s else None
    else:
        row["error"] = outcome.get("error")
        row["attempts"] = outcome.get("attempts")
    return row


def _parquet_rows(path: Path) -> List[Dict[str, Any]]:
    """The format-2 table's rows, its JSON columns expanded like the JSONL records."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"{path} needs pyarrow to be read: pip install pyarrow") from None
    rows = []
    for n, r in enumerate(pq.read_table(path).to_pylist()):
        row = {k: r.get(k) for k in ("key", "case_id", "cell", "seed", "status")}
        if r.get("status") == "ok":
            for k in _OBS_FIELDS:
                row[k] = r.get(k)
            try:
                probs = json.loads(r["probabilities_json"]) if r.get("probabilities_json") else {}
                meta = json.loads(r["metadata_json"]) if r.get("metadata_json") else {}
            except json.JSONDecodeError as e:
                raise ValueError(f"{path} row {n}: malformed JSON column: {e}") from None
            for label, p in probs.items():
                row[f"p.{label}"] = p
            row["metadata"] = meta
            row["saliency"] = _saliency_array(
                r.get("saliency_width"), r.get("saliency_height"), r.get("saliency")
            )
        else:
            row["error"] = r.get("error")
            row["attempts"] = r.get("attempts")
        rows.append(row)
    return rows


def _jsonl_rows(path: Path, journal: bool) -> List[Dict[str, Any]]:
    rows: Dict[Any, Dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if journal and n == len(lines) and not line.endswith("\n"):
                break  # a torn last line of a running sweep's journal
            raise ValueError(f"{path} line {n}: malformed JSON: {e}") from None
        # The journal may hold a run twice (run again after a damaged line): the last wins.
        rows[rec.get("key", n) if journal else n] = _flatten(rec)
    return list(rows.values())


def records_file(sweep_dir: PathLike) -> Path:
    """The file the observations are read from (see the module docs), or FileNotFoundError."""
    d = Path(sweep_dir)
    for name in (PARQUET, LEGACY_JSONL, JOURNAL):
        if (d / name).is_file():
            return d / name
    raise FileNotFoundError(
        f"{d}: no {PARQUET} (or {LEGACY_JSONL}, {JOURNAL}): no run is recorded there; "
        "run the sweep first"
    )


def read_observations(sweep_dir: PathLike):
    """One row per run as a pandas DataFrame (see the module docs for the columns)."""
    pd = _pandas()
    d = Path(sweep_dir)
    plan = _load_plan(d)
    path = records_file(d)
    if path.name == PARQUET:
        rows = _parquet_rows(path)
    else:
        rows = _jsonl_rows(path, journal=path.name == JOURNAL)
    df = pd.DataFrame(rows)

    # Swept parameters and labels from the plan.
    if "cell" in df.columns and len(df):
        cells = _cell_columns(plan)
        extra = pd.DataFrame([cells.get(int(c), {}) for c in df["cell"]], index=df.index)
        for col in extra.columns:
            if col not in df.columns:
                df[col] = extra[col]
    if "case_id" in df.columns and "label" not in df.columns:
        labels = {c["id"]: c.get("label") for c in plan.get("cases", [])}
        df["label"] = df["case_id"].map(labels)
    return df


@dataclass
class Sweep:
    """A sweep directory's tables."""

    path: Path
    plan: Dict[str, Any]
    observations: Any
    metrics: Optional[Any] = None
    cases: Optional[Any] = None
    tables: Dict[str, Any] = field(default_factory=dict)

    @property
    def axes(self) -> List[str]:
        return [a["name"] for a in self.plan.get("axes", [])]


def read_sweep(sweep_dir: PathLike) -> Sweep:
    """Loads ``plan.json``, the observations (:func:`read_observations`) and every CSV table
    (``metrics.csv``, ``cases.csv``…) of a sweep directory."""
    pd = _pandas()
    d = Path(sweep_dir)
    plan = _load_plan(d)
    tables = {p.stem: pd.read_csv(p) for p in sorted(d.glob("*.csv"))}
    return Sweep(
        path=d,
        plan=plan,
        observations=read_observations(d),
        metrics=tables.get("metrics"),
        cases=tables.get("cases"),
        tables=tables,
    )
