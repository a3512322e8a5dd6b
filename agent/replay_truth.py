"""The one hidden truth of a simulated dataset: the homes re-simulated exactly as generated.

``homepilot evaluate`` (oracle, simulated acceptance of exposures), ``homepilot replay`` (live
ground truth of the off-policy estimates) and the app read it from here.

- ``SimulatorTruth``: re-simulates each home of the dataset with the config the generator used
  for *that* home (``home_sim_config``: unseen homes simulate only their warm-up and test days,
  from a later start, so their weather and everything after differ from a seen home's run) and
  asks the oracle (``sim.world.oracle.oracle_predict``) or the acceptance model
  (``sim.world.acceptance.p_accept``) about a logged context. ``check`` verifies that the
  re-simulation reproduces the logged ``p_accept`` (same simulator version).
- ``live_acceptance`` (``--mode live``): runs the target in ``homepilot/HomeLive-v0`` over the
  split's homes and period.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from agent.policy import Policy, Recommendation, Row
from agent.replay_eval import ReplayEvalConfig
from sim.records import parse_actions


def has_generation(data: str | Path) -> bool:
    """True for a simulated dataset (``homepilot generate`` wrote its manifest); False for an import."""
    from sim.dataset.shards import MARKERS_DIR

    return (Path(data) / MARKERS_DIR / "generation.json").is_file()


def generation_config(data: str | Path) -> Any:
    """The ``sim.dataset.DatasetConfig`` a dataset was generated with (from its manifest)."""
    from sim.dataset import DatasetConfig
    from sim.dataset.shards import MARKERS_DIR

    path = Path(data) / MARKERS_DIR / "generation.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the live ground truth re-simulates the homes from the "
                                "generation config that `homepilot generate` writes there")
    fp = {k: v for k, v in json.loads(path.read_text()).items() if k != "generator_version"}
    if isinstance(fp.get("start"), str):
        fp["start"] = date.fromisoformat(fp["start"])
    return DatasetConfig(out=str(data), **fp)


def home_sim_config(gen: Any, index: int) -> Any:
    """The ``SimConfig`` the generator used for home ``index`` (unseen homes simulate fewer days)."""
    from sim.dataset import sim_config

    return sim_config(gen, gen.unseen(index))


def home_indices(data: str | Path) -> dict[str, int]:
    """home_id -> simulator index, from the ``homes`` config (every split)."""
    from sim.dataset.files import read_rows
    from sim.dataset.schema import SPLITS

    return {r["home_id"]: int(r["index"]) for split in SPLITS
            for r in read_rows(data, "homes", split, ["home_id", "index"], required=False)}


class SimulatorTruth:
    """True P(accept) of each recommendation at its logged context, from the re-simulated home.

    Every home is re-simulated with the dataset's generation config (deterministic per (seed,
    index); it reproduces the logged ``p_accept`` exactly) and ``sim.world.acceptance.p_accept(log,
    time, actions, description)`` is asked. The acceptance model also scores the description,
    while the off-policy estimators match on actions only, so what they estimate is acceptance
    with the *logging policy's* descriptions: a uniform draw of ``sim.describe``'s phrasings.
    ``__call__`` therefore averages p over those phrasings (the estimand); ``own`` scores the
    target's own description (what the target would get if shown as is).
    """

    def __init__(self, data: str | Path) -> None:
        self.gen = generation_config(data)
        self.index = home_indices(data)
        self.logs: dict[str, Any] = {}

    def log(self, home_id: str) -> Any:
        """The home's ``HomeLog`` as generated (simulated once, then cached)."""
        from sim.world import simulate_home

        if home_id not in self.logs:
            if home_id not in self.index:
                raise ValueError(f"home {home_id!r} of the feedback rows is missing from the homes config")
            i = self.index[home_id]
            self.logs[home_id] = simulate_home(home_sim_config(self.gen, i), i)
        return self.logs[home_id]

    def _p(self, rows: Sequence[Row], recs: Sequence[Recommendation], own: bool) -> np.ndarray:
        from sim.describe import N_STYLES, describe
        from sim.world.acceptance import p_accept

        out = np.zeros(len(rows))
        for k, (r, rec) in enumerate(zip(rows, recs, strict=True)):
            if not rec.actions:
                continue
            log = self.log(str(r["home_id"]))
            texts = [rec.description] if own else [describe(rec.actions, s) for s in range(N_STYLES)]
            out[k] = float(np.mean([p_accept(log, r["time"], rec.actions, d).p for d in texts]))
        return out

    def check(self, rows: Sequence[Row], tol: float = 1e-6, max_bad: float = 0.05) -> float:
        """Share of the logged ``p_accept`` the re-simulated homes reproduce; raise below 1 - ``max_bad``.

        Row times are stored to the second, so an event within that second of a decision point
        can make a rare row differ; a larger share means another simulator version made the data.
        """
        recs = [Recommendation(parse_actions(r["shown"]), r["description"], 1.0, True, "logged") for r in rows]
        p = self._p(rows, recs, own=True)
        bad = [i for i, r in enumerate(rows) if abs(p[i] - float(r["p_accept"])) > tol]
        if len(bad) > max_bad * len(rows):
            r = rows[bad[0]]
            raise ValueError(f"the re-simulated homes do not reproduce the logged p_accept for {len(bad)} of "
                             f"{len(rows)} feedback rows (first: home {r['home_id']} at {r['time']}: "
                             f"{p[bad[0]]:.4f} vs {float(r['p_accept']):.4f}); the dataset was made by another "
                             "simulator version: regenerate it, or use --mode live")
        return 1.0 - len(bad) / len(rows) if rows else 1.0

    def __call__(self, rows: Sequence[Row], recs: Sequence[Recommendation]) -> np.ndarray:
        return self._p(rows, recs, own=False)

    def own(self, rows: Sequence[Row], recs: Sequence[Recommendation]) -> np.ndarray:
        return self._p(rows, recs, own=True)

    def oracle(self, home_id: str, time: Any) -> tuple:
        """The oracle's answer (the pending intent; ``sim.world.oracle``) at a decision of a home."""
        from sim.world.oracle import oracle_predict

        return tuple(oracle_predict(self.log(home_id), time))

    def p_accept(self, home_id: str, time: Any, actions: Sequence, description: str) -> float:
        """The simulated user's acceptance probability of one recommendation (0 for none)."""
        from sim.world.acceptance import p_accept

        if not actions:
            return 0.0
        return float(p_accept(self.log(home_id), time, tuple(actions), description).p)


