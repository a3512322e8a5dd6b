"""``homepilot/HomeReplay-v0``: replay the logged decision points of a dataset split.

Feedback rows (``sim.dataset.schema`` ``feedback`` config) are read once, grouped by home and sorted by
time; the environment never writes to the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gymnasium as gym

from sim.dataset.schema import SPLITS
from sim.envs.common import (
    PROMPT_MIN,
    TEXT_MAX,
    Parsed,
    action_space,
    observation_space,
    parse_recommendation,
    sanitize,
    split_prompt,
    time_features,
)
from sim.matching import loose_match
from sim.records import Action, GrammarError, parse_actions

Row = Mapping[str, Any]


def read_feedback(data: str | os.PathLike, split: str) -> list[dict[str, Any]]:
    """Rows of ``<data>/data/feedback/<split>-*.parquet`` as dicts (read-only)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    from sim.dataset.files import read_rows

    return read_rows(data, "feedback", split)


def _actions_or_empty(text: str) -> tuple[Action, ...]:
    if not text or not text.strip():
        return ()
    try:
        return parse_actions(text)
    except GrammarError:
        return ()


@dataclass
class HomeEpisode:
    """One home's decision points, in time order: everything a step needs, precomputed."""

    home_id: str
    types: dict[tuple[str, str], str]  # (room, device) -> catalogue type
    obs: list[dict[str, Any]]  # (T,) observations
    shown: list[str]  # (T,) logged shown operations, serialised
    accepted: list[bool]  # (T,) logged answers
    labels: list[str]  # (T,) what the user did next, serialised ("" if nothing)
    times: list[datetime]  # (T,)
    _shown_sets: dict[int, frozenset[Action]]
    _label_acts: dict[int, tuple[Action, ...]]

    def shown_set(self, i: int) -> frozenset[Action]:
        if i not in self._shown_sets:
            self._shown_sets[i] = frozenset(_actions_or_empty(self.shown[i]))
        return self._shown_sets[i]

    def label(self, i: int) -> tuple[Action, ...]:
        if i not in self._label_acts:
            self._label_acts[i] = _actions_or_empty(self.labels[i])
        return self._label_acts[i]


def build_episodes(rows: Sequence[Row], prompt_max: int) -> list[HomeEpisode]:
    """Group feedback rows by ``home_id`` (sorted), each sorted by time (stable)."""
    by_home: dict[str, list[Row]] = {}
    for i, r in enumerate(rows):
        for key in ("home_id", "time", "prompt", "shown", "accepted", "label", "devices"):
            if key not in r:
                raise ValueError(f"feedback row {i} lacks column {key!r}")
        by_home.setdefault(str(r["home_id"]), []).append(r)
    out = []
    for home_id in sorted(by_home):
        rs = sorted(by_home[home_id], key=lambda r: r["time"])
        types: dict[tuple[str, str], str] = {}
        for r in rs:
            for d in r["devices"]:
                types[(d["room"], d["device"])] = d["type"]
        obs = []
        for r in rs:
            env, cand = split_prompt(r["prompt"])
            obs.append({"prompt": sanitize(r["prompt"], prompt_max), "time": time_features(r["time"]),
                        "environment": sanitize(env, TEXT_MAX), "candidates": sanitize(cand, TEXT_MAX)})
        out.append(HomeEpisode(home_id, types, obs, [r["shown"] for r in rs], [bool(r["accepted"]) for r in rs],
                               [r["label"] or "" for r in rs], [r["time"] for r in rs], {}, {}))
    return out


def label_accepts(label: tuple[Action, ...], pred: tuple[Action, ...], types: Mapping[tuple[str, str], str]) -> bool:
    """The label accepts a recommendation when every recommended action is loosely matched,
    one to one, by an action the user performed next (``sim.matching.loose_match``: the same
    setting, a number within 20%, or a functionally equivalent setting)."""

    def type_of(a: Action) -> str | None:
        return types.get(a.target)

    remaining = list(label)
    for p in pred:
        for j, lab in enumerate(remaining):
            if lab == p or loose_match(lab, p, type_of):
                del remaining[j]
                break
        else:
            return False
    return bool(pred)


