"""The gradient-boosted reranker: the strongest honest feature model (LightGBM).

It answers from the prompt alone, like the LM: the candidates are the decision's plausible action
sets (``sim.candidates.plausible_sets``, the same sets the LM's candidate scoring
ranks) and every feature is computed from the parsed prompt (``sim.records.Prompt``) and the
home's device types. A binary LightGBM model learns P(candidate == the user's next operation)
on the ``sft`` train rows; the answer is the best candidate, its confidence that probability
renormalised over the decision's candidates.

Features of a candidate (one row per (context, candidate)):
- where it comes from: rank among the usual operations (``USUAL_N`` = not listed), rank in the
  history window counted from the latest (``HISTORY_K`` = absent), times it occurs in the window,
  whether it is a single action cut out of a listed operation, an inverse, or a toggle;
- state: share of its actions the device already has (the known state), whether the device's
  state is known, whether it is the inverse of the latest window operation on that device;
- transitions in the window: how often it followed an operation equal to the latest one;
- devices: best rank of its devices in the prompt's device list, number of actions, category
  and field of the first action (categorical), same room / device as the latest operation,
  minutes since the latest operation and since its device was last operated in the window;
- time: hour, minute of day, weekday;
- the first action's value (categorical, or the number) and its field's known value in the prompt
  (categorical, number, and the change a numeric value makes); how often the device appears in the
  history window and among the usual operations;
- environment readings of the candidate's room and outdoor when the prompt carries them
  (temperature, humidity, illuminance, occupancy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.candidates import (
    Types,
    context_from_row,
    inverse_action,
    label_from_row,
    plausible_sets,
    read_sft_rows,
)
from sim.catalog import DEVICE_TYPES
from sim.prompts import HISTORY_K, USUAL_N
from sim.records import Action, Prompt

_TYPES = {name: i for i, name in enumerate(DEVICE_TYPES)}
_FIELDS = {f: i for i, f in enumerate(sorted({f for dt in DEVICE_TYPES.values() for f in dt.fields}))}
_INDICATORS = ("temperature", "humidity", "illuminance", "occupancy")


def _is_number(x: str) -> bool:
    try:
        float(x)
    except ValueError:
        return False
    return True


_VALUES = {v: i for i, v in enumerate(sorted({v for dt in DEVICE_TYPES.values() for spec in dt.fields.values()
                                             for v in spec.grid() if not _is_number(v)}))}
FEATURES: tuple[str, ...] = (
    "usual_rank", "hist_rank", "hist_count", "single", "inverse_of_listed", "toggle",
    "noop_share", "state_known", "undoes_latest", "follows_latest", "device_rank", "n_actions",
    "type", "field", "same_room_as_latest", "same_device_as_latest", "min_since_latest",
    "min_since_device", "hour", "minute_of_day", "weekday",
    "value", "value_number", "state_value", "state_number", "value_change", "device_in_history", "device_in_usual",
    *(f"room_{k}" for k in _INDICATORS), *(f"outdoor_{k}" for k in _INDICATORS),
)
CATEGORICAL = ("type", "field", "value", "state_value")
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "origin": ("usual_rank", "hist_rank", "hist_count", "single", "inverse_of_listed", "toggle", "n_actions"),
    "state": ("noop_share", "state_known", "undoes_latest", "type", "field", "value", "value_number", "state_value",
              "state_number", "value_change"),
    "transitions": ("follows_latest", "same_room_as_latest", "same_device_as_latest", "min_since_latest",
                    "min_since_device", "device_rank", "device_in_history", "device_in_usual"),
    "time": ("hour", "minute_of_day", "weekday"),
    "environment": tuple(f for f in FEATURES if f.startswith(("room_", "outdoor_"))),
}
"""The features by what of the prompt they read (every feature in exactly one group;
``benchmarks/gbdt_features.py`` measures what each group is worth)."""
ENV_FEATURES: tuple[int, ...] = tuple(FEATURES.index(f) for f in FEATURE_GROUPS["environment"])
"""Columns read from the prompt's environment readings (all NaN for a prompt without them)."""


