"""Reading what the app browses: generated datasets and evaluation reports (pure, no Streamlit).

Datasets are directories written by ``homepilot generate`` (``sim.dataset``): a ``README.md``
card and ``data/<config>/<split>-NNNNN-of-MMMMM.parquet`` with the columns of ``sim.dataset.schema``.
Reports are directories written by ``agent.report.write_report``: ``report.json`` (keys listed
in ``agent.report``), ``report.md`` and PNG plots.

Every reader raises ``BrowseError`` with one line naming the file and what is wrong, which the
pages show in an error box.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.dataset import files
from sim.dataset.schema import SCHEMAS, SPLITS

DEMO_CACHE = Path.home() / ".cache" / "homepilot" / "demo_data"  # tiny dataset made when none is given


class BrowseError(ValueError):
    """A dataset or report directory that cannot be read; the message says which file and why."""


# ---------------------------------------------------------------- datasets


@dataclass
class DatasetSummary:
    """What a dataset directory holds: rows per config and split, and its card."""

    root: Path
    rows: dict[str, dict[str, int]]  # config -> split -> rows
    card: str = ""

    @property
    def configs(self) -> list[str]:
        return list(self.rows)


def summarize_dataset(root: str | Path) -> DatasetSummary:
    """Row counts from the parquet footers (no data read) and the card text."""
    import pyarrow.parquet as pq

    root = Path(root)
    data = root / "data"
    if not data.is_dir():
        raise BrowseError(f"{root} is not a dataset directory: it has no data/ folder")
    rows: dict[str, dict[str, int]] = {}
    for config in SCHEMAS:
        for split in SPLITS:
            try:
                shards = files.split_files(root, config, split, required=False)
            except files.DatasetError as e:
                raise BrowseError(str(e)) from None
            for f in shards:
                try:
                    n = pq.ParquetFile(f).metadata.num_rows
                except Exception as e:
                    raise BrowseError(f"{f} is not a readable parquet file: {type(e).__name__}: {e}") from None
                rows.setdefault(config, {}).setdefault(split, 0)
                rows[config][split] += n
    if not rows:
        raise BrowseError(f"{data} holds no parquet shards")
    card = (root / "README.md").read_text() if (root / "README.md").exists() else ""
    return DatasetSummary(root, rows, card)


def read_rows(root: str | Path, config: str, split: str, columns: list[str] | None = None,
              where: Callable[[dict[str, Any]], bool] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of one config/split as dicts (``sim.dataset.files.read_rows``, the one strict reader),
    optionally filtered and capped; its ``DatasetError`` becomes a ``BrowseError`` with the same words."""
    try:
        rows = files.read_rows(root, config, split, columns)
    except files.DatasetError as e:
        raise BrowseError(str(e)) from None
    rows = [r for r in rows if where is None or where(r)]
    return rows if limit is None else rows[:limit]


def homes(root: str | Path) -> list[dict[str, Any]]:
    """One row per home across splits: id, split, devices, bucket, climate, rooms, residents."""
    s = summarize_dataset(root)
    out = []
    for split in s.rows.get("homes", {}):
        for r in read_rows(root, "homes", split):
            out.append({"home_id": r["home_id"], "split": r["split"], "n_devices": r["n_devices"],
                        "bucket": r["bucket"], "climate_zone": r["climate_zone"], "rooms": ", ".join(r["rooms"]),
                        "residents": ", ".join(r["residents"])})
    return sorted(out, key=lambda r: r["home_id"])


def operations(root: str | Path, home_id: str, split: str, limit: int = 500) -> list[dict[str, Any]]:
    """A home's operation records (time, user, source, logged, actions, description)."""
    cols = ["home_id", "time", "user", "source", "logged", "actions", "description"]
    return [{k: r[k] for k in cols[1:]} for r in read_rows(root, "operations", split, columns=cols,
                                                          where=lambda r: r["home_id"] == home_id, limit=limit)]


@dataclass
class SubsetCounts:
    """Rows per sub-dataset key (paper Table 2 columns) of one config/split."""

    by_bucket: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    n: int = 0


def subsets(root: str | Path, config: str = "sft", split: str = "test") -> SubsetCounts:
    """Count rows per device-count bucket and per operated category (a row counts in each)."""
    rows = read_rows(root, config, split, columns=["bucket", "categories"])
    b = Counter(r["bucket"] for r in rows)
    c = Counter(cat for r in rows for cat in (r["categories"] or []))
    return SubsetCounts(dict(sorted(b.items())), dict(sorted(c.items())), len(rows))


