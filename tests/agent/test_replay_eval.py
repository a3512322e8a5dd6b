"""The replay evaluation: estimates vs a known truth on a hand-built feedback log, report files, config checks."""

import json
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agent.policy import Recommendation, gated
from agent.replay_eval import (
    ReplayEvalConfig,
    RewardModel,
    evaluate,
    order_rows,
    render_markdown,
    run,
    write_report,
)
from sim.dataset.schema import SCHEMAS
from sim.prompts import prompt_text
from sim.records import Action, serialize_actions

DEVICES = [("bedroom", "light", "light"), ("bedroom", "ac", "ac"), ("living_room", "curtain", "curtain")]
OPS = [  # the logging policy's candidates and the users' true acceptance probability of each
    ((Action("bedroom", "light", "power", "on"),), 0.7),
    ((Action("bedroom", "ac", "power", "on"),), 0.3),
    ((Action("living_room", "curtain", "action", "open"),), 0.5),
]
PROPS = np.array([0.5, 0.3, 0.2])  # non-uniform logging


def synthetic_rows(n_per_home=150, homes=4, seed=0):
    """Logged feedback with known truth: p_accept depends only on the operation and the home."""
    rng = np.random.default_rng(seed)
    rows = []
    for h in range(homes):
        t = datetime(2026, 3, 2, 6, 0)
        for _ in range(n_per_home):
            t += timedelta(minutes=int(rng.integers(20, 200)))
            k = int(rng.choice(3, p=PROPS))
            p = _p(h, k)
            rows.append({
                "home_id": f"h{h}", "user": "u0", "time": t,
                "prompt": prompt_text([], t, [], [(r, d) for r, d, _ in DEVICES]),
                "shown": serialize_actions(OPS[k][0]), "description": "do it", "propensity": float(PROPS[k]),
                "accepted": bool(rng.random() < p), "p_accept": p,
                "label": serialize_actions(OPS[k][0]) if rng.random() < 0.3 else "",
                "bucket": "1-5", "categories": ["Light"],
                "devices": [{"room": r, "device": d, "type": ty} for r, d, ty in DEVICES],
            })
    return rows


def _p(home: int, k: int) -> float:
    return min(0.95, OPS[k][1] + 0.05 * home)


class FixedPolicy:
    """Target: light on in the evening (confident), AC on otherwise (unsure), nothing at night."""

    name = "fixed-test-policy"

    def __init__(self, threshold=0.7):
        self.threshold = threshold

    def recommend(self, rows):
        out = []
        for r in rows:
            h = r["time"].hour
            if h < 6:
                out.append(gated((), "", 0.0, self.threshold, "night"))
            elif h >= 17:
                out.append(gated(OPS[0][0], "Turn on the bedroom light", 0.9, self.threshold, "evening"))
            else:
                out.append(gated(OPS[1][0], "Turn on the AC", 0.75 if h % 2 else 0.4, self.threshold, "day"))
        return out


def known_truth(rows, recs):
    out = np.zeros(len(rows))
    for i, (r, rec) in enumerate(zip(rows, recs, strict=True)):
        if rec.actions:
            k = next(j for j, (a, _) in enumerate(OPS) if a == rec.actions)
            out[i] = _p(int(r["home_id"][1:]), k)
    return out


def _dataset(tmp_path, rows):
    for split in ("test", "train"):
        d = tmp_path / "data" / "feedback"
        d.mkdir(parents=True, exist_ok=True)
        part = rows if split == "test" else synthetic_rows(60, 4, seed=9)
        pq.write_table(pa.Table.from_pylist(part, schema=SCHEMAS["feedback"]), d / f"{split}-00000-of-00001.parquet")
    return tmp_path


def test_truth_inside_snips_and_dr_intervals(tmp_path):
    data = _dataset(tmp_path / "d", synthetic_rows())
    cfg = ReplayEvalConfig(data=str(data), out=str(tmp_path / "o"), n_boot=300)
    report = run(cfg, FixedPolicy(), known_truth)
    assert report["n_decisions"] == 600
    assert report["replay"]["matched"] == report["n_matched"] > 0
    assert report["inside"]["snips"] and report["inside"]["dr"], report
    for k in ("replay", "ips", "snips", "dr"):
        assert report[k]["lo"] <= report[k]["value"] <= report[k]["hi"]
    assert 0 < report["exposure_rate"] < 1 and report["n_bins"] == 10
    assert sum(report["judged_by"].values()) == 600