def _num(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return float("nan")


def features(prompt: Prompt, types: Types, candidates: Sequence[tuple[Action, ...]]) -> np.ndarray:
    """(n_candidates, len(FEATURES)) float matrix; NaN = not available."""
    usual = {frozenset(u): i for i, u in reversed(list(enumerate(prompt.usual)))}
    hist = [frozenset(o.actions) for o in prompt.history]
    hist_rank = {k: len(hist) - 1 - i for i, k in enumerate(hist)}  # latest wins (larger i later)
    listed = set(usual) | set(hist)
    listed_actions = {a for k in listed for a in k}
    state = prompt.known_state()
    dev_rank = {d: i for i, d in enumerate(prompt.devices)}
    latest = prompt.history[-1] if prompt.history else None
    follows: dict[frozenset, int] = {}
    if latest is not None:
        last_key = hist[-1]
        for i in range(len(hist) - 1):
            if hist[i] == last_key:
                follows[hist[i + 1]] = follows.get(hist[i + 1], 0) + 1
    last_op_on: dict[tuple[str, str], object] = {}
    for o in prompt.history:
        for a in o.actions:
            last_op_on[a.target] = o.time
    in_history: dict[tuple[str, str], int] = {}
    for o in prompt.history:
        for a in o.actions:
            in_history[a.target] = in_history.get(a.target, 0) + 1
    in_usual: dict[tuple[str, str], int] = {}
    for u in prompt.usual:
        for target in {a.target for a in u}:
            in_usual[target] = in_usual.get(target, 0) + 1
    env: dict[tuple[str, str], float] = {}
    for r in prompt.environment:
        env[(r.room, r.indicator)] = _num(r.value)
    t = prompt.time
    rows = []
    for acts in candidates:
        key = frozenset(acts)
        first = acts[0]
        ty = types.get(first.target)
        inv_listed = toggle = 0.0
        if key not in listed and len(acts) == 1:
            a = first
            inv_listed = float(any(inverse_action(b, types) == a for b in listed_actions))
            toggle = float(not inv_listed and a not in listed_actions)
        undoes = 0.0
        if latest is not None:
            undoes = float(any(inverse_action(b, types) == a for a in acts for b in latest.actions))
        noop = np.mean([state.get(a.target, {}).get(a.field) == a.value for a in acts])
        since_dev = [(t - last_op_on[a.target]).total_seconds() / 60 for a in acts if a.target in last_op_on]
        known = state.get(first.target, {}).get(first.field)  # the first action's field as the prompt knows it
        value, known_number = _num(first.value), _num(known) if known is not None else np.nan
        row = [
            usual.get(key, USUAL_N), hist_rank.get(key, HISTORY_K), hist.count(key),
            float(key not in listed and len(acts) == 1 and first in listed_actions), inv_listed, toggle,
            noop, float(any(a.target in state for a in acts)), undoes, follows.get(key, 0),
            min(dev_rank.get(a.target, len(dev_rank)) for a in acts), len(acts),
            _TYPES.get(ty, -1), _FIELDS.get(first.field, -1),
            float(latest is not None and first.room in {b.room for b in latest.actions}),
            float(latest is not None and first.target in {b.target for b in latest.actions}),
            (t - latest.time).total_seconds() / 60 if latest is not None else np.nan,
            min(since_dev) if since_dev else np.nan,
            t.hour, t.hour * 60 + t.minute, t.weekday(),
            _VALUES.get(first.value, -1), value, _VALUES.get(known, -1) if known is not None else -2, known_number,
            value - known_number, in_history.get(first.target, 0), in_usual.get(first.target, 0),
            *(env.get((first.room, k), np.nan) for k in _INDICATORS),
            *(env.get(("outdoor", k), np.nan) for k in _INDICATORS),
        ]
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(candidates), len(FEATURES))


@dataclass
class GBDTConfig:
    """LightGBM reranker options (binary objective over (context, candidate) rows).

    The number of rounds is chosen on held-out time: the contexts of the training period's last
    ``valid_days`` days are left out, the booster grows up to ``num_boost_round`` rounds while the
    share of those contexts whose best candidate is the label (MAP@1) still improves within
    ``early_stopping_rounds``, and that booster is kept. With ``valid_days=0`` (or no labelled
    context in those days) every round is trained on every context."""

    seed: int = 0
    num_boost_round: int = 2000  # the most rounds
    learning_rate: float = 0.05
    num_leaves: int = 63
    min_data_in_leaf: int = 20
    max_rows: int | None = None  # train contexts used (None = all sft train rows)
    valid_days: float = 2.0  # the last days of training that pick the number of rounds (0: no validation)
    early_stopping_rounds: int = 100
    features: tuple[str, ...] | None = None  # the feature columns used (names of FEATURES; None = all)

    def columns(self) -> list[int]:
        """Indices into ``FEATURES`` of the columns used; an unknown name is an error naming it."""
        if self.features is None:
            return list(range(len(FEATURES)))
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown or not self.features:
            raise ValueError(f"GBDTConfig.features: unknown feature(s) {unknown} (known: {', '.join(FEATURES)})"
                             if unknown else "GBDTConfig.features is empty: name at least one feature or pass None")
        return [FEATURES.index(f) for f in dict.fromkeys(self.features)]


