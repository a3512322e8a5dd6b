"""``homepilot sim-report``: simulate homes and report how realistic and learnable their behaviour is.

Each home runs ``days`` training days plus a held-out ``test_days`` week. The report gives
volume and mix (operations per home-day, multi-action and unlogged shares, sources,
categories), the oracle's and the time-of-day frequency baseline's EM-Acc on the logged
operations of the held-out week (``agent.metrics.score``; the baseline is fitted on the
training days), both by device-count bucket, two signal checks (the frequency baseline split by
weekday/weekend; the most frequent successor of the previous logged operation within an hour),
and ``curtain_acceptance_by_hour``: at minutes 10, 30 and 50 of every hour of every held-out
day, the curtain operation the frequency recommender (fitted on the training days, restricted
to curtain operations) proposes, judged by the acceptance model (``sim.world.acceptance.p_accept``),
averaged over homes with a curtain and days. A proposal the logged operations before it already
put in place (``sim.prompts.device_state``, ``is_noop``: closing a curtain the logs show closed) is
not made, as no HomePilot recommender makes it; ``curtain_samples_by_hour`` counts those made.

Learnability probe: the gradient-boosted reranker baseline (``agent.baselines.gbdt``, the one
implementation) is trained on the decision-time prompts (``sim.dataset.rows.DecisionPrompts``, as
the dataset's sft rows) of every home's training days (its number of rounds chosen on the last
two of them, ``GBDTConfig``) and scored on the held-out days:
``probe_em_acc``; ``probe_em_acc_without_env`` is the same probe trained and scored on prompts
with their environment readings removed; ``probe_over_frequency`` = ``probe_em_acc`` over the
time-of-day frequency baseline's EM-Acc on the same samples (``probe_frequency_em_acc``). The
samples are the logged app/voice/physical operations (automations are not recommendations).

Writes ``sim_report.json``, ``sim_report.md`` and PNG plots (matplotlib, Agg) into ``out``.
"""

from __future__ import annotations

import bisect
import json
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import numpy as np

from agent.baselines.frequency import FrequencyBaseline
from agent.baselines.gbdt import (
    ENV_FEATURES,
    FEATURES,
    GBDTConfig,
    features,
    fit_matrix,
    log_contexts,
    training_matrix,
)
from agent.metrics import score
from sim.candidates import is_noop, plausible_sets
from sim.catalog import DEVICE_BUCKETS, device_type
from sim.describe import describe
from sim.prompts import HistoryIndex, device_state
from sim.records import SOURCES
from sim.world import SimConfig, simulate_home
from sim.world.acceptance import p_accept
from sim.world.oracle import oracle_predict

CURTAIN_MINUTES = (10, 30, 50)  # minutes of each hour at which the curtain recommendation is judged
TARGETS = {"oracle_em_acc": (0.6, 0.9), "frequency_over_oracle_max": 0.45, "probe_over_frequency_min": 1.8,
           "probe_env_gain_min": 0.03, "curtain_peak_min": 0.3}
CURTAIN_HOURS = {"morning": range(6, 10), "midday": range(11, 17), "night": range(19, 24)}