class HomeReplayEnv(gym.Env):
    """Replays logged accept/reject feedback of one home per episode.

    ## Description
    Each episode walks through the logged app-open decision points of one home in a dataset
    split, in time order. At each point the agent recommends an operation (or abstains); the
    recommendation is judged by the logged feedback when the logging policy showed the same
    operation (same set of actions), otherwise by the label: it is accepted when every
    recommended action is loosely matched by what the user actually did next.

    ## Observation
    ``Dict``: ``prompt`` (``Text``, the canonical prompt ending on ``<rec>``), ``time``
    (``Box`` int64 (2,): minute of day 0..1439, weekday 0=Mon..6), ``environment`` (``Text``,
    the current readings ``[room][indicator][value] ...``) and ``candidates`` (``Text``, the
    candidate devices ``[room][device] ...`` that legal operations may target, each followed by
    its last known state ``[field][value]...`` from generator 0.4.0 on). Texts use the
    explicit charset ``sim.envs.common.CHARSET`` (printable ASCII, newline, tab).

    ## Action
    ``Text`` (max 2048 characters): a recommendation in the canonical grammar, as bare actions
    ``[room][device][field][value] ...`` or a target ``<act> ... <desc> ...``; ``""`` abstains.
    Malformed text, a non-string, or an operation the home cannot perform is invalid and counts
    as rejected; the env never raises on an action.

    ## Reward
    +1 accepted, ``-penalty`` rejected (invalid included), 0 abstained.

    ## Episode end
    Terminated after the home's last logged decision point; never truncated (wrap in
    ``TimeLimit`` for a cap). ``info`` of every step: ``actions`` (parsed, tuple of
    ``Action``), ``valid``, ``abstained``, ``accepted``, ``judged_by`` (``logged`` | ``label``
    | ``abstain`` | ``invalid``), ``reason`` (why invalid), ``home_id``, ``time`` (ISO), ``index``.

    ## Arguments
    ``data``: a dataset directory, or the feedback rows themselves (a list of dicts or a
    ``pyarrow.Table``); ``split``: ``train`` | ``test`` | ``test_unseen`` (default ``test``);
    ``penalty``: cost of a rejected recommendation (default 1.0, >= 0); ``home``: replay only
    this home id (default: a home drawn with ``np_random`` at each reset). ``reset(options=
    {"home": id})`` picks the home of one episode.

    ## Version history
    - v0: first version (``candidates`` carries device states on datasets of generator >= 0.4.0).
    """

    metadata = {"render_modes": []}

    def __init__(self, data: Any, split: str = "test", penalty: float = 1.0, home: str | None = None) -> None:
        if penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {penalty}")
        if isinstance(data, (str, os.PathLike)):
            rows = read_feedback(data, split)
        elif hasattr(data, "to_pylist"):
            rows = data.to_pylist()
        else:
            rows = list(data)
        if not rows:
            raise ValueError("no feedback rows to replay")
        longest = max(len(r.get("prompt", "")) for r in rows)
        self.prompt_max = max(PROMPT_MIN, -(-longest // 1024) * 1024)
        self.episodes = build_episodes(rows, self.prompt_max)
        self.home_ids = [e.home_id for e in self.episodes]
        if home is not None and home not in self.home_ids:
            raise ValueError(f"home {home!r} not in the data; homes: {', '.join(self.home_ids[:10])}")
        self.penalty = float(penalty)
        self.home = home
        self.observation_space = observation_space(self.prompt_max)
        self.action_space = action_space()
        self._ep: HomeEpisode = self.episodes[0]
        self._i = 0

    @property
    def n_decisions(self) -> int:
        return sum(len(e.obs) for e in self.episodes)

    def _obs(self) -> dict[str, Any]:
        o = self._ep.obs[min(self._i, len(self._ep.obs) - 1)]
        return {**o, "time": o["time"].copy()}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        home = (options or {}).get("home", self.home)
        if home is None:
            k = int(self.np_random.integers(len(self.episodes)))
        elif home in self.home_ids:
            k = self.home_ids.index(home)
        else:
            raise ValueError(f"options['home'] {home!r} not in the data; homes: {', '.join(self.home_ids[:10])}")
        self._ep, self._i = self.episodes[k], 0
        return self._obs(), {"home_id": self._ep.home_id, "n_decisions": len(self._ep.obs)}

    def judge(self, i: int, parsed: Parsed) -> tuple[bool, str]:
        """(accepted, judged_by) of a parsed recommendation at decision point ``i``."""
        if parsed.abstained:
            return False, "abstain"
        if not parsed.valid:
            return False, "invalid"
        ep = self._ep
        if frozenset(parsed.actions) == ep.shown_set(i):
            return ep.accepted[i], "logged"
        return label_accepts(ep.label(i), parsed.actions, ep.types), "label"

    def step(self, action: Any):
        ep, i = self._ep, self._i
        if i >= len(ep.obs):
            raise RuntimeError("step() after the episode ended; call reset()")
        parsed = parse_recommendation(action, ep.types)
        accepted, judged_by = self.judge(i, parsed)
        reward = 0.0 if parsed.abstained else (1.0 if accepted else -self.penalty)
        info = {"actions": parsed.actions, "valid": parsed.valid, "abstained": parsed.abstained,
                "accepted": accepted, "judged_by": judged_by, "reason": parsed.reason,
                "home_id": ep.home_id, "time": ep.times[i].isoformat(), "index": i}
        self._i += 1
        terminated = self._i >= len(ep.obs)
        return self._obs(), reward, terminated, False, info