def split_homes(data: str | Path, split: str) -> list[tuple[str, int]]:
    """(home_id, simulator index) of the homes whose feedback is in ``split`` (seen homes for
    train/test, unseen ones for test_unseen), from the ``homes`` config."""
    from sim.dataset.files import read_rows

    want = "test_unseen" if split == "test_unseen" else "train"
    return sorted((r["home_id"], int(r["index"])) for r in read_rows(data, "homes", want, ["home_id", "index"],
                                                                     required=False))


def live_acceptance(cfg: ReplayEvalConfig, policy: Policy) -> dict[str, float]:
    """Run ``policy`` in HomeLive-v0 over the split's homes and period; its acceptance there.

    Each home is re-created from the generation config, run silently to the start of the
    split's period (the test cutoff for test/test_unseen), then stepped decision point by
    decision point to the end of the simulated days (``live_days`` after the cutoff if set).
    Returns ``expected`` (mean acceptance-model probability of the exposed recommendations),
    ``sampled`` (share the simulated users accepted), ``shown`` and ``decisions``.
    """
    from dataclasses import replace

    from sim.envs.live import HomeLiveEnv

    gen = generation_config(cfg.data)
    start = None if cfg.split == "train" else gen.cutoff
    ps, acc, decisions = [], [], 0
    for home_id, index in split_homes(cfg.data, cfg.split):
        sc = home_sim_config(gen, index)
        before = (gen.cutoff.date() - sc.start).days  # simulated days before the test period
        if cfg.split == "train":
            sc = replace(sc, days=before)
        elif cfg.live_days:
            sc = replace(sc, days=before + cfg.live_days)
        env = HomeLiveEnv(config=sc, index=index, penalty=cfg.penalty)
        obs, info = env.reset(seed=cfg.seed + index, options={"start": start})
        devices = [{"room": d.room, "device": d.name, "type": d.type} for d in env.home.home.devices]
        done = info["no_decision"]
        while not done:
            row = {"home_id": home_id, "time": env.home.now.replace(microsecond=0), "prompt": obs["prompt"],
                   "devices": devices}
            rec = policy.recommend([row])[0]
            show = bool(rec.actions) and rec.exposed  # the policy's gate decision
            obs, _, done, _, info = env.step(rec.target() if show else "")
            decisions += 1
            if show:
                ps.append(info["p_accept"])
                acc.append(info["accepted"])
    return {"expected": float(np.mean(ps)) if ps else float("nan"),
            "sampled": float(np.mean(acc)) if acc else float("nan"), "shown": len(ps), "decisions": decisions}