def ensure_demo_data(cache: str | Path = DEMO_CACHE, progress: Callable[[float, str], None] | None = None) -> Path:
    """A tiny dataset in ``cache`` (generated once; a re-run resumes or finds it finished)."""
    from sim.dataset.build import DatasetConfig, build

    cfg = DatasetConfig(preset="tiny", out=str(cache), workers=1)
    state = {"total": 1, "done": 0}

    def on_plan(total: int, todo: int) -> None:
        state["total"], state["done"] = max(total, 1), total - todo
        if progress is not None:
            progress(state["done"] / state["total"], f"generating a tiny dataset: {state['done']}/{total} shards")

    def on_done(shard: Any, counts: dict[str, int]) -> None:
        state["done"] += 1
        if progress is not None:
            progress(min(1.0, state["done"] / state["total"]),
                     f"generating a tiny dataset: {state['done']}/{state['total']} shards")

    build(cfg, on_done=on_done, on_plan=on_plan)
    return Path(cache)


# ---------------------------------------------------------------- the dataset card

_IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def split_card(text: str) -> tuple[str, str]:
    """(YAML front matter without its ``---`` fences, Markdown body) of a dataset card; the front
    matter is "" when the card has none. Rendered as Markdown the header would become bullets."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return "", text
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            return "".join(lines[1:i]).rstrip("\n"), "".join(lines[i + 1:]).lstrip("\n")
    return "", text


@dataclass(frozen=True)
class CardImage:
    """An image the card refers to, resolved against the dataset directory (``exists`` False
    when the file is missing or the reference leaves the directory)."""

    alt: str
    ref: str
    path: Path
    exists: bool


def card_blocks(body: str, root: str | Path) -> list[str | CardImage]:
    """The card body cut into Markdown text and images (``![alt](stats/x.png)``): a browser cannot
    load a path relative to the dataset directory, so the page draws the images from disk."""
    root = Path(root).resolve()
    out: list[str | CardImage] = []
    pos = 0
    for m in _IMAGE.finditer(body):
        text = body[pos:m.start()]
        if text.strip():
            out.append(text)
        ref = m.group(2)
        path = (root / ref).resolve()
        inside = path == root or root in path.parents
        out.append(CardImage(m.group(1), ref, path, inside and path.is_file() and "://" not in ref))
        pos = m.end()
    if body[pos:].strip():
        out.append(body[pos:])
    return out


# ---------------------------------------------------------------- reports


@dataclass
class ReportView:
    """An evaluation report directory, loaded."""

    root: Path
    report: dict[str, Any]
    markdown: str
    images: list[Path]


def load_report(root: str | Path) -> ReportView:
    root = Path(root)
    path = root / "report.json"
    if not path.is_file():
        raise BrowseError(f"{root} is not a report directory: it has no report.json")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BrowseError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(report, dict):
        raise BrowseError(f"{path} must hold a JSON object, got {type(report).__name__}")
    md = (root / "report.md").read_text() if (root / "report.md").is_file() else ""
    return ReportView(root, report, md, sorted(root.glob("*.png")))


def _num(x: Any, digits: int = 3) -> float | None:
    """A finite number rounded to ``digits`` decimals (-0.0 shown as 0.0), else None."""
    if not (isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)):
        return None
    return round(float(x), digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def over_seeds(report: dict[str, Any]) -> bool:
    """True for a ``homepilot reproduce`` report: every figure is a summary over seeds,
    ``{mean, std, lo, hi, n}`` (``agent.metrics.across_seeds``), instead of a number."""
    return "per_seed_reports" in report or any(
        isinstance(v, dict) and "mean" in v for m in (report.get("whole") or {}).values() if isinstance(m, dict)
        for v in m.values())


def _value(x: Any) -> Any:
    """A figure as a number: a summary over seeds gives its mean."""
    return x.get("mean") if isinstance(x, dict) and "mean" in x else x


def _ci(m: dict[str, Any], metric: str) -> str:
    x = m.get(metric)
    if isinstance(x, dict) and "lo" in x:  # over seeds: the 95% t-interval of the mean
        ci = [x.get("lo"), x.get("hi")]
    else:
        ci = (m.get("ci95") or {}).get(metric)
    if not (isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_num(v) is not None for v in ci)):
        return ""
    return f"[{_num(ci[0]):.3f}, {_num(ci[1]):.3f}]"


def whole_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Whole-test-set metrics per method, in the paper's order: method, EM-Acc, LM-F1, Rule (each
    rounded to 3 decimals, with its 95% CI where the report has one), n (test contexts). A report
    over seeds (``over_seeds``) gives each metric's mean, its standard deviation over seeds
    (``EM-Acc sd``...), the 95% t-interval of the mean and n = the seeds."""
    from agent.report import METRIC_NAMES, METRICS

    whole = report.get("whole") or {}
    seeds = over_seeds(report)
    with_ci = any(_ci(m, k) for m in whole.values() for k in METRICS)
    out = []
    for method, m in whole.items():
        row: dict[str, Any] = {"method": method}
        for k in METRICS:
            row[METRIC_NAMES[k]] = _num(_value(m.get(k)))
        if seeds:
            for k in METRICS:
                row[f"{METRIC_NAMES[k]} sd"] = _num((m.get(k) or {}).get("std") if isinstance(m.get(k), dict) else None)
        if with_ci:
            for k in METRICS:
                row[f"{METRIC_NAMES[k]} 95% CI"] = _ci(m, k)
        row["n"] = (m.get("em_acc") or {}).get("n") if seeds and isinstance(m.get("em_acc"), dict) else m.get("n")
        out.append(row)
    return out


