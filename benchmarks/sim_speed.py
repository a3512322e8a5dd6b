"""Simulator speed: home-days per second per core with full logging, against bare SimPy.

    python benchmarks/sim_speed.py --out benchmarks/results [--homes 40] [--days 7] [--repeats 3]

For each repeat, ``--homes`` homes are simulated one after another in this process (full
logging: sensor rows, operations, exposures) and timed by CPU time of this process (so other
load on a shared machine does not count; wall time is reported too). The same run then replays
the same number of SimPy events with no model code: one bare process per simulated process,
each yielding 1-minute timeouts. ``ratio_to_bare_simpy`` = model CPU time / bare CPU time for
that event count (how many times the model's work costs what the SimPy scheduling alone does).
Medians over repeats are written to ``sim_speed.json`` and ``sim_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim.world import SimConfig, World  # noqa: E402


def run_model(cfg: SimConfig, homes: int) -> tuple[float, float, int, int, int]:
    """(cpu s, wall s, simpy events, processes, operations) for simulating ``homes`` homes."""
    c0, w0 = time.process_time(), time.perf_counter()
    events = procs = ops = 0
    for i in range(homes):
        w = World(cfg, i)
        w.run()
        events += next(w.env._eid)  # events scheduled: SimPy numbers each one (simpy 4)
        procs += len(w.users) + 4
        ops += len(w.log.operations)
    return time.process_time() - c0, time.perf_counter() - w0, events, procs, ops


def run_bare(events: int, procs: int) -> float:
    """CPU seconds for ``events`` SimPy timeout events spread over ``procs`` processes."""
    env = simpy.Environment()
    per = max(1, events // procs)

    def proc():
        for _ in range(per):
            yield env.timeout(1.0)

    c0 = time.process_time()
    for _ in range(procs):
        env.process(proc())
    env.run()
    return time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--homes", type=int, default=40)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    cfg = SimConfig(seed=a.seed, days=a.days)
    rows = []
    for _ in range(a.repeats):
        cpu, wall, events, procs, ops = run_model(cfg, a.homes)
        bare = run_bare(events, procs)
        rows.append({"cpu_s": cpu, "wall_s": wall, "bare_cpu_s": bare, "events": events, "operations": ops})
    home_days = a.homes * a.days
    med = {k: statistics.median(r[k] for r in rows) for k in ("cpu_s", "wall_s", "bare_cpu_s")}
    result = {
        "home_days_per_s_per_core": home_days / med["cpu_s"],
        "home_days_per_s_wall": home_days / med["wall_s"],
        "ratio_to_bare_simpy": med["cpu_s"] / med["bare_cpu_s"],
        "simpy_events_per_home_day": rows[0]["events"] / home_days,
        "bare_simpy_events_per_s": rows[0]["events"] / med["bare_cpu_s"],
        "operations_per_home_day": rows[0]["operations"] / home_days,
        "homes": a.homes, "days": a.days, "repeats": a.repeats, "seed": a.seed, "runs": rows,
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "goal_home_days_per_s_per_core": 100,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sim_speed.json").write_text(json.dumps(result, indent=2))
    (out / "sim_speed.md").write_text("\n".join([
        "# Simulator speed", "",
        f"`python benchmarks/sim_speed.py --homes {a.homes} --days {a.days} --repeats {a.repeats}` "
        f"on {result['machine']['platform']}, Python {result['machine']['python']}, "
        f"{result['machine']['cpus']} CPUs (load {result['machine']['load_avg'][0]:.1f}). Medians of {a.repeats}.", "",
        "| figure | value |", "|---|---|",
        f"| home-days / s / core (CPU time, full logging) | {result['home_days_per_s_per_core']:.1f} |",
        f"| home-days / s (wall) | {result['home_days_per_s_wall']:.1f} |",
        f"| SimPy events per home-day | {result['simpy_events_per_home_day']:.0f} |",
        f"| bare SimPy events / s | {result['bare_simpy_events_per_s']:.0f} |",
        f"| model time / bare SimPy time (same events) | {result['ratio_to_bare_simpy']:.1f} |",
        f"| operations per home-day | {result['operations_per_home_day']:.1f} |", "",
        f"Goal: >= 100 home-days/s per core: {'met' if result['home_days_per_s_per_core'] >= 100 else 'NOT met'}.", "",
    ]))
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "machine")}, indent=2))


if __name__ == "__main__":
    main()