@dataclass(frozen=True)
class Ranked:
    actions: tuple[Action, ...]
    confidence: float


class GBDTReranker:
    """A trained reranker: ``predict_batch([(prompt, types), ...])`` -> ``Ranked`` per context."""

    def __init__(self, booster) -> None:
        self.booster = booster
        self.columns = [FEATURES.index(f) for f in booster.feature_name()]  # the features it was fitted on

    def scores(self, prompt: Prompt, types: Types, current: Mapping[tuple[str, str], Mapping[str, str]] | None = None
               ) -> tuple[list[tuple[Action, ...]], np.ndarray]:
        """The decision's candidates and their P(is the next operation). ``current``: the devices'
        true state where the caller knows it (the live app); the sets it already holds are left out
        (``plausible_sets(drop_noops=True, current=...)``)."""
        cands = plausible_sets(prompt, types, drop_noops=current is not None, current=current)
        if not cands:
            return [], np.zeros(0)
        return cands, self.booster.predict(features(prompt, types, cands)[:, self.columns])

    def rank(self, prompt: Prompt, types: Types, current: Mapping[tuple[str, str], Mapping[str, str]] | None = None
             ) -> list[Ranked]:
        """Every candidate, best first, with its probability renormalised over the candidates."""
        cands, p = self.scores(prompt, types, current)
        total = max(float(p.sum()), 1e-12)
        order = sorted(range(len(cands)), key=lambda i: -p[i])  # stable: ties keep candidate order
        return [Ranked(cands[i], float(p[i] / total)) for i in order]

    def predict_batch(self, contexts: Sequence[tuple[Prompt, Types]]) -> list[Ranked]:
        out = []
        for prompt, types in contexts:
            cands, p = self.scores(prompt, types)
            if not cands:
                out.append(Ranked((), 0.0))
                continue
            j = int(np.argmax(p))
            out.append(Ranked(cands[j], float(p[j] / max(p.sum(), 1e-12))))
        return out

    def save(self, out_dir: str | Path) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(out / "gbdt.txt"))
        return out / "gbdt.txt"

    def importance(self) -> dict[str, float]:
        gain = self.booster.feature_importance(importance_type="gain")
        return dict(sorted(zip(self.booster.feature_name(), map(float, gain), strict=True), key=lambda kv: -kv[1]))


Context = tuple[Prompt, Types, tuple[Action, ...]]  # (prompt, device types, label actions)


@dataclass
class Matrix:
    """(context, candidate) rows of labelled contexts: features ``x``, labels ``y`` (1 = the
    candidate is the label), ``sizes`` (candidates per context, in order), ``times`` (each
    context's decision time) and ``covered`` (contexts whose label is among their candidates)."""

    x: np.ndarray
    y: np.ndarray
    sizes: list[int]
    times: list
    covered: int

    def held_out(self, days: float) -> np.ndarray:
        """Row mask of the contexts in the last ``days`` days (empty mask for ``days <= 0``)."""
        from datetime import timedelta

        ctx = np.zeros(len(self.sizes), dtype=bool)
        if days > 0 and self.times:
            cut = max(self.times) - timedelta(days=days)
            ctx = np.array([t > cut for t in self.times], dtype=bool)
        return np.repeat(ctx, self.sizes)


def training_matrix(contexts: Sequence[Context]) -> Matrix:
    """The (context, candidate) rows of labelled contexts (those with a candidate)."""
    xs, ys, sizes, times, covered = [], [], [], [], 0
    for prompt, types, label_actions in contexts:
        cands = plausible_sets(prompt, types)
        if not cands:
            continue
        label = frozenset(label_actions)
        y = np.array([frozenset(c) == label for c in cands], dtype=np.float64)
        covered += int(y.any())
        xs.append(features(prompt, types, cands))
        ys.append(y)
        sizes.append(len(cands))
        times.append(prompt.time)
    if not xs:
        raise ValueError("no training context has a plausible candidate: cannot train the GBDT reranker")
    return Matrix(np.concatenate(xs), np.concatenate(ys), sizes, times, covered)