def test_evaluate_hand_worked_counts():
    rows = order_rows(synthetic_rows(10, 2, seed=1))
    policy = FixedPolicy()
    recs = policy.recommend(rows)
    cfg = ReplayEvalConfig(data="unused", out="unused", n_boot=0, threshold=0.7)
    rep = evaluate(rows, recs, known_truth(rows, recs), cfg, RewardModel().fit(rows), np.random.default_rng(0))
    exposed = [bool(r.actions) and r.confidence >= 0.7 for r in recs]
    matched = [e and r["shown"] == serialize_actions(x.actions) for e, r, x in zip(exposed, rows, recs, strict=True)]
    assert rep["n_exposed"] == sum(exposed) and rep["n_matched"] == sum(matched)
    assert rep["exposure_rate"] == pytest.approx(np.mean(exposed))
    truth = known_truth(rows, recs)
    assert rep["live_acceptance"] == pytest.approx(truth[np.array(exposed)].mean())
    # replay = mean logged answer over matched exposed points
    acc = [r["accepted"] for r, m in zip(rows, matched, strict=True) if m]
    assert rep["replay"]["value"] == pytest.approx(np.mean(acc))
    # cumulative reward = +1 / -1 over exposed recommendations as judged by HomeReplay-v0
    assert rep["cumulative_reward"] == pytest.approx(
        (2 * rep["acceptance_rate"] - 1) * rep["n_exposed"])


def test_threshold_one_exposes_nothing():
    rows = order_rows(synthetic_rows(5, 1))
    recs = FixedPolicy(threshold=1.0).recommend(rows)
    cfg = ReplayEvalConfig(data="x", out="x", n_boot=0, threshold=1.0)
    rep = evaluate(rows, recs, None, cfg, RewardModel().fit(rows), np.random.default_rng(0))
    assert rep["n_exposed"] == 0 and rep["exposure_rate"] == 0 and rep["cumulative_reward"] == 0
    assert np.isnan(rep["replay"]["value"]) and np.isnan(rep["live_acceptance"])


def test_report_files(tmp_path):
    data = _dataset(tmp_path / "d", synthetic_rows(40, 2))
    cfg = ReplayEvalConfig(data=str(data), out=str(tmp_path / "o"), n_boot=50)
    report = run(cfg, FixedPolicy(), known_truth)
    path = write_report(report, cfg.out)
    got = json.loads(path.read_text())
    for k in ("live_acceptance", "replay", "ips", "snips", "dr", "acceptance_rate", "exposure_rate",
              "device_coverage", "aurc", "ece", "n_bins", "cumulative_reward"):
        assert k in got
    assert set(got["replay"]) >= {"value", "lo", "hi", "matched"} and set(got["dr"]) >= {"value", "lo", "hi"}
    md = (tmp_path / "o" / "replay.md").read_text()
    assert "Live ground truth" in md and "ECE (10 bins)" in md and "p_accept" in md
    assert md == render_markdown(report)


def test_reward_model_shrinks_to_global_rate():
    rows = synthetic_rows(100, 1)
    m = RewardModel(prior=5.0).fit(rows)
    types = {(r, d): t for r, d, t in DEVICES}
    assert 0 < m.global_rate < 1
    assert m.predict(OPS[0][0], types) > m.predict(OPS[1][0], types)  # 0.7 vs 0.3 true rates
    assert m.predict((), types) == 0.0
    assert m.predict((Action("bedroom", "tv", "power", "on"),), types) == m.global_rate


@pytest.mark.parametrize("kw, field", [({"threshold": 1.5}, "threshold"), ({"mode": "sim"}, "mode"),
                                       ({"penalty": -1}, "penalty"), ({"n_bins": 0}, "n_bins"),
                                       ({"level": 1.0}, "level"), ({"n_boot": -1}, "n_boot"),
                                       ({"n_boot": 39}, r"n_boot must be 0 \(no intervals\) or >= 40 for 95%"),
                                       ({"n_boot": 99, "level": 0.99}, ">= 200 for 99%")])
