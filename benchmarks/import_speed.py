"""Import speed: ``homepilot import-log`` on synthetic real-home logs of 1, 4 and 16 MB.

    python benchmarks/import_speed.py --out benchmarks/results [--sizes 1,4,16] [--big 50]

Writes ``import_speed.json`` and ``import_speed.md``: per size, rows, seconds (wall and CPU),
rows/s (per wall and per CPU second) and peak RSS of one import (``sim.dataset.importer.main``:
read, rows, parquet, card), each in its own subprocess (peak RSS is the child's ``ru_maxrss``, not
inflated by earlier sizes); ``ratio_16mb_over_4mb`` is the wall-time ratio (goal <= 5: near-linear
for 4x the rows) and ``ratio_16mb_over_4mb_cpu`` the CPU-time one (unaffected by other load on a
shared machine). ``--big 50`` also times one 50 MB import (goal <= 5 min on 2 cores, <= 2 GB RSS).

The logs (``write_log``) have the events CSV format of ``sim.dataset.importer``: one apartment,
8 rooms, 22 devices, a day of ~2,500 rows (the density of the issue's 50 MB / 909k-row year):
daily routines with jitter and skipped days (as ``tests/agent/test_imported_log.py``), evening
tweaks, voice and physical toggles, multi-action scenes, and motion/schedule automations, the
bulk of a real log. About a fifth of the rows are user operations (app, voice, physical).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HEADER = "timestamp,room,device,device_type,field,value,source\n"

ROUTINE = [  # (hour, minute, room, device, type, field, value, probability, source)
    (6, 50, "bedroom", "curtain", "curtain", "action", "open", 0.9, "app"),
    (6, 55, "bedroom", "light", "light", "power", "on", 0.6, "physical"),
    (7, 0, "kitchen", "kettle", "kettle", "power", "on", 0.7, "app"),
    (7, 5, "bathroom", "bath_warmer", "bath_warmer", "power", "on", 0.5, "app"),
    (7, 10, "kitchen", "speaker", "speaker", "playback", "play", 0.4, "voice"),
    (7, 30, "bathroom", "bath_warmer", "bath_warmer", "power", "off", 0.5, "app"),
    (7, 40, "hallway", "lock", "lock", "lock", "locked", 0.85, "app"),
    (7, 41, "living_room", "light", "light", "power", "off", 0.6, "app"),
    (9, 0, "living_room", "robot_vacuum", "robot_vacuum", "command", "start", 0.3, "app"),
    (12, 30, "study", "ac", "ac", "power", "on", 0.3, "app"),
    (18, 10, "hallway", "lock", "lock", "lock", "unlocked", 0.85, "app"),
    (18, 30, "living_room", "light", "light", "power", "on", 0.8, "app"),
    (18, 45, "kitchen", "rice_cooker", "rice_cooker", "power", "on", 0.5, "app"),
    (19, 0, "living_room", "tv", "tv", "power", "on", 0.5, "voice"),
    (20, 0, "laundry", "washer", "washer", "power", "on", 0.3, "app"),
    (21, 30, "bedroom", "curtain", "curtain", "action", "close", 0.8, "app"),
    (22, 0, "living_room", "tv", "tv", "power", "off", 0.5, "voice"),
    (22, 15, "bedroom", "ac", "ac", "target_temperature", "26", 0.4, "app"),
    (22, 30, "bedroom", "light", "light", "power", "off", 0.7, "physical"),
]
SCENES = [  # multi-action operations: rows a few seconds apart
    [("living_room", "light", "light", "power", "on"), ("living_room", "light", "light", "brightness", "40"),
     ("living_room", "tv", "tv", "power", "on")],
    [("bedroom", "light", "light", "power", "off"), ("bedroom", "curtain", "curtain", "action", "close"),
     ("bedroom", "ac", "ac", "power", "on")],
]
TOGGLES = [  # (room, device, type, field, values): user tweaks at random times
    ("living_room", "light", "light", "brightness", ("20", "40", "60", "80", "100")),
    ("bedroom", "light", "light", "brightness", ("10", "30", "50")),
    ("study", "light", "light", "power", ("on", "off")),
    ("kitchen", "light", "light", "power", ("on", "off")),
    ("living_room", "tv", "tv", "volume", ("10", "15", "20", "25", "30")),
    ("bedroom", "fan", "fan", "speed", ("30", "50", "70")),
    ("study", "ac", "ac", "target_temperature", ("24", "25", "26", "27")),
    ("kitchen", "speaker", "speaker", "volume", ("20", "30", "40")),
]
AUTOMATIONS = [  # motion and schedule automations: on/off pairs, the bulk of a real log
    ("hallway", "light", "light"), ("bathroom", "light", "light"), ("kitchen", "light", "light"),
    ("balcony", "light", "light"), ("garage", "light", "light"), ("living_room", "smart_plug", "smart_plug"),
    ("study", "light", "light"), ("bathroom", "wall_switch", "wall_switch"),
]
ROWS_PER_DAY = 2500  # the 50 MB log: 909k rows over a year
USER_TOGGLES_PER_DAY = 450  # user tweaks (app, voice, physical): about a fifth of the rows


def _day(rng: np.random.Generator, day: datetime) -> list[tuple]:
    rows: list[tuple] = []
    if rng.random() < 0.1:  # away: automations only
        pass
    else:
        for h, m, room, dev, typ, field, value, p, src in ROUTINE:
            if rng.random() < p:
                t = day + timedelta(hours=h, minutes=m + int(rng.integers(-15, 16)), seconds=int(rng.integers(60)))
                rows.append((t, room, dev, typ, field, value, src))
        for scene in SCENES:
            if rng.random() < 0.5:
                t = day + timedelta(hours=int(rng.integers(17, 23)), minutes=int(rng.integers(60)))
                for k, (room, dev, typ, field, value) in enumerate(scene):
                    rows.append((t + timedelta(seconds=3 * k), room, dev, typ, field, value, "app"))
        n = int(rng.poisson(USER_TOGGLES_PER_DAY))
        which = rng.integers(len(TOGGLES), size=n)
        secs = np.sort(rng.integers(6 * 3600, 24 * 3600, size=n))
        srcs = rng.choice(["app", "voice", "physical"], size=n, p=[0.6, 0.2, 0.2])
        for w, s, src in zip(which, secs, srcs, strict=True):
            room, dev, typ, field, values = TOGGLES[w]
            rows.append((day + timedelta(seconds=int(s)), room, dev, typ, field, values[int(rng.integers(len(values)))],
                         str(src)))
    n_auto = max(0, (ROWS_PER_DAY - len(rows)) // 2)
    which = rng.integers(len(AUTOMATIONS), size=n_auto)
    secs = np.sort(rng.integers(0, 24 * 3600 - 600, size=n_auto))
    for w, s in zip(which, secs, strict=True):
        room, dev, typ = AUTOMATIONS[w]
        t = day + timedelta(seconds=int(s))
        rows.append((t, room, dev, typ, "power", "on", "automation"))
        rows.append((t + timedelta(seconds=int(rng.integers(30, 600))), room, dev, typ, "power", "off", "automation"))
    return rows


def write_log(path: str | Path, megabytes: float, seed: int = 0, start: datetime = datetime(2025, 1, 1)) -> int:
    """Write an events CSV of about ``megabytes`` MB (whole days, time-sorted); returns its rows."""
    rng = np.random.default_rng(seed)
    target = int(megabytes * 1_000_000)
    size, n, d = len(HEADER), 0, 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(HEADER)
        while size < target:
            rows = sorted(_day(rng, start + timedelta(days=d)), key=lambda r: r[0])
            text = "".join(f"{t:%Y-%m-%dT%H:%M:%S},{r},{dv},{ty},{fl},{v},{s}\n" for t, r, dv, ty, fl, v, s in rows)
            f.write(text)
            size += len(text)
            n += len(rows)
            d += 1
    return n


def _child(events: str, out: str) -> None:
    """Run one import in this (fresh) process and print its figures as JSON."""
    sys.path.insert(0, str(ROOT))
    from sim.dataset.importer import ImportConfig, main

    t0, c0 = time.perf_counter(), time.process_time()
    counts = main(ImportConfig(events=events, out=out))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": wall, "cpu_seconds": cpu, "peak_rss_mb": peak_kb / 1024, "counts": counts}))


def measure(events: Path, out: Path) -> dict:
    p = subprocess.run([sys.executable, __file__, "--child", str(events), str(out)], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if p.returncode:
        raise SystemExit(f"import of {events} failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--sizes", default="1,4,16", help="log sizes in MB")
    ap.add_argument("--big", type=float, default=0, help="also time one import of this many MB (0: none)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}",
                 "load_average_start": round(os.getloadavg()[0], 2), "sizes": {}}
    sizes = [float(s) for s in args.sizes.split(",")] + ([args.big] if args.big else [])
    with tempfile.TemporaryDirectory() as d:
        for mb in sizes:
            log = Path(d) / f"home_{mb:g}mb.csv"
            rows = write_log(log, mb)
            r = measure(log, Path(d) / f"D{mb:g}")
            key = f"{mb:g}MB"
            res["sizes"][key] = {"rows": rows, "bytes": log.stat().st_size, "seconds": round(r["seconds"], 2),
                                 "cpu_seconds": round(r["cpu_seconds"], 2), "rows_per_s": round(rows / r["seconds"]),
                                 "rows_per_cpu_s": round(rows / r["cpu_seconds"]),
                                 "peak_rss_mb": round(r["peak_rss_mb"], 1),
                                 "sft_rows": r["counts"].get("sft/train", 0) + r["counts"].get("sft/test", 0),
                                 "operations": r["counts"].get("operations/train", 0) + r["counts"].get("operations/test", 0)}
            print(key, res["sizes"][key], flush=True)
            log.unlink()
    s = res["sizes"]
    if "4MB" in s and "16MB" in s:
        res["ratio_16mb_over_4mb"] = round(s["16MB"]["seconds"] / s["4MB"]["seconds"], 2)
        res["ratio_16mb_over_4mb_cpu"] = round(s["16MB"]["cpu_seconds"] / s["4MB"]["cpu_seconds"], 2)
    res["load_average_end"] = round(os.getloadavg()[0], 2)
    (out / "import_speed.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    lines = ["# Import speed (`homepilot import-log`)", "",
             f"Machine: {res['machine']}; one import per size, each in its own process; 1-min load average "
             f"{res['load_average_start']} at the start, {res['load_average_end']} at the end.", "",
             "| log | rows | operations | sft rows | seconds (wall) | CPU seconds | rows/s (wall) | rows/CPU-s "
             "| peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|"]
    for k, v in s.items():
        lines.append(f"| {k} | {v['rows']} | {v['operations']} | {v['sft_rows']} | {v['seconds']} | {v['cpu_seconds']} "
                     f"| {v['rows_per_s']} | {v['rows_per_cpu_s']} | {v['peak_rss_mb']} |")
    if "ratio_16mb_over_4mb" in res:
        r, rc = res["ratio_16mb_over_4mb"], res["ratio_16mb_over_4mb_cpu"]
        lines += ["", f"Time ratio 16 MB / 4 MB: **{r}** wall, {rc} CPU (goal <= 5: {'met' if r <= 5 else 'NOT met'})."]
    big = s.get(f"{args.big:g}MB") if args.big else None
    if big:
        ok = big["seconds"] <= 300 and big["peak_rss_mb"] <= 2048
        lines += ["", f"{args.big:g} MB log: {big['seconds']} s wall, {big['cpu_seconds']} CPU s, peak RSS "
                  f"{big['peak_rss_mb']} MB (goal <= 300 s on 2 cores and <= 2048 MB: {'met' if ok else 'NOT met'})."]
    (out / "import_speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
