"""Dataset generation speed: the paper preset on 2 workers, scaling with size, ray vs local.

    python benchmarks/gen_speed.py --out benchmarks/results [--repeats 3] [--skip-paper]

Writes ``gen_speed.json`` and ``gen_speed.md``:
- ``paper_preset_seconds``: wall time of ``--preset paper --workers 2`` (one run: it is the long one);
- ``operations_per_s``: operation records (logged and unlogged) written per second in that run;
- ``scaling``: median seconds over ``repeats`` for 3 sizes (homes x days = 8, 16, 32 homes x 28 days),
  and ``scaling_cpu_seconds`` (CPU time of the run and its workers: unaffected by other load);
- ``ray_over_local``: median time ratio ray / local for the middle size, measured in the same run
  (ray's time includes starting its local cluster).
Goal: the paper preset in <= 120 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.dataset.build import DatasetConfig, build  # noqa: E402

SIZES = (8, 16, 32)  # homes, at SCALING_DAYS days each
SCALING_DAYS = 28


def cpu_seconds() -> float:
    """User + system CPU of this process and its reaped children (the local engine's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(cfg: DatasetConfig) -> tuple[float, dict[str, int]]:
    shutil.rmtree(cfg.out, ignore_errors=True)
    t0 = time.perf_counter()
    result = build(cfg)
    return time.perf_counter() - t0, result.rows


def small(tmp: Path, homes: int, engine: str = "local") -> DatasetConfig:
    return DatasetConfig(out=str(tmp / f"{engine}-{homes}"), preset="quickstart", homes=homes, days=SCALING_DAYS,
                         workers=2, engine=engine)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-paper", action="store_true", help="leave out the paper preset (a few minutes)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
                 "workers": 2, "repeats": args.repeats, "load_average_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        scaling, scaling_cpu = {}, {}
        for homes in SIZES:
            runs, cpus = [], []
            for _ in range(args.repeats):
                c0 = cpu_seconds()
                runs.append(timed(small(tmp, homes))[0])
                cpus.append(cpu_seconds() - c0)
            key = f"{homes}x{SCALING_DAYS}"
            scaling[key], scaling_cpu[key] = round(statistics.median(runs), 2), round(statistics.median(cpus), 2)
            print(f"scaling {key}: {scaling[key]} s wall, {scaling_cpu[key]} CPU s", flush=True)
        res["scaling"] = scaling
        res["scaling_cpu_seconds"] = scaling_cpu  # load-independent: linear growth shows here
        ratios = []
        for _ in range(args.repeats):
            t_local = timed(small(tmp, SIZES[1]))[0]
            t_ray = timed(small(tmp, SIZES[1], "ray"))[0]
            ratios.append(t_ray / t_local)
        res["ray_over_local"] = round(statistics.median(ratios), 2)
        print(f"ray/local: {res['ray_over_local']}", flush=True)
        if not args.skip_paper:
            cfg = DatasetConfig(out=str(tmp / "paper"), preset="paper", workers=2)
            c0 = cpu_seconds()
            seconds, rows = timed(cfg)
            # the CPU time is what the run costs on an idle machine: cpu/2 is its 2-core wall time
            res["paper_preset_cpu_seconds"] = round(cpu_seconds() - c0, 1)
            ops = sum(v for k, v in rows.items() if k.startswith("operations/"))
            res["paper_preset_seconds"] = round(seconds, 1)
            res["operations_per_s"] = round(ops / seconds, 1)
            res["paper_rows"] = rows
            pretrain_ops = sum(t.count("<op>") for t in _pretrain_texts(Path(cfg.out)))
            res["paper_pretrain_operations"] = pretrain_ops
            res["paper_goal_met"] = seconds <= 120
            res["paper_test_buckets"] = _test_buckets(Path(cfg.out))  # paper's mix: 970:1037:1650:1225
            print(f"paper preset: {seconds:.1f} s, {res['operations_per_s']} operations/s", flush=True)
    res["load_average_end"] = round(os.getloadavg()[0], 2)  # other work on the box inflates wall times
    (out / "gen_speed.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    (out / "gen_speed.md").write_text(_markdown(res))


def _pretrain_texts(root: Path):
    import pyarrow.parquet as pq

    for p in sorted((root / "data" / "pretrain").glob("train-*.parquet")):
        yield from pq.read_table(p, columns=["text"]).column("text").to_pylist()


def _test_buckets(root: Path) -> dict[str, int]:
    """SFT test + test_unseen rows per device-count bucket."""
    from collections import Counter

    import pyarrow.parquet as pq

    c: Counter = Counter()
    for p in sorted((root / "data" / "sft").glob("test*.parquet")):
        c.update(pq.read_table(p, columns=["bucket"]).column("bucket").to_pylist())
    return {b: c.get(b, 0) for b in ("1-5", "6-10", "11-20", "20+")}


def _markdown(res: dict) -> str:
    lines = ["# Dataset generation speed", "", f"Machine: {res['machine']}; 2 workers; medians of {res['repeats']} runs; "
             f"1-min load average {res['load_average_start']} at the start, {res['load_average_end']} at the end.", ""]
    if "paper_preset_seconds" in res:
        lines += [f"- paper preset: **{res['paper_preset_seconds']} s** wall (goal <= 120 s: "
                  f"{'met' if res['paper_goal_met'] else 'missed'}), {res['paper_preset_cpu_seconds']} CPU s "
                  f"(= {res['paper_preset_cpu_seconds'] / 2:.0f} s on 2 idle cores), {res['operations_per_s']} operations/s, "
                  f"{res['paper_pretrain_operations']} pre-training operations",
                  "- paper rows: " + ", ".join(f"{k} {v}" for k, v in res["paper_rows"].items()),
                  "- paper test rows (sft test + test_unseen) per bucket 1-5/6-10/11-20/20+: "
                  + ":".join(str(v) for v in res["paper_test_buckets"].values()) + " (paper: 970:1037:1650:1225)"]
    lines += [f"- ray / local time ratio ({SIZES[1]} homes x {SCALING_DAYS} days, ray includes its start-up): "
              f"{res['ray_over_local']}", "", "| homes x days | seconds |", "|---|---|"]
    lines[-2:] = ["| homes x days | seconds (wall) | CPU seconds |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {res['scaling_cpu_seconds'][k]} |" for k, v in res["scaling"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