def test_config_checks_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        ReplayEvalConfig(data="d", out="o", **kw)


# ---------------------------------------------------------------- end to end on a generated tiny dataset


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from sim.dataset.build import DatasetConfig, build

    out = tmp_path_factory.mktemp("replay_data")
    build(DatasetConfig(out=str(out), preset="tiny", workers=1))
    return out


def test_resimulated_truth_reproduces_logged_p_accept(generated):
    from agent.replay_truth import SimulatorTruth
    from sim.describe import N_STYLES, describe
    from sim.envs.replay import read_feedback
    from sim.records import parse_actions

    rows = order_rows(read_feedback(generated, "test"))
    recs = [Recommendation(parse_actions(r["shown"]), r["description"], 1.0, True, "logged") for r in rows]
    truth = SimulatorTruth(generated)
    assert len(rows) > 5
    assert truth.own(rows, recs) == pytest.approx([r["p_accept"] for r in rows], abs=1e-12)
    # the logged description is one of the describer's phrasings: the estimand averages over them
    for r, rec in zip(rows, recs, strict=True):
        assert r["description"] in {describe(rec.actions, s) for s in range(N_STYLES)}
    by_style = [truth.own(rows, [Recommendation(x.actions, describe(x.actions, s), 1.0, True, "logged") for x in recs]) for s in range(N_STYLES)]
    assert truth(rows, recs) == pytest.approx(np.mean(by_style, axis=0))
    assert truth.check(rows) == 1.0  # a dataset of this simulator version passes
    off = [{**r, "p_accept": r["p_accept"] / 2 + 0.01} if i < 2 else r for i, r in enumerate(rows)]
    assert truth.check(off, max_bad=0.5) == pytest.approx(1 - 2 / len(rows))  # rare boundary rows are tolerated
    with pytest.raises(ValueError, match="2 of .* another simulator version"):
        truth.check(off, max_bad=0.01)