def fit_matrix(m: Matrix, cfg: GBDTConfig | None = None) -> GBDTReranker:
    """Fit the reranker on a ``training_matrix``, the rounds chosen on its last days (``GBDTConfig``)."""
    try:
        import lightgbm as lgb
    except ImportError as e:  # pragma: no cover - the train extra installs it
        raise ImportError("the GBDT baseline needs lightgbm: pip install 'homepilot[train]'") from e
    cfg = cfg or GBDTConfig()
    params = {"objective": "binary", "learning_rate": cfg.learning_rate, "num_leaves": cfg.num_leaves,
              "min_data_in_leaf": cfg.min_data_in_leaf, "seed": cfg.seed, "deterministic": True,
              "force_row_wise": True, "num_threads": 1, "verbose": -1}
    cols = cfg.columns()
    names = [FEATURES[i] for i in cols]
    cats = [f for f in names if f in CATEGORICAL]
    x = m.x[:, cols]
    held = m.held_out(cfg.valid_days)
    context_held = np.array([held[i] for i in np.cumsum([0, *m.sizes[:-1]])], dtype=bool)
    if held.any() and not held.all() and m.y[held].any():
        sizes = np.asarray(m.sizes)
        train = lgb.Dataset(x[~held], m.y[~held], feature_name=names, categorical_feature=cats,
                            group=sizes[~context_held], free_raw_data=False)
        valid = lgb.Dataset(x[held], m.y[held], reference=train, group=sizes[context_held], free_raw_data=False)
        booster = lgb.train({**params, "metric": "map", "eval_at": [1]}, train, num_boost_round=cfg.num_boost_round,
                            valid_sets=[valid], callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
        return GBDTReranker(booster)
    ds = lgb.Dataset(x, m.y, feature_name=names, categorical_feature=cats, free_raw_data=False)
    return GBDTReranker(lgb.train(params, ds, num_boost_round=cfg.num_boost_round))


def fit_gbdt(contexts: Sequence[Context], cfg: GBDTConfig | None = None) -> GBDTReranker:
    """Fit the reranker on labelled contexts (``train_gbdt`` reads them from a dataset)."""
    cfg = cfg or GBDTConfig()
    if cfg.max_rows is not None:
        contexts = contexts[:cfg.max_rows]
    return fit_matrix(training_matrix(contexts), cfg)


def contexts_from_rows(rows: Sequence[Mapping]) -> list[Context]:
    """Labelled contexts from ``sft`` rows (prompt, devices, actions columns)."""
    return [(*context_from_row(r), label_from_row(r)) for r in rows]


def log_contexts(log) -> list[Context]:
    """Labelled contexts of a simulated home (``sim.world.HomeLog``): every logged operation a
    recommender could have made (``SFT_SOURCES``), with the decision-time prompt the dataset's sft
    rows carry (``sim.dataset.rows.DecisionPrompts``)."""
    from sim.dataset.rows import SFT_SOURCES, DecisionPrompts
    from sim.records import parse_prompt

    prompts = DecisionPrompts(log)
    types = log.home.types()
    return [(parse_prompt(prompts(o.time)), types, o.actions)
            for o in log.operations if o.logged and o.source in SFT_SOURCES]


SIMULATED_FIRST_INDEX = 100_000  # home indices of train_gbdt_simulated: far from the ones people pick


def train_gbdt_simulated(seed: int, homes: int = 30, days: int = 14, cfg: GBDTConfig | None = None,
                         progress: Callable[[int], None] | None = None) -> GBDTReranker:
    """Fit the reranker on freshly simulated homes ``SIMULATED_FIRST_INDEX`` .. ``+ homes - 1`` of
    simulator seed ``seed`` (``days`` days each): what the live app uses when no dataset is at hand.
    The homes it then advises are never among them (unseen homes, like the ``test_unseen`` split).
    ``progress(done_homes)`` after each home."""
    from sim.world import SimConfig, simulate_home

    if homes < 1 or days < 2:
        raise ValueError(f"train_gbdt_simulated needs homes >= 1 and days >= 2, got homes={homes}, days={days}")
    sim = SimConfig(seed=seed, days=days)
    contexts: list[Context] = []
    for i in range(homes):
        contexts += log_contexts(simulate_home(sim, SIMULATED_FIRST_INDEX + i))
        if progress is not None:
            progress(i + 1)
    return fit_gbdt(contexts, cfg or GBDTConfig(seed=seed))


def train_gbdt(data_dir: str | Path, cfg: GBDTConfig | None = None) -> GBDTReranker:
    """Fit the reranker on the dataset's ``sft`` train rows."""
    rows = read_sft_rows(data_dir, "train", ["prompt", "devices", "actions"])
    if cfg is not None and cfg.max_rows is not None:
        rows = rows[:cfg.max_rows]
    return fit_gbdt(contexts_from_rows(rows), cfg)