@dataclass(frozen=True)
class SimReportConfig:
    """Arguments of ``homepilot sim-report``."""

    homes: int = 50  # homes to simulate, 1..100000
    days: int = 14  # training days per home (the baseline's history), 1..365
    seed: int = 0  # global seed (SimConfig.seed)
    out: str = "sim_report"  # output directory
    test_days: int = 7  # held-out days after the training days, 1..60
    workers: int = 1  # processes, 1..64 (results do not depend on it)
    sim: dict = field(default_factory=dict)  # extra SimConfig knobs (e.g. {"noise_scale": 0.5})

    def __post_init__(self) -> None:
        for name, lo, hi in (("homes", 1, 100000), ("days", 1, 365), ("test_days", 1, 60), ("workers", 1, 64)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ValueError(f"SimReportConfig.{name} must be an integer in {lo}..{hi}, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"SimReportConfig.seed must be an integer >= 0, got {self.seed!r}")
        self.sim_config()  # SimConfig validates the extra knobs and names a bad one

    def sim_config(self) -> SimConfig:
        return SimConfig(seed=self.seed, days=self.days + self.test_days, **self.sim)


def _is_curtain(acts) -> bool:
    return all(a.device.split("_")[0] == "curtain" for a in acts)


def curtain_proposals(log, freq: FrequencyBaseline, cut, days: int) -> list[tuple]:
    """(time, actions) of the curtain recommendations the report judges: at ``CURTAIN_MINUTES`` of
    every hour of ``days`` days from ``cut``, the frequency recommender's curtain operation, unless
    the logged operations before that time already put it in place (``device_state``, ``is_noop``
    with the catalogue's effects); none in a home without a curtain."""
    types = log.home.types()
    curtains = [t for t, ty in types.items() if ty == "curtain"]
    if not curtains:
        return []
    history = HistoryIndex(log.operations)
    out = []
    for d in range(days):
        for h in range(24):
            for minute in CURTAIN_MINUTES:
                t = cut + timedelta(days=d, hours=h, minutes=minute)
                acts = freq.predict(t, keep=_is_curtain)
                if not acts:
                    continue
                known = dict(zip(curtains, (dict(s) for s in device_state(history, t, curtains)), strict=True))
                if not is_noop(acts, known, types):
                    out.append((t, acts))
    return out


def home_summary(cfg: SimReportConfig, index: int) -> dict:
    """Everything the report needs from one home (small and picklable: runs in a worker)."""
    log = simulate_home(cfg.sim_config(), index)
    cut = log.start + timedelta(days=cfg.days)
    train = [o for o in log.operations if o.time < cut]
    freq = FrequencyBaseline().fit(train)
    test = [o for o in log.operations if o.time >= cut and o.logged]
    cats = Counter()
    for o in log.operations:
        for a in o.actions:
            cats[device_type(log.home.types()[a.target]).category] += 1
    curtain = [[] for _ in range(24)]
    for t, acts in curtain_proposals(log, freq, cut, cfg.test_days):
        curtain[t.hour].append(p_accept(log, t, acts, describe(acts)).p)
    probe = {"train": [], "test": []}  # (prompt, types, label actions)
    for c in log_contexts(log):
        probe["train" if c[0].time < cut else "test"].append(c)
    probe_freq = [freq.predict(o[0].time) for o in probe["test"]]
    weekday = FrequencyBaseline().fit(o for o in train if o.time.weekday() < 5)
    weekend = FrequencyBaseline().fit(o for o in train if o.time.weekday() >= 5)
    succ = successors(train)
    logged = [o for o in log.operations if o.logged]
    times = [o.time for o in logged]
    daytype, previous = [], []
    for o in test:
        split = weekday if o.time.weekday() < 5 else weekend
        daytype.append(split.predict(o.time) or freq.predict(o.time))
        prev = _previous(logged, times, o)
        nxt = succ.get(frozenset(prev.actions)) if prev is not None else None
        previous.append(nxt.most_common(1)[0][0] if nxt else freq.predict(o.time))
    return {
        "daytype": daytype, "previous": previous,
        "bucket": log.home.bucket, "n_devices": log.home.n_devices, "residents": log.home.residents,
        "n_ops": len(log.operations), "n_multi": sum(len(o.actions) > 1 for o in log.operations),
        "n_unlogged": sum(not o.logged for o in log.operations), "sources": Counter(o.source for o in log.operations),
        "categories": cats, "hours": Counter(o.time.hour for o in log.operations),
        "labels": [o.actions for o in test], "oracle": [oracle_predict(log, o.time) for o in test],
        "frequency": [freq.predict(o.time) for o in test],
        "exposures": len(log.exposures), "accepted": sum(e.accepted for e in log.exposures), "curtain": curtain,
        "probe": probe, "probe_frequency": probe_freq,
    }


SUCCESSOR_WINDOW = timedelta(minutes=60)


def successors(ops) -> dict[frozenset, Counter]:
    """For each logged action set, how often each action set followed it within an hour."""
    out: dict[frozenset, Counter] = {}
    logged = [o for o in ops if o.logged]
    for a, b in zip(logged, logged[1:], strict=False):
        if b.time - a.time <= SUCCESSOR_WINDOW:
            out.setdefault(frozenset(a.actions), Counter())[b.actions] += 1
    return out


def _previous(logged, times, op):
    """The last logged operation before ``op`` (within the successor window), or None.
    ``times``: the times of ``logged`` (sorted)."""
    i = bisect.bisect_left(times, op.time) - 1
    prev = logged[i] if i >= 0 else None
    return prev if prev is not None and op.time - prev.time <= SUCCESSOR_WINDOW else None


PROBE = GBDTConfig(seed=0)  # the baseline's own options: rounds chosen on the last 2 training days


def _matrices(contexts) -> tuple[list[np.ndarray], list[list]]:
    """Per context: its candidates' feature matrix (``agent.baselines.gbdt.features``) and candidates."""
    xs, cands = [], []
    for p, types, _ in contexts:
        c = plausible_sets(p, types)
        cands.append(c)
        xs.append(features(p, types, c) if c else np.zeros((0, len(FEATURES))))
    return xs, cands


def learnability_probe(summaries: list[dict]) -> dict:
    """Train the GBDT reranker on the homes' training-day contexts and score it on the held-out
    days, with and without the prompts' environment readings (see the module docstring).

    Only the environment columns (``ENV_FEATURES``) read a prompt's readings, so "without env"
    blanks those columns (as ``features`` does for a prompt that carries no readings) instead of
    computing every feature twice."""
    train = [c for s in summaries for c in s["probe"]["train"]]
    test = [c for s in summaries for c in s["probe"]["test"]]
    nan = float("nan")
    out: dict = {"probe_em_acc": nan, "probe_em_acc_without_env": nan, "probe_frequency_em_acc": nan,
                 "probe_over_frequency": nan, "probe_samples": len(test),
                 "probe_em_acc_by_device_bucket": dict.fromkeys(DEVICE_BUCKETS, nan)}
    if not train or not test:
        return out
    labels = [label for _, _, label in test]
    buckets = [s["bucket"] for s in summaries for _ in s["probe"]["test"]]
    freq = score(labels, [p for s in summaries for p in s["probe_frequency"]])["em_acc"]
    out["probe_frequency_em_acc"] = freq
    try:
        tm = training_matrix(train)
    except ValueError:  # no training context has a candidate (a tiny run)
        return out
    if not tm.y.any():  # no label among the candidates (a tiny run)
        return out
    vx, vc = _matrices(test)
    for key, strip in (("probe_em_acc", False), ("probe_em_acc_without_env", True)):
        if strip:
            x = tm.x.copy()
            x[:, list(ENV_FEATURES)] = np.nan
            tm = replace(tm, x=x)
        booster = fit_matrix(tm, PROBE).booster
        pred = []
        for m, cs in zip(vx, vc, strict=True):
            if strip and len(m):
                m = m.copy()
                m[:, list(ENV_FEATURES)] = np.nan
            pred.append(cs[int(np.argmax(booster.predict(m)))] if cs else ())
        out[key] = score(labels, pred)["em_acc"]
        if not strip:
            for b in DEVICE_BUCKETS:
                idx = [i for i, k in enumerate(buckets) if k == b]
                out["probe_em_acc_by_device_bucket"][b] = (
                    score([labels[i] for i in idx], [pred[i] for i in idx])["em_acc"] if idx else nan)
    out["probe_over_frequency"] = out["probe_em_acc"] / freq if freq > 0 else nan
    return out


def _share(c: Counter, keys=None) -> dict[str, float]:
    total = sum(c.values()) or 1
    return {k: c.get(k, 0) / total for k in (keys or sorted(c))}


def compute(cfg: SimReportConfig, progress: Callable[[int], None] | None = None) -> dict:
    """The report's figures (the JSON) from simulating ``cfg.homes`` homes."""
    if cfg.workers > 1:
        import multiprocessing as mp

        from sim.dataset.build import die_with_parent

        with ProcessPoolExecutor(cfg.workers, mp_context=mp.get_context("fork"), initializer=die_with_parent,
                                 initargs=(os.getpid(),)) as ex:
            summaries = []
            for s in ex.map(home_summary, [cfg] * cfg.homes, range(cfg.homes), chunksize=4):
                summaries.append(s)
                if progress:
                    progress(1)
    else:
        summaries = []
        for i in range(cfg.homes):
            summaries.append(home_summary(cfg, i))
            if progress:
                progress(1)
    home_days = cfg.homes * (cfg.days + cfg.test_days)
    n_ops = sum(s["n_ops"] for s in summaries) or 1
    src, cats, hours, personas, buckets = Counter(), Counter(), Counter(), Counter(), Counter()
    for s in summaries:
        src.update(s["sources"])
        cats.update(s["categories"])
        hours.update(s["hours"])
        personas.update(s["residents"])
        buckets[s["bucket"]] += 1
    labels = [x for s in summaries for x in s["labels"]]
    by_bucket: dict[str, dict[str, float]] = {"oracle": {}, "frequency": {}, "n": {}}
    for b in DEVICE_BUCKETS:
        lab = [x for s in summaries if s["bucket"] == b for x in s["labels"]]
        by_bucket["n"][b] = len(lab)
        for m in ("oracle", "frequency"):
            pred = [x for s in summaries if s["bucket"] == b for x in s[m]]
            by_bucket[m][b] = score(lab, pred)["em_acc"] if lab else float("nan")
    oracle = score(labels, [x for s in summaries for x in s["oracle"]]) if labels else {"em_acc": float("nan")}
    freq = score(labels, [x for s in summaries for x in s["frequency"]]) if labels else {"em_acc": float("nan")}
    learn = {k: score(labels, [x for s in summaries for x in s[k]])["em_acc"] if labels else float("nan")
             for k in ("daytype", "previous")}
    curtain = [[p for s in summaries for p in s["curtain"][h]] for h in range(24)]
    n_exp = sum(s["exposures"] for s in summaries)
    probe = learnability_probe(summaries)
    return {
        "config": asdict(cfg), "start": str(cfg.sim_config().start),
        "homes": cfg.homes, "home_days": home_days, "n_operations": n_ops, "n_test_samples": len(labels),
        "ops_per_home_day": n_ops / home_days,
        "share_multi_action": sum(s["n_multi"] for s in summaries) / n_ops,
        "share_unlogged": sum(s["n_unlogged"] for s in summaries) / n_ops,
        "ops_by_source": _share(src, list(SOURCES)),
        "ops_by_category": _share(cats),
        "ops_by_hour": [hours.get(h, 0) / home_days for h in range(24)],
        "homes_by_bucket": {b: buckets.get(b, 0) for b in DEVICE_BUCKETS},
        "residents_by_persona": dict(sorted(personas.items())),
        "oracle_em_acc": oracle["em_acc"], "frequency_em_acc": freq["em_acc"],
        "oracle_lm_f1": oracle.get("lm_f1"), "frequency_lm_f1": freq.get("lm_f1"),
        "em_acc_by_device_bucket": by_bucket,
        # is there signal beyond the time of day? (simple count-based predictors, same test samples)
        "frequency_daytype_em_acc": learn["daytype"], "previous_op_em_acc": learn["previous"],
        **probe,
        "curtain_acceptance_by_hour": [sum(c) / len(c) if c else float("nan") for c in curtain],
        "curtain_samples_by_hour": [len(c) for c in curtain],
        "logging_policy": {"exposures": n_exp,
                           "acceptance_rate": sum(s["accepted"] for s in summaries) / max(1, n_exp)},
    }


def _falls(by_bucket: dict[str, float]) -> bool:
    """EM-Acc falls bucket after bucket from 1-5 to 20+ (paper Table 2)."""
    v = [by_bucket[b] for b in DEVICE_BUCKETS]
    return all(a > b for a, b in zip(v, v[1:], strict=False))


def curtain_means(r: dict) -> dict[str, float]:
    """Mean curtain acceptance over the morning (6-9 h), midday (11-16 h) and night (19-23 h) hours."""
    c = r["curtain_acceptance_by_hour"]
    out = {}
    for k, hs in CURTAIN_HOURS.items():
        v = [c[h] for h in hs if c[h] == c[h]]
        out[k] = sum(v) / len(v) if v else float("nan")
    return out


def check_targets(r: dict) -> dict[str, bool]:
    """The calibration targets (issue 15), each True/False."""
    lo, hi = TARGETS["oracle_em_acc"]
    b = r["em_acc_by_device_bucket"]
    c = curtain_means(r)
    return {
        "oracle_em_acc in [0.6, 0.9]": lo <= r["oracle_em_acc"] <= hi,
        "frequency_em_acc <= 0.45 x oracle":
            r["frequency_em_acc"] <= TARGETS["frequency_over_oracle_max"] * r["oracle_em_acc"],
        "probe_over_frequency >= 1.8": r["probe_over_frequency"] >= TARGETS["probe_over_frequency_min"],
        "probe_em_acc - probe_em_acc_without_env >= 0.03":
            r["probe_em_acc"] - r["probe_em_acc_without_env"] >= TARGETS["probe_env_gain_min"],
        "oracle accuracy falls bucket by bucket (1-5 > 6-10 > 11-20 > 20+)": _falls(b["oracle"]),
        "frequency accuracy falls bucket by bucket": _falls(b["frequency"]),
        "probe accuracy falls bucket by bucket": _falls(r["probe_em_acc_by_device_bucket"]),
        "curtain acceptance: morning (6-9h) > midday (11-16h)": c["morning"] > c["midday"],
        "curtain acceptance: night (19-23h) > midday (11-16h)": c["night"] > c["midday"],
        "curtain acceptance: morning or night peak >= 0.3":
            max(r["curtain_acceptance_by_hour"][h] for h in (*CURTAIN_HOURS["morning"], *CURTAIN_HOURS["night"]))
            >= TARGETS["curtain_peak_min"],
    }


PLOTS = ("curtain_acceptance_by_hour.png", "em_acc_by_bucket.png", "ops_by_hour.png", "ops_mix.png")  # _plots writes


def _plots(r: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out / name, dpi=100)
        plt.close(fig)
        files.append(name)

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, hours in CURTAIN_HOURS.items():  # the bands the targets compare
        ax.axvspan(hours[0] - 0.5, hours[-1] + 0.5, color="0.92" if name == "midday" else "#fff3d6", zorder=0)
    ax.bar(range(24), r["curtain_acceptance_by_hour"], color="tab:blue", zorder=2)
    ax.axhline(TARGETS["curtain_peak_min"], color="tab:red", linestyle="--", linewidth=1, zorder=3,
               label=f"target peak {TARGETS['curtain_peak_min']} (morning or night band, shaded)")
    top = max([TARGETS["curtain_peak_min"], *(v for v in r["curtain_acceptance_by_hour"] if v == v)])
    ax.set(xlabel="hour of day", ylabel="P(accept)", title="Curtain operation proposed by frequency recommender\n(only when not already in place)",
           xticks=range(0, 24, 2), ylim=(0, 1.2 * top))
    ax.legend(loc="upper left", fontsize=8)
    save(fig, "curtain_acceptance_by_hour.png")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    b = r["em_acc_by_device_bucket"]
    probe = r.get("probe_em_acc_by_device_bucket", {})
    series = [("oracle", [b["oracle"][k] for k in DEVICE_BUCKETS]),
              ("GBDT probe", [probe.get(k, float("nan")) for k in DEVICE_BUCKETS]),
              ("frequency", [b["frequency"][k] for k in DEVICE_BUCKETS])]
    xs = range(len(DEVICE_BUCKETS))
    for i, (label, ys) in enumerate(series):
        ax.bar([x + (i - 1) * 0.27 for x in xs], ys, 0.27, label=label)
    ax.set_xticks(list(xs), DEVICE_BUCKETS)
    ax.set(xlabel="devices in home", ylabel="EM-Acc (held-out week)", title="Accuracy by device-count bucket", ylim=(0, 1))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save(fig, "em_acc_by_bucket.png")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(range(24), r["ops_per_hour"] if "ops_per_hour" in r else r["ops_by_hour"], color="tab:green")
    ax.set(xlabel="hour of day", ylabel="operations per home-day", title="When operations happen")
    save(fig, "ops_by_hour.png")
    fig, axs = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key in zip(axs, ("ops_by_source", "ops_by_category"), strict=True):
        d = r[key]
        ax.bar(list(d), list(d.values()))
        ax.set_title(key.replace("_", " "))
        ax.tick_params(axis="x", rotation=45)
    save(fig, "ops_mix.png")
    return files


def _markdown(r: dict, targets: dict[str, bool], plots: list[str]) -> str:
    b = r["em_acc_by_device_bucket"]
    lines = [
        "# Simulator calibration report", "",
        f"{r['homes']} homes, {r['config']['days']} training days + {r['config']['test_days']} held-out days, "
        f"seed {r['config']['seed']}, first day {r['start']} ({r['home_days']} home-days, {r['n_operations']} operations, "
        f"{r['n_test_samples']} held-out test samples).", "",
        "| figure | value |", "|---|---|",
        f"| operations per home-day | {r['ops_per_home_day']:.2f} |",
        f"| share multi-action | {r['share_multi_action']:.3f} |",
        f"| share unlogged | {r['share_unlogged']:.3f} |",
        f"| oracle EM-Acc | {r['oracle_em_acc']:.3f} |",
        f"| frequency EM-Acc | {r['frequency_em_acc']:.3f} |",
        f"| frequency by weekday/weekend EM-Acc | {r['frequency_daytype_em_acc']:.3f} |",
        f"| most frequent successor of the previous operation EM-Acc | {r['previous_op_em_acc']:.3f} |",
        f"| learnability probe (GBDT reranker) EM-Acc | {r['probe_em_acc']:.3f} |",
        f"| probe without environment readings EM-Acc | {r['probe_em_acc_without_env']:.3f} |",
        f"| frequency EM-Acc on the probe's {r['probe_samples']} samples | {r['probe_frequency_em_acc']:.3f} |",
        f"| probe / frequency | {r['probe_over_frequency']:.2f} |",
        f"| logging-policy acceptance | {r['logging_policy']['acceptance_rate']:.3f} "
        f"({r['logging_policy']['exposures']} exposures) |", "",
        "## EM-Acc by device-count bucket (held-out week)", "",
        "| bucket | homes | samples | oracle | frequency | probe |", "|---|---|---|---|---|---|",
        *[f"| {k} | {r['homes_by_bucket'][k]} | {b['n'][k]} | {b['oracle'][k]:.3f} | {b['frequency'][k]:.3f} "
          f"| {r['probe_em_acc_by_device_bucket'][k]:.3f} |" for k in DEVICE_BUCKETS], "",
        "## Sources and categories", "",
        "sources: " + ", ".join(f"{k} {v:.3f}" for k, v in r["ops_by_source"].items()), "",
        "categories (actions): " + ", ".join(f"{k} {v:.3f}" for k, v in r["ops_by_category"].items()), "",
        "## Curtain acceptance by hour", "",
        " ".join(f"{h}h:{v:.2f}" for h, v in enumerate(r["curtain_acceptance_by_hour"])), "",
        "## Targets", "", *[f"- [{'x' if ok else ' '}] {k}" for k, ok in targets.items()], "",
        "## Plots", "", *[f"![{p}]({p})" for p in plots], "",
    ]
    return "\n".join(lines)


def main(cfg: SimReportConfig, progress: Callable[[int], None] | None = None) -> dict:
    """Compute the report and write sim_report.json, sim_report.md and the PNG plots into ``cfg.out``
    (claimed first, ``sim.outdir``: a new or empty folder, or an earlier simulator report)."""
    from sim import outdir

    out = outdir.claim(cfg.out, "sim-report", ("sim_report.json", "sim_report.md", *PLOTS))
    r = compute(cfg, progress)
    r["targets"] = check_targets(r)
    plots = _plots(r, out)
    (out / "sim_report.json").write_text(json.dumps(r, indent=2, default=str))
    (out / "sim_report.md").write_text(_markdown(r, r["targets"], plots))
    return r
