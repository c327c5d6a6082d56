"""Reading a Clarity sweep directory into pandas.

``observations`` comes from ``observations.parquet`` when it exists and pyarrow is installed,
else from ``observations.jsonl`` (one run record per line). Either way each row is one run,
with the swept parameters as columns (from ``plan.json``), the case's label, and for JSONL the
observation's fields flattened (``answer``, ``confidence``, ``entropy``, ``justification``,
``p.<label>`` per class probability, ``metadata``) or the failure (``error``, ``attempts``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

PathLike = Union[str, Path]


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


def _flatten(rec: Dict[str, Any]) -> Dict[str, Any]:
    row = {k: rec.get(k) for k in ("key", "case_id", "cell", "seed")}
    outcome = rec.get("outcome") or {}
    row["status"] = outcome.get("status")
    if outcome.get("status") == "ok":
        obs = outcome.get("observation") or {}
        for k in ("answer", "justification", "confidence", "entropy"):
            row[k] = obs.get(k)
        for label, p in (obs.get("probabilities") or {}).items():
            row[f"p.{label}"] = p
        row["metadata"] = obs.get("metadata") or {}
    else:
        row["error"] = outcome.get("error")
        row["attempts"] = outcome.get("attempts")
    return row


def read_observations(sweep_dir: PathLike, *, prefer: str = "auto"):
    """One row per run as a pandas DataFrame. ``prefer``: ``"auto"`` (Parquet when present
    and readable, else JSONL), ``"parquet"`` or ``"jsonl"``."""
    pd = _pandas()
    d = Path(sweep_dir)
    plan = _load_plan(d)
    parquet, jsonl = d / "observations.parquet", d / "observations.jsonl"
    use_parquet = False
    if prefer == "parquet":
        if not parquet.is_file():
            raise FileNotFoundError(f"{parquet}: missing")
        use_parquet = True
    elif prefer == "auto" and parquet.is_file():
        try:
            import pyarrow  # noqa: F401

            use_parquet = True
        except ImportError:
            if not jsonl.is_file():
                raise ImportError(
                    f"{parquet} needs pyarrow to be read: pip install pyarrow"
                ) from None
    elif prefer not in ("auto", "jsonl"):
        raise ValueError(f"prefer must be 'auto', 'parquet' or 'jsonl', got {prefer!r}")

    if use_parquet:
        df = pd.read_parquet(parquet)
    else:
        if not jsonl.is_file():
            raise FileNotFoundError(
                f"{jsonl}: missing (and no observations.parquet); has the sweep finished?"
            )
        rows: List[Dict[str, Any]] = []
        with open(jsonl, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(_flatten(json.loads(line)))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{jsonl} line {n}: malformed JSON: {e}") from None
        df = pd.DataFrame(rows)

    # Swept parameters and labels from the plan, when the table does not carry them.
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
    """Loads ``plan.json``, the observations and every CSV table (``metrics.csv``,
    ``cases.csv``…) of a sweep directory."""
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