def test_cli_replay_baseline_end_to_end(generated, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    outs = []
    for k in range(2):
        out = tmp_path / f"o{k}"
        res = CliRunner().invoke(app, ["replay", "--data", str(generated), "--model", "baseline", "--out", str(out),
                                       "--n-boot", "100"])
        assert res.exit_code == 0, res.output
        outs.append((out / "replay.json").read_text())
    assert outs[0] == outs[1]  # same seed, same report
    rep = json.loads(outs[0])
    assert rep["policy"] == "frequency-baseline" and rep["mode"] == "replay"
    assert 0 <= rep["live_acceptance"] <= 1 and rep["n_exposed"] > 0
    assert rep["replay"]["matched"] <= rep["n_exposed"] <= rep["n_decisions"]
    assert "p_accept" in (tmp_path / "o0" / "replay.md").read_text()


def test_cli_replay_live_mode(generated, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    res = CliRunner().invoke(app, ["replay", "--data", str(generated), "--out", str(tmp_path), "--mode", "live",
                                   "--threshold", "0.2", "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "replay.json").read_text())
    assert rep["mode"] == "live" and rep["live"]["decisions"] > 0
    assert rep["live_acceptance"] == rep["live"]["expected"]
    assert "HomeLive-v0" in (tmp_path / "replay.md").read_text()


def test_cli_replay_bad_input(tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    res = CliRunner().invoke(app, ["replay", "--data", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "feedback" in res.output
    res = CliRunner().invoke(app, ["replay", "--data", str(tmp_path), "--out", "o", "--threshold", "2"])
    assert res.exit_code == 1 and "threshold" in res.output


def test_recommender_policy_builds_contexts_and_keeps_its_gate():
    from agent.context import Context
    from agent.replay_eval import RecommenderPolicy

    seen = []

    class FakeRecommender:
        def recommend_batch(self, contexts):
            seen.extend(contexts)
            return [Recommendation(OPS[0][0], "Turn on the bedroom light", 0.65, i % 2 == 0, "fake")
                    for i in range(len(contexts))]

    policy = RecommenderPolicy.__new__(RecommenderPolicy)
    policy.name, policy.model = "run:fake", FakeRecommender()
    rows = order_rows(synthetic_rows(3, 1))
    recs = policy.recommend(rows)
    assert all(isinstance(c, Context) for c in seen) and len(seen) == 3
    assert seen[0].types == {(r, d): t for r, d, t in DEVICES} and seen[0].time == rows[0]["time"]
    assert [r.exposed for r in recs] == [True, False, True] and recs[0].confidence == 0.65
    cfg = ReplayEvalConfig(data="x", out="x", n_boot=0, threshold=0.9)  # the policy's own gate wins
    rep = evaluate(rows, recs, None, cfg, RewardModel().fit(rows), np.random.default_rng(0))
    assert rep["n_exposed"] == 2


def test_truth_resimulates_unseen_homes_as_generated(tmp_path):
    """Unseen homes simulate only their warm-up and test days (a later start): the one hidden truth
    must re-simulate them with that config. The tiny preset hides the difference (14 warm-up days
    cover all 4 days), so this dataset shortens the warm-up until the two configs differ."""
    from agent.evaluate import EvaluateConfig, evaluate
    from agent.replay_truth import SimulatorTruth
    from sim.dataset.build import DatasetConfig, build, sim_config
    from sim.envs.replay import read_feedback
    from sim.world import simulate_home

    data = tmp_path / "d"
    cfg = DatasetConfig(out=str(data), preset="tiny", days=6, test_days=2, unseen_warmup_days=1, workers=1)
    build(cfg)
    gen = SimulatorTruth(data).gen
    assert sim_config(gen, True).start != sim_config(gen, False).start  # unseen homes differ here
    rows = order_rows(read_feedback(data, "test_unseen"))
    assert len(rows) >= 3
    assert SimulatorTruth(data).check(rows) == 1.0
    # the seen-home config would not reproduce the unseen homes' logged acceptance
    home, t = rows[0]["home_id"], rows[0]["time"]
    wrong = simulate_home(sim_config(gen, False), int(home.lstrip("h")))
    from sim.records import parse_actions
    from sim.world.acceptance import p_accept

    wrong_p = [p_accept(wrong, r["time"], parse_actions(r["shown"]), r["description"]).p
               for r in rows if r["home_id"] == home]
    logged = [r["p_accept"] for r in rows if r["home_id"] == home]
    assert wrong_p != pytest.approx(logged, abs=1e-9), t
    # evaluate's oracle reads the same truth: it scores test_unseen like test (the ceiling holds)
    report = evaluate(EvaluateConfig(data=data, runs=[], out=tmp_path / "r", baselines=("Frequency",), n_boot=0))
    by = report["by_split"]
    assert by["test_unseen"]["Oracle"]["em_acc"] > 0.3
    assert abs(by["test_unseen"]["Oracle"]["em_acc"] - by["test"]["Oracle"]["em_acc"]) < 0.35


def test_cli_replay_n_boot_0_says_there_are_no_intervals(generated, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    res = CliRunner().invoke(app, ["replay", "--data", str(generated), "--out", str(tmp_path / "o"), "--n-boot", "0"])
    assert res.exit_code == 0, res.output
    assert "(no intervals: --n-boot 0)" in res.output and "nan" not in res.output
    assert "no intervals (`--n-boot 0`)" in (tmp_path / "o" / "replay.md").read_text()
    res = CliRunner().invoke(app, ["replay", "--data", str(generated), "--out", str(tmp_path / "p"), "--n-boot", "5"])
    assert res.exit_code == 1 and "homepilot replay: n_boot must be 0 (no intervals) or >= 40" in res.output


def test_cli_replay_names_an_empty_split_and_a_foreign_out(generated, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    data = _dataset(tmp_path / "d", [])  # an empty test split
    res = CliRunner().invoke(app, ["replay", "--data", str(data), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert f"homepilot replay: --data: {data / 'data' / 'feedback'} has no test rows" in res.output
    assert not (tmp_path / "o").exists()
    before = sorted(p.name for p in generated.iterdir())
    res = CliRunner().invoke(app, ["replay", "--data", str(generated), "--out", str(generated)])
    assert res.exit_code == 1
    assert f"output directory {generated} holds a generated dataset, not a replay report" in res.output
    assert sorted(p.name for p in generated.iterdir()) == before
