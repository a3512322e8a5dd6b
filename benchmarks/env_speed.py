"""Steps per second of HomeReplay-v0 and HomeLive-v0 for trivial agents, on one core.

    python benchmarks/env_speed.py --out benchmarks/results [--data DIR] [--repeats 5]

Replay: episodes over every home of the feedback test split (``--data``, or a tiny dataset
generated into a temporary directory), through ``gymnasium.make`` (with its wrappers), for two
trivial agents: ``abstain`` (always "") and ``fixed`` (always the same legal one-action
recommendation, so every step parses, checks legality and judges by log or label).
``replay_steps_per_s`` is the ``fixed`` agent's (the heavier one). Live: HomeLive-v0 homes of 2
simulated days with the abstaining agent; each step runs the SimPy home to the next decision
point, so its rate is dominated by the simulation. Medians over ``--repeats`` runs.
Writes ``env_speed.json`` and ``env_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym

import sim  # noqa: F401  (registers the envs)
from sim.envs import LIVE_ID, REPLAY_ID


@dataclass
class SpeedConfig:
    """Options of the benchmark."""

    out: str = "benchmarks/results"  # where env_speed.json / .md go
    data: str = ""  # dataset dir with a feedback test split; "" = generate a tiny one in a temp dir
    repeats: int = 5  # runs per measurement (median reported)
    min_steps: int = 5000  # replay steps per run (episodes are repeated until reached)
    live_homes: int = 4  # live episodes per run (2 simulated days each)

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.min_steps < 1 or self.live_homes < 1:
            raise ValueError("repeats, min_steps and live_homes must be >= 1")


def _fixed_action(obs: dict) -> str:
    room, device = obs["candidates"].split()[0][1:-1].split("][")
    return f"[{room}][{device}][power][on]"


def replay_rate(data: str, agent: str, min_steps: int) -> float:
    env = gym.make(REPLAY_ID, data=data, split="test")
    homes = env.unwrapped.home_ids
    steps, k = 0, 0
    t0 = time.perf_counter()
    while steps < min_steps:
        obs, _ = env.reset(seed=k, options={"home": homes[k % len(homes)]})
        action = _fixed_action(obs) if agent == "fixed" else ""
        done = False
        while not done:
            obs, _, term, trunc, _ = env.step(action)
            steps += 1
            done = term or trunc
        k += 1
    return steps / (time.perf_counter() - t0)


def live_rate(homes: int) -> float:
    env = gym.make(LIVE_ID, config={"seed": 0, "days": 2}, homes=homes)
    steps = 0
    t0 = time.perf_counter()
    for i in range(homes):
        env.reset(seed=i, options={"index": i})
        done = False
        while not done:
            _, _, term, trunc, _ = env.step("")
            steps += 1
            done = term or trunc
    return steps / (time.perf_counter() - t0)


def main(cfg: SpeedConfig) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = cfg.data
        if not data:
            from sim.dataset.build import DatasetConfig, build

            data = str(Path(tmp) / "tiny")
            build(DatasetConfig(out=data, preset="tiny", workers=1))
        n_decisions = gym.make(REPLAY_ID, data=data, split="test").unwrapped.n_decisions
        fixed = [replay_rate(data, "fixed", cfg.min_steps) for _ in range(cfg.repeats)]
        abstain = [replay_rate(data, "abstain", cfg.min_steps) for _ in range(cfg.repeats)]
    live = [live_rate(cfg.live_homes) for _ in range(cfg.repeats)]
    result = {
        "replay_steps_per_s": statistics.median(fixed),
        "replay_abstain_steps_per_s": statistics.median(abstain),
        "live_steps_per_s": statistics.median(live),
        "runs": {"replay_fixed": fixed, "replay_abstain": abstain, "live": live},
        "replay_goal_steps_per_s": 1000,
        "replay_decisions_in_split": n_decisions,
        "data": cfg.data or "generated tiny preset (seed 0)",
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "note": "one process, one core; medians of repeats; the machine may be shared, so compare within a run",
    }
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "env_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    md = ["# Environment speed", "",
          f"Trivial agents, one process, median of {cfg.repeats} runs ({result['data']}).", "",
          "| env | agent | steps/s |", "|---|---|---|",
          f"| HomeReplay-v0 | fixed legal recommendation | {result['replay_steps_per_s']:,.0f} |",
          f"| HomeReplay-v0 | abstain | {result['replay_abstain_steps_per_s']:,.0f} |",
          f"| HomeLive-v0 (2-day homes) | abstain | {result['live_steps_per_s']:,.1f} |", "",
          f"Goal: >= 1,000 replay steps/s on one core: "
          f"{'met' if result['replay_steps_per_s'] >= 1000 else 'missed'}.", ""]
    (out / "env_speed.md").write_text("\n".join(md))
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--data", default="")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--min-steps", type=int, default=5000)
    p.add_argument("--live-homes", type=int, default=4)
    a = p.parse_args()
    r = main(SpeedConfig(out=a.out, data=a.data, repeats=a.repeats, min_steps=a.min_steps, live_homes=a.live_homes))
    print(json.dumps({k: v for k, v in r.items() if k != "runs"}, indent=2))