def subset_columns(report: dict[str, Any]) -> list[str]:
    """Table 2's sub-dataset columns in the paper's order: device-count buckets, the paper's
    categories (Light, Switch, Camera, Warmer, AC), then the report's other categories, Whole last."""
    from agent.report import TABLE2_COLUMNS

    present: list[str] = []
    for subsets_ in (report.get("by_subset") or {}).values():
        for sub in subsets_:
            if sub not in present:
                present.append(sub)
    head = [c for c in TABLE2_COLUMNS if c in present and c != "Whole"]
    rest = sorted(c for c in present if c not in TABLE2_COLUMNS)
    return head + rest + (["Whole"] if "Whole" in present else [])


def subset_rows(report: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    """Paper Table 2 for one metric: a row per method, a column per sub-dataset (``subset_columns``
    order), rounded to 3 decimals."""
    cols = subset_columns(report)
    out = []
    for method, subsets_ in (report.get("by_subset") or {}).items():
        row: dict[str, Any] = {"method": method}
        for sub in cols:
            m = subsets_.get(sub)
            row[f"DC {sub}" if sub[:1].isdigit() else sub] = _num(_value(m.get(metric))) if isinstance(m, dict) else None
        out.append(row)
    return out


SENSITIVITY_STUDIES = {"model_size": "Model size (Fig. 7b)", "context_length": "History window at training (Fig. 7c)",
                       "history_length": "History window at test (Fig. 7d)"}


def sensitivity_rows(report: dict[str, Any], study: str) -> list[dict[str, Any]]:
    """One sensitivity study of a reproduce report (``SENSITIVITY_STUDIES``) as table rows: what
    varies (preset and parameters, or the history window k), EM-Acc, LM-F1, Rule, 95% CI of EM-Acc,
    distinct answers per 100, top answer share; ``[]`` when the report has no such study."""
    from agent.report import METRIC_NAMES, METRICS

    rows = []
    for r in ((report.get("sensitivity") or {}).get(study) or {}).get("rows") or []:
        row: dict[str, Any] = ({"preset": r.get("preset"), "parameters": r.get("n_parameters")} if study == "model_size"
                               else {"history k": r.get("history_k")})
        row.update({METRIC_NAMES[k]: _num(r.get(k)) for k in METRICS})
        row["EM-Acc 95% CI"] = _ci(r, "em_acc")
        row.update({"distinct per 100": _num(r.get("distinct_per_100"), 1),
                    "top answer share": _num(r.get("top_answer_share"))})
        rows.append(row)
    return rows


def goal_lines(report: dict[str, Any]) -> list[tuple[str, bool]]:
    """A reproduce report's goal verdicts (``goal``), one (line, met) each: what is compared, met or not."""
    out = []
    for name, g in (report.get("goal") or {}).items():
        if not isinstance(g, dict):
            continue
        verdict = "met" if g.get("met") else "not met"
        who = g.get("methods") or [g.get("method"), g.get("baseline")]
        held = [k for k, v in (g.get("metrics") or {}).items() if isinstance(v, dict) and v.get("holds")]
        out.append((f"{name.replace('_', ' ')} ({' vs '.join(str(w) for w in who if w)}): {verdict}"
                    f" (holds on: {', '.join(held) or 'no metric'})", bool(g.get("met"))))
    return out


def curve_rows(report: dict[str, Any]) -> list[dict[str, float]]:
    """The exposure curve (Fig. 7a): threshold, exposure rate, acceptance rate (means over seeds
    for a report over seeds)."""
    rows = []
    for p in report.get("exposure_curve") or []:
        t, e, a = (_num(_value(p.get(k)), 6) for k in ("threshold", "exposure_rate", "acceptance_rate"))
        if t is not None:
            rows.append({"threshold": t, "exposure_rate": e, "acceptance_rate": a})
    return rows
