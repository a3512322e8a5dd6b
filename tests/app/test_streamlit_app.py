"""The Streamlit app: the pure live-session core (app.live_state), the readers (app.browse), and
every page run headless with AppTest (widgets by key, play/step/accept/reject, error boxes)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from app.browse import (  # noqa: E402
    BrowseError,
    curve_rows,
    goal_lines,
    load_report,
    over_seeds,
    sensitivity_rows,
    subset_rows,
    summarize_dataset,
    whole_rows,
)
from app.live_state import (  # noqa: E402
    AdvisorChoice,
    Decision,
    FrequencyAdvisor,
    GBDTAdvisor,
    LiveSession,
    SessionConfig,
    Suggestion,
    UsualAdvisor,
    acceptance_by_hour,
    choose_advisor,
    exposure_curve,
    suggestion_from,
)
from sim.records import Action, Operation  # noqa: E402

ENTRY = str(Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py")
TIMEOUT = 60


# ---------------------------------------------------------------- pure core


def _session(threshold: float = 0.0, **kw) -> LiveSession:
    return LiveSession(SessionConfig(seed=0, index=0, days=10, threshold=threshold, **kw))


def _step_to_shown(s: LiveSession, limit: int = 40) -> Decision:
    for _ in range(limit):
        d = s.step()
        assert d is not None, "the home ended before a recommendation was shown"
        if d.exposed:
            return d
    raise AssertionError("no recommendation was shown")


def test_step_records_a_decision_gated_by_confidence():
    s = _session(threshold=0.5)
    t0 = s.now
    d = s.step()
    assert d is not None and d.time > t0 and s.now == d.time
    assert d.exposed == (not d.suggestion.abstained and d.suggestion.confidence >= 0.5)
    assert 0.0 <= d.p_accept <= 1.0 and d.user in s.home.world.users
    assert s.metrics()["decisions"] == 1


def test_accept_applies_the_operation_and_updates_metrics():
    s = _session()
    d = _step_to_shown(s)
    n_ops = len(s.home.log.operations)
    assert math.isnan(s.metrics()["acceptance_rate"])
    s.accept()
    assert d.answer == "accepted" and d.by == "you"
    op = s.home.log.operations[-1]
    assert len(s.home.log.operations) == n_ops + 1 and op.source == "app" and op.actions == d.suggestion.actions
    state = s.home.snapshot()["rooms"][d.suggestion.actions[-1].room]["devices"]
    a = d.suggestion.actions[-1]
    assert state[a.device][a.field] == a.value
    # what changed, (before, after), until the next step: the recommended settings that were not in place
    set_by = {(x.target, x.field): x.value for x in d.suggestion.actions}
    assert s.changed and all(after == set_by[(k, f)] for k, fs in s.changed.items() for f, (_, after) in fs.items()
                             if (k, f) in set_by)
    m = s.metrics()
    assert m["accepted"] == 1 and m["answered"] == 1 and m["acceptance_rate"] == 1.0
    with pytest.raises(ValueError, match="no shown recommendation"):
        s.accept()
    s.step()
    assert not s.changed


def test_reject_leaves_the_home_and_step_leaves_a_pending_one_unanswered():
    s = _session()
    _step_to_shown(s)
    n_ops = len(s.home.log.operations)
    s.reject()
    assert len(s.home.log.operations) == n_ops and not s.changed
    assert s.metrics()["acceptance_rate"] == 0.0
    d2 = _step_to_shown(s)
    assert s.metrics()["waiting"] == 1
    s.step()  # stepping on leaves d2 unanswered: counted as such, not as an answer
    assert d2.answer == "unanswered" and not d2.answered
    m = s.metrics()
    assert (m["answered"], m["accepted"], m["rejected"], m["unanswered"]) == (1, 0, 1, 1)
    assert m["waiting"] == (1 if s.pending else 0)  # the new decision point may wait in turn
    assert m["acceptance_rate"] == 0.0  # 0 of 1 answered; the unanswered one does not count
    assert m["shown"] + m["withheld"] + m["abstained"] == m["decisions"]


def test_tick_holds_in_manual_mode_and_auto_mode_is_deterministic():
    s = _session()
    d = _step_to_shown(s)
    assert s.tick(auto=False) is None and s.pending is d  # the clock waits for the person
    answers = []
    for _ in range(2):
        t = _session()
        for _ in range(8):
            t.tick(auto=True)
        assert t.pending is None
        answers.append([(x.time, x.answer, x.by) for x in t.decisions])
    assert answers[0] == answers[1] and len(answers[0]) == 8
    assert all(a in ("accepted", "rejected") and by == "simulated user" for _, a, by in answers[0] if a)


def test_home_runs_to_its_end():
    s = LiveSession(SessionConfig(seed=1, index=2, days=2, warmup_days=1, threshold=1.0))
    for _ in range(200):
        if s.step() is None:
            break
    assert s.finished and s.step() is None and s.tick(auto=True) is None


def _dec(i: int, conf: float, exposed: bool, answer: str | None, p: float, hour: int = 8,
         cats: tuple[str, ...] = ("Curtain",), abstain: bool = False) -> Decision:
    acts = () if abstain else (Action("bedroom", "curtain", "action", "open"),)
    return Decision(i, datetime(2026, 1, 5, hour, 0), "u0", Suggestion(acts, "open", conf), exposed, p,
                    categories=cats, answer=answer)


def test_exposure_curve_hand_worked():
    # acceptance = the simulated user's mean P(accept), whatever the answers were
    ds = [_dec(0, 0.9, True, "accepted", 0.8), _dec(1, 0.8, True, "rejected", 0.6),
          _dec(2, 0.5, False, None, 0.5), _dec(3, 0.0, False, None, 0.0, abstain=True)]
    c = {p["threshold"]: p for p in exposure_curve(ds, [0.0, 0.7, 0.95])}
    assert c[0.7]["exposure_rate"] == 0.5 and c[0.7]["acceptance_rate"] == pytest.approx(0.7)
    assert c[0.0]["exposure_rate"] == 0.75 and c[0.0]["acceptance_rate"] == pytest.approx(1.9 / 3)
    assert c[0.95]["exposure_rate"] == 0.0 and math.isnan(c[0.95]["acceptance_rate"])


def test_acceptance_by_hour_hand_worked():
    ds = [_dec(0, 0.9, True, "accepted", 0.8, hour=7), _dec(1, 0.9, True, "rejected", 0.8, hour=7),
          _dec(2, 0.9, True, "accepted", 0.8, hour=21, cats=("Curtain", "Light")),
          _dec(3, 0.2, False, None, 0.8, hour=12), _dec(4, 0.9, True, None, 0.8, hour=13),
          _dec(5, 0.9, True, "unanswered", 0.8, hour=14)]
    by = acceptance_by_hour(ds)
    assert set(by) == {"Curtain", "Light"}
    assert by["Curtain"][7] == (1, 2) and by["Curtain"][21] == (1, 1) and by["Light"][21] == (1, 1)
    assert by["Curtain"][12] == (0, 0) and by["Curtain"][13] == (0, 0) and by["Curtain"][14] == (0, 0)


def test_frequency_advisor_confidence_is_the_slot_share():
    t = datetime(2026, 1, 5, 7, 10)
    a, b = (Action("bedroom", "light", "power", "on"),), (Action("bedroom", "curtain", "action", "open"),)
    ops = [Operation(t, a), Operation(t.replace(minute=20), a), Operation(t.replace(minute=30), b)]
    adv = FrequencyAdvisor(ops)
    assert adv.confidence(t, a) == pytest.approx(2 / 3)
    assert adv.confidence(t.replace(hour=8), a) == pytest.approx(1 / 3)  # one slot away: halved
    assert adv.confidence(t, (Action("bedroom", "light", "power", "off"),)) == 0.0


def test_choose_advisor_falls_back_and_says_why(tmp_path):
    bad = tmp_path / "run"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    c = choose_advisor(str(bad), [])
    assert isinstance(c.advisor, FrequencyAdvisor) and "failed to load" in c.notice
    assert str(bad) in c.error
    c = choose_advisor(None, [])
    assert isinstance(c.advisor, FrequencyAdvisor) and not c.error and "no trained model" in c.notice

    def broken(_h):
        raise RuntimeError("boom")

    c = choose_advisor(None, [], fallback=broken)
    assert c.advisor is None and "boom" in c.error


def _two_device_context(current):
    """Three evenings of "light off" then "curtain close" at 21:00-21:20; the decision is 21:10 on the fourth."""
    from agent.context import Context

    off, close = (Action("bedroom", "light", "power", "off"),), (Action("bedroom", "curtain", "action", "close"),)
    hist = []
    for day in (2, 3, 4):
        hist += [Operation(datetime(2026, 3, day, 21, 0), off), Operation(datetime(2026, 3, day, 21, 20), close)]
    hist.append(Operation(datetime(2026, 3, 4, 21, 40), off))  # light off once more: its count is 4 of 7
    ctx = Context(devices=(("bedroom", "light", "light"), ("bedroom", "curtain", "curtain")), history=tuple(hist),
                  time=datetime(2026, 3, 5, 21, 10), current=current)
    return ctx, off, close


def test_usual_advisor_skips_what_is_in_place_and_gates_with_the_hour_share():
    ctx, off, close = _two_device_context({("bedroom", "light"): {"power": "on"}, ("bedroom", "curtain"): {}})
    assert [tuple(u) for u in ctx.prompt().usual][:2] == [off, close]  # most likely first
    adv = UsualAdvisor(ctx.history)
    s = adv.suggest(ctx)
    assert s.actions == off and s.confidence == pytest.approx(4 / 7) and "number 1 of" in s.reason
    # the light is already off: the curtain is next, and the page says why
    ctx, *_ = _two_device_context({("bedroom", "light"): {"power": "off"}, ("bedroom", "curtain"): {}})
    s = adv.suggest(ctx)
    assert s.actions == close and s.confidence == pytest.approx(3 / 7) and "already in place" in s.reason
    ctx, *_ = _two_device_context({("bedroom", "light"): {"power": "off"},
                                   ("bedroom", "curtain"): {"action": "close", "position": "0"}})
    s = adv.suggest(ctx)
    assert s.abstained and "already in place" in s.reason


def test_gbdt_advisor_answers_the_rerankers_best_set_not_in_place():
    from agent.baselines.gbdt import Ranked

    ctx, off, close = _two_device_context({("bedroom", "light"): {"power": "on"}, ("bedroom", "curtain"): {}})
    seen = []

    class Reranker:
        def rank(self, prompt, types, current):
            seen.append((prompt.time, current))
            return [Ranked(close, 0.6), Ranked(off, 0.3), Ranked((Action("bedroom", "light", "power", "on"),), 0.1)]

    s = GBDTAdvisor(Reranker()).suggest(ctx)
    assert s.actions == close and s.confidence == 0.6 and s.description
    assert [a for a, _ in s.alternatives] == [off, (Action("bedroom", "light", "power", "on"),)]
    assert seen == [(ctx.time, ctx.current)]  # the true state reaches the reranker

    class Empty:
        def rank(self, prompt, types, current):
            return []

    assert GBDTAdvisor(Empty()).suggest(ctx).abstained


def test_choose_advisor_by_kind():
    assert isinstance(choose_advisor(None, [], kind="usual").advisor, UsualAdvisor)
    c = choose_advisor("some/run", [], kind="frequency", load_model=lambda r: pytest.fail("loaded a model"))
    assert isinstance(c.advisor, FrequencyAdvisor) and "(chosen)" in c.notice
    sentinel = UsualAdvisor([])
    assert choose_advisor(None, [], kind="gbdt", load_gbdt=lambda: sentinel).advisor is sentinel

    def no_lightgbm():
        raise ImportError("no lightgbm here")

    c = choose_advisor(None, [], kind="gbdt", load_gbdt=no_lightgbm)
    assert isinstance(c.advisor, FrequencyAdvisor) and "no lightgbm here" in c.error and "unavailable" in c.notice
    with pytest.raises(ValueError, match="advisor must be one of"):
        choose_advisor(None, [], kind="oracle")
    with pytest.raises(ValueError, match="advisor must be one of"):
        SessionConfig(advisor="oracle")


def test_a_live_session_with_the_gbdt_reranker_trained_on_other_homes():
    from agent.baselines.gbdt import GBDTConfig, train_gbdt_simulated

    seeds = []

    def small(seed):
        seeds.append(seed)
        return GBDTAdvisor(train_gbdt_simulated(seed, homes=3, days=5, cfg=GBDTConfig(seed=seed, num_boost_round=40)))

    s = LiveSession(SessionConfig(seed=2, index=0, days=6, threshold=0.0, advisor="gbdt"), load_gbdt=small)
    assert seeds == [2] and isinstance(s.advisor, GBDTAdvisor) and "GBDT" in s.choice.notice
    shown = [d for _ in range(15) if (d := s.step()) is not None and d.exposed]
    assert shown and all(0.0 < d.suggestion.confidence <= 1.0 for d in shown)
    assert len({d.suggestion.actions for d in shown}) >= 3


def test_suggestion_from_a_recommendation_like_object():
    class Rec:
        actions = (Action("bedroom", "light", "power", "on"),)
        description = "Bedroom light on"
        confidence = 1.3
        attribute_probs = [{"device": 0.9, "field": 0.8, "value": 0.7}]
        exposed = True
        reason = ""

    s = suggestion_from(Rec())
    assert s.confidence == 1.0 and s.attributes == ({"device": 0.9, "field": 0.8, "value": 0.7},)


def test_a_failing_advisor_abstains_with_the_error():
    class Broken:
        name = "broken"

        def suggest(self, context):
            raise RuntimeError("model exploded")

    s = LiveSession(SessionConfig(seed=0, index=0, days=5, threshold=0.0), advisor_choice=AdvisorChoice(Broken()))
    d = s.step()
    assert d.suggestion.abstained and not d.exposed and "model exploded" in s.last_error


# ---------------------------------------------------------------- readers


def _report() -> dict:
    return {
        "whole": {"frequency": {"em_acc": 0.2, "lm_f1": 0.3, "rule": 0.25, "n": 10},
                  "homepilot": {"em_acc": 0.4, "lm_f1": 0.5, "rule": 0.45, "n": 10}},
        "by_subset": {"frequency": {"1-5": {"em_acc": 0.1, "lm_f1": 0.2, "rule": 0.15, "n": 4}},
                      "homepilot": {"1-5": {"em_acc": 0.3, "lm_f1": 0.4, "rule": 0.35, "n": 4}}},
        "exposure_curve": [{"threshold": 0.0, "exposure_rate": 1.0, "acceptance_rate": 0.3},
                           {"threshold": 0.7, "exposure_rate": 0.4, "acceptance_rate": 0.6}],
        "gate_at_0_7": {"exposure_rate": 0.4, "acceptance_rate": 0.6, "ungated_acceptance_rate": 0.3},
    }


def test_report_readers(tmp_path):
    from agent.report import write_report

    write_report(_report(), tmp_path)
    v = load_report(tmp_path)
    assert [r["method"] for r in whole_rows(v.report)] == ["frequency", "homepilot"]
    assert whole_rows(v.report)[1]["EM-Acc"] == 0.4
    assert subset_rows(v.report, "rule")[0]["DC 1-5"] == 0.15
    assert curve_rows(v.report)[1] == {"threshold": 0.7, "exposure_rate": 0.4, "acceptance_rate": 0.6}
    assert any(p.name == "exposure_curve.png" for p in v.images)
    (tmp_path / "report.json").write_text("{broken")
    with pytest.raises(BrowseError, match="not valid JSON"):
        load_report(tmp_path)


def test_report_rows_are_rounded_in_the_papers_order_with_cis():
    rep = _report()
    rep["whole"]["frequency"]["rule"] = -1.85e-19  # a mean of scores that cancel out
    rep["whole"]["frequency"]["ci95"] = {"em_acc": [0.1234567, 0.30000001], "lm_f1": [0.2, 0.4], "rule": [-0.01, 0.01]}
    rep["by_subset"]["frequency"] = {"Whole": {"em_acc": 0.2}, "Curtain": {"em_acc": 0.5}, "Light": {"em_acc": 0.123456},
                                     "20+": {"em_acc": 0.1}, "1-5": {"em_acc": 0.3}}
    rows = whole_rows(rep)
    assert list(rows[0]) == ["method", "EM-Acc", "LM-F1", "Rule", "EM-Acc 95% CI", "LM-F1 95% CI", "Rule 95% CI", "n"]
    assert rows[0]["Rule"] == 0.0 and math.copysign(1, rows[0]["Rule"]) == 1.0  # no -0.0
    assert rows[0]["EM-Acc 95% CI"] == "[0.123, 0.300]" and rows[1]["EM-Acc 95% CI"] == ""
    row = subset_rows(rep, "em_acc")[0]
    assert list(row) == ["method", "DC 1-5", "DC 20+", "Light", "Curtain", "Whole"]  # buckets, paper, others, Whole
    assert row["Light"] == 0.123


def _seeds_report() -> dict:
    """A ``homepilot reproduce`` report over two seeds: every figure an ``across_seeds`` summary."""
    from agent.metrics import across_seeds

    def over(a, b):
        return across_seeds([a, b])

    return {
        "seeds": [0, 1], "config_line": "data preset tiny, model preset tiny", "per_seed_reports": {},
        "whole": {"GBDT": {"em_acc": over(0.3, 0.5), "lm_f1": over(0.4, 0.6), "rule": over(0.3, 0.3)},
                  "PT+FT+DPO": {"em_acc": over(0.2, 0.2), "lm_f1": over(0.3, 0.3), "rule": over(0.2, 0.2)}},
        "by_subset": {"GBDT": {"1-5": {"em_acc": over(0.6, 0.8)}}, "PT+FT+DPO": {"1-5": {"em_acc": over(0.1, 0.3)}}},
        "exposure_curve": [{"threshold": over(0.7, 0.7), "exposure_rate": over(0.2, 0.4), "acceptance_rate": over(0.5, 0.7)}],
        "gate_at_0_7": {"method": "PT+FT+DPO", "threshold": over(0.7, 0.7), "exposure_rate": over(0.2, 0.4)},
        "goal": {"beats_gbdt": {"method": "PT+FT+DPO", "baseline": "GBDT", "met": False,
                                "metrics": {"em_acc": {"holds": False}, "lm_f1": {"holds": False}}},
                 "ablation_order": {"methods": ["FT", "PT+FT", "PT+FT+DPO"], "met": True,
                                    "metrics": {"em_acc": {"holds": True}, "rule": {"holds": True}}}},
        "sensitivity": {"model_size": {"rows": [{"preset": "tiny", "n_parameters": 1000, "em_acc": 0.21, "lm_f1": 0.3,
                                                 "rule": 0.22, "ci95": {"em_acc": [0.18, 0.24]},
                                                 "distinct_per_100": 6.5, "top_answer_share": 0.15}],
                                        "note": "trained at each preset"},
                        "history_length": {"rows": [{"history_k": 2, "em_acc": 0.2}, {"history_k": 8, "em_acc": 0.25}]}},
    }


def test_report_readers_over_seeds_give_means_sd_and_the_seed_interval():
    rep = _seeds_report()
    rows = whole_rows(rep)
    assert list(rows[0]) == ["method", "EM-Acc", "LM-F1", "Rule", "EM-Acc sd", "LM-F1 sd", "Rule sd",
                             "EM-Acc 95% CI", "LM-F1 95% CI", "Rule 95% CI", "n"]
    # mean 0.4, sd 0.1414, t975(1) = 12.706: 0.4 +- 12.706 * 0.1414 / sqrt(2) = 0.4 +- 1.2706
    assert rows[0]["EM-Acc"] == 0.4 and rows[0]["EM-Acc sd"] == 0.141 and rows[0]["n"] == 2
    assert rows[0]["EM-Acc 95% CI"] == "[-0.871, 1.671]"
    assert rows[1]["EM-Acc"] == 0.2 and rows[1]["EM-Acc sd"] == 0.0 and rows[1]["EM-Acc 95% CI"] == "[0.200, 0.200]"
    assert subset_rows(rep, "em_acc")[0]["DC 1-5"] == 0.7
    assert curve_rows(rep) == [{"threshold": 0.7, "exposure_rate": 0.3, "acceptance_rate": 0.6}]
    assert sensitivity_rows(rep, "model_size") == [{
        "preset": "tiny", "parameters": 1000, "EM-Acc": 0.21, "LM-F1": 0.3, "Rule": 0.22, "EM-Acc 95% CI": "[0.180, 0.240]",
        "distinct per 100": 6.5, "top answer share": 0.15}]
    assert [r["history k"] for r in sensitivity_rows(rep, "history_length")] == [2, 8]
    assert sensitivity_rows(rep, "context_length") == [] and sensitivity_rows(_report(), "model_size") == []
    assert goal_lines(rep) == [("beats gbdt (PT+FT+DPO vs GBDT): not met (holds on: no metric)", False),
                               ("ablation order (FT vs PT+FT vs PT+FT+DPO): met (holds on: em_acc, rule)", True)]
    assert not over_seeds(_report()) and over_seeds(rep)


def test_report_page_shows_a_reproduce_report(app_env, monkeypatch):
    rep_dir = app_env / "reproduce_report"
    rep_dir.mkdir()
    (rep_dir / "report.json").write_text(json.dumps(_seeds_report()))
    monkeypatch.setenv("HOMEPILOT_REPORT", str(rep_dir))
    at = AppTest.from_file(ENTRY, default_timeout=TIMEOUT).run()
    at.switch_page("pages/report_viewer.py").run()
    _clean(at)
    assert not at.error and not at.exception
    assert "seeds 0, 1" in at.info[0].value
    assert [w.value for w in at.warning] == ["beats gbdt (PT+FT+DPO vs GBDT): not met (holds on: no metric)"]
    assert len(at.success) == 1 and "ablation order" in at.success[0].value
    whole = at.dataframe[0].value
    assert whole["method"].tolist() == ["GBDT", "PT+FT+DPO"] and whole["EM-Acc"].tolist() == [0.4, 0.2]
    assert any(m.label == "exposure rate" and m.value == "0.300" for m in at.metric)
    assert not any(m.label == "method" for m in at.metric)  # the method names the section instead
    assert {h.value for h in at.subheader} >= {"Sensitivity: Model size (Fig. 7b)", "Sensitivity: History window at test (Fig. 7d)",
                                               "Exposure gate at 0.7: PT+FT+DPO"}


def test_card_front_matter_and_images(tmp_path):
    from app.browse import CardImage, card_blocks, split_card

    (tmp_path / "stats").mkdir()
    (tmp_path / "stats" / "a.png").write_bytes(b"\x89PNG")
    card = "---\nlicense: cc-by-4.0\nconfigs:\n- config_name: sft\n---\n# Title\n\ntext\n![a](stats/a.png)\n" \
           "![b](stats/missing.png) ![c](../outside.png)\nend\n"
    front, body = split_card(card)
    assert front == "license: cc-by-4.0\nconfigs:\n- config_name: sft" and body.startswith("# Title")
    assert split_card("# no header\n") == ("", "# no header\n")
    blocks = card_blocks(body, tmp_path)
    images = [b for b in blocks if isinstance(b, CardImage)]
    assert [(i.ref, i.exists) for i in images] == [("stats/a.png", True), ("stats/missing.png", False),
                                                   ("../outside.png", False)]
    assert images[0].path == (tmp_path / "stats" / "a.png").resolve()
    assert blocks[0].startswith("# Title") and blocks[-1].strip() == "end"


def _corrupt_dataset(root: Path) -> Path:
    (root / "data" / "homes").mkdir(parents=True)
    (root / "data" / "homes" / "train-00000-of-00001.parquet").write_bytes(b"not parquet at all")
    return root


def test_summarize_rejects_corrupt_and_missing(tmp_path):
    with pytest.raises(BrowseError, match="no data/ folder"):
        summarize_dataset(tmp_path)
    with pytest.raises(BrowseError, match="not a readable parquet"):
        summarize_dataset(_corrupt_dataset(tmp_path / "bad"))


# ---------------------------------------------------------------- AppTest: live home


@pytest.fixture
def app_env(monkeypatch, tmp_path):
    for k in ("HOMEPILOT_MODEL", "HOMEPILOT_DATA", "HOMEPILOT_REPORT", "HOMEPILOT_ADVISOR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HOMEPILOT_DEMO_CACHE", str(tmp_path / "demo_cache"))
    return tmp_path


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _clean(at: AppTest) -> None:
    """No exception, and no object leaked onto the page by Streamlit's magic (a bare expression)."""
    assert not at.exception
    assert not at.get("help"), "an expression statement was rendered by Streamlit magic"


def _live(app_env) -> AppTest:
    at = AppTest.from_file(ENTRY, default_timeout=TIMEOUT).run()
    _clean(at)
    return at


def test_live_page_widgets_by_key(app_env):
    at = _live(app_env)
    for key in ("live_start", "live_play", "live_pause", "live_step"):
        assert at.button(key=key) is not None
    assert at.slider(key="live_threshold").value == 0.7
    assert at.toggle(key="live_auto").value is False
    assert at.number_input(key="live_seed").value == 0
    assert at.selectbox(key="live_speed").value.startswith("normal")
    assert any("frequency baseline" in i.value for i in at.info)  # no model: the page says so
    assert _metric(at, "Decision points") == "0"


def test_live_step_accept_changes_the_metrics(app_env):
    at = _live(app_env)
    at.slider(key="live_threshold").set_value(0.0).run()
    for _ in range(30):
        at.button(key="live_step").click().run()
        assert not at.exception
        if not at.button(key="live_accept").disabled:
            break
    assert not at.button(key="live_accept").disabled, "no recommendation was shown"
    assert _metric(at, "Acceptance rate") == "–"
    s = at.session_state["live_session"]
    n_ops = len(s.home.log.operations)
    at.button(key="live_accept").click().run()
    _clean(at)
    assert _metric(at, "Acceptance rate") == "100%"
    assert (_metric(at, "Accepted"), _metric(at, "Rejected"), _metric(at, "Unanswered")) == ("1", "0", "0")
    assert len(at.session_state["live_session"].home.log.operations) == n_ops + 1
    assert at.button(key="live_accept").disabled
    changed = at.session_state["live_session"].changed  # the floor plan marks the device in its new state
    a = next(x for x in s.decisions[-1].suggestion.actions if x.target in changed)
    plan = next(m.value for m in at.markdown if 'class="floor-plan"' in m.value)
    chip = next(g for g in ET.fromstring(plan).iter("{http://www.w3.org/2000/svg}g")
                if (g.get("data-room"), g.get("data-device")) == a.target)
    assert chip.get("data-mark") == "changed" and "✓" in ET.tostring(chip, encoding="unicode")
    at.button(key="live_step").click().run()  # one step later the highlight is gone
    plan = next(m.value for m in at.markdown if 'class="floor-plan"' in m.value)
    assert 'data-mark="changed"' not in plan


def test_live_reject_path(app_env):
    at = _live(app_env)
    at.slider(key="live_threshold").set_value(0.0).run()
    for _ in range(30):
        at.button(key="live_step").click().run()
        if not at.button(key="live_reject").disabled:
            break
    at.button(key="live_reject").click().run()
    assert not at.exception
    assert _metric(at, "Acceptance rate") == "0%"


def test_live_play_ticks_once_per_run_and_pause_stops(app_env):
    at = _live(app_env)
    at.toggle(key="live_auto").set_value(True).run()
    at.button(key="live_play").click().run()  # the fragment ticks on this run ...
    for _ in range(3):  # ... and once per run after it (AppTest never fires the timer)
        at.run()
        assert not at.exception
    assert _metric(at, "Decision points") == "4"
    assert at.session_state["live_session"].pending is None  # auto mode answered everything shown
    at.button(key="live_pause").click().run()
    at.run()
    assert _metric(at, "Decision points") == "4"


def test_live_play_to_the_end_of_the_home_stops_the_timer(app_env):
    at = _live(app_env)
    at.number_input(key="live_days").set_value(3).run()
    at.button(key="live_start").click().run()
    at.toggle(key="live_auto").set_value(True).run()
    at.button(key="live_play").click().run()
    for _ in range(40):
        if at.session_state["live_session"].finished:
            break
        at.run()
        _clean(at)
    assert at.session_state["live_session"].finished and at.session_state["live_playing"] is False
    assert any("simulated days are over" in i.value for i in at.info)
    assert at.button(key="live_play").disabled and at.button(key="live_step").disabled


def test_live_corrupt_model_shows_an_error_box_and_falls_back(app_env, monkeypatch):
    bad = app_env / "bad_run"
    bad.mkdir()
    (bad / "model.safetensors").write_bytes(b"garbage")
    monkeypatch.setenv("HOMEPILOT_MODEL", str(bad))
    at = _live(app_env)
    assert any(str(bad) in e.value for e in at.error)
    assert any("frequency baseline" in i.value for i in at.info)
    at.button(key="live_step").click().run()
    assert not at.exception and _metric(at, "Decision points") == "1"


def test_live_page_switches_to_the_usual_rule_and_the_gbdt_reranker(app_env, monkeypatch):
    import app.live_state
    from agent.baselines.gbdt import GBDTConfig, train_gbdt_simulated

    def small(seed):  # the page's reranker, trained on fewer homes to keep the test short
        return GBDTAdvisor(train_gbdt_simulated(seed, homes=2, days=4, cfg=GBDTConfig(seed=seed, num_boost_round=20)))

    monkeypatch.setattr(app.live_state, "simulated_gbdt", small)
    at = _live(app_env)
    assert at.selectbox(key="live_advisor").value == "auto"
    monkeypatch.setenv("HOMEPILOT_ADVISOR", "usual")  # homepilot demo --advisor usual
    opened = _live(app_env)
    assert opened.selectbox(key="live_advisor").value == "usual"
    assert any("usual-operation rule" in i.value for i in opened.info)
    for kind, name in (("usual", "usual-operation rule"), ("gbdt", "GBDT reranker")):
        at.selectbox(key="live_advisor").set_value(kind).run()
        at.button(key="live_start").click().run()
        _clean(at)
        assert any(name in i.value for i in at.info), [i.value for i in at.info]
        assert at.session_state["live_session"].config.advisor == kind
        at.slider(key="live_threshold").set_value(0.0).run()
        for _ in range(20):
            at.button(key="live_step").click().run()
            _clean(at)
            if not at.button(key="live_accept").disabled:
                break
        assert not at.button(key="live_accept").disabled, f"the {name} showed no recommendation"


def test_live_start_builds_another_home(app_env):
    at = _live(app_env)
    first = at.session_state["live_session"].home.home.home_id
    at.number_input(key="live_index").set_value(3).run()
    at.button(key="live_start").click().run()
    assert not at.exception
    assert at.session_state["live_session"].home.home.home_id != first


# ---------------------------------------------------------------- AppTest: dataset and report pages


def test_dataset_page_generates_a_tiny_dataset_and_browses_it(app_env):
    at = _live(app_env)
    at.switch_page("pages/dataset_browser.py").run()
    assert not at.exception and not at.error
    assert (app_env / "demo_cache" / "README.md").is_file()
    assert at.text_input(key="data_dir").value == ""
    homes = at.selectbox(key="data_home")
    assert homes.options and homes.value == homes.options[0]
    at.selectbox(key="data_split").set_value("test").run()
    assert not at.exception
    at.selectbox(key="data_sub_config").set_value("feedback").run()
    _clean(at)
    assert not at.error
    assert len(at.dataframe) >= 3  # counts, homes, operations
    counts = at.dataframe[0].value.set_index("config")
    assert counts.loc["dpo", "test"] == "—" and counts.loc["sft", "train"] not in ("0", "—")  # no split is not 0
    assert not any(m.value.lstrip().startswith("---") or "config_name:" in m.value for m in at.markdown)
    assert any("config_name: sft" in c.value for c in at.code)  # the YAML header, as code
    assert [i.captions for i in at.get("image")] == [["stats/ops_per_hour.png"], ["stats/sft_buckets.png"]]  # from disk


def test_dataset_page_corrupt_dataset_shows_an_error(app_env, monkeypatch):
    monkeypatch.setenv("HOMEPILOT_DATA", str(_corrupt_dataset(app_env / "bad")))
    at = AppTest.from_file(ENTRY, default_timeout=TIMEOUT).run()
    at.switch_page("pages/dataset_browser.py").run()
    assert not at.exception
    assert any("not a readable parquet" in e.value for e in at.error)


def test_report_page_tables_and_corrupt_report(app_env, monkeypatch):
    from agent.report import write_report

    rep = app_env / "report"
    write_report(_report(), rep)
    monkeypatch.setenv("HOMEPILOT_REPORT", str(rep))
    at = AppTest.from_file(ENTRY, default_timeout=TIMEOUT).run()
    at.switch_page("pages/report_viewer.py").run()
    _clean(at)
    assert not at.error
    assert at.dataframe[0].value["method"].tolist() == ["frequency", "homepilot"]
    at.selectbox(key="report_metric").set_value("rule").run()
    assert at.dataframe[1].value["DC 1-5"].tolist() == [0.15, 0.35]
    assert any(m.label == "acceptance rate" and m.value == "0.600" for m in at.metric)
    assert [i.captions for i in at.get("image")] == [["whole.png"]]  # Fig. 7a once: the chart, not its PNG
    (rep / "report.json").write_text(json.dumps([1, 2]))
    at.text_input(key="report_dir").set_value(str(rep)).run()
    assert not at.exception
    assert any("JSON object" in e.value for e in at.error)


# ---------------------------------------------------------------- a trained run (tiny random model)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("torch")
    from tests.agent.test_decoding import tiny_llama, toy_tokenizer

    run = tmp_path_factory.mktemp("run")
    tok = toy_tokenizer()
    tiny_llama(tok, hidden=32, layers=1).save_pretrained(run / "model")
    tok.save_pretrained(run / "model")
    (run / "config.json").write_text(json.dumps({"order": "action-first"}))
    return run


def test_a_model_run_recommends_legal_actions_with_attribute_probabilities(tiny_run):
    from agent.recommender import RecommenderConfig
    from app.live_state import ModelAdvisor

    adv = ModelAdvisor(str(tiny_run), RecommenderConfig(cascade=False, max_desc_tokens=2))
    s = LiveSession(SessionConfig(seed=0, index=0, days=6, threshold=0.0), advisor_choice=AdvisorChoice(adv))
    shown = [d for d in (s.step() for _ in range(3)) if d is not None and d.exposed]
    assert shown and not s.last_error
    d = shown[-1]
    s.home.check(d.suggestion.actions)  # legal in this home (raises otherwise)
    assert len(d.suggestion.attributes) == len(d.suggestion.actions)
    assert set(d.suggestion.attributes[0]) == {"device", "field", "value"}
    assert all(0.0 <= p <= 1.0 for p in d.suggestion.attributes[0].values())
    s.accept()
    assert s.home.log.operations[-1].actions == d.suggestion.actions


def test_live_page_with_a_model_run(app_env, monkeypatch, tiny_run):
    monkeypatch.setenv("HOMEPILOT_MODEL", str(tiny_run))
    at = _live(app_env)
    assert not at.error
    assert any(f"model {tiny_run}" in i.value for i in at.info)
    at.button(key="live_step").click().run()
    _clean(at)
    assert _metric(at, "Decision points") == "1"
    reason = at.session_state["live_session"].decisions[0].suggestion.reason  # why, in words
    assert reason and any(reason in x.value for x in [*at.caption, *at.info, *at.markdown])
    assert any("candidate scoring (no cascade pruning)" in i.value for i in at.info)


def test_live_page_starts_at_the_models_fitted_gate_and_keeps_a_moved_slider(app_env, monkeypatch, tiny_run, tmp_path):
    """A run whose calibration fitted an operating point opens with the slider there (not at 0.7,
    which a calibrated small model's confidences never reach); once the person moves it, a restart
    keeps their value."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "model" / "recommender.json").write_text(json.dumps({"gate_threshold": 0.2634}))
    monkeypatch.setenv("HOMEPILOT_MODEL", str(run))
    at = _live(app_env)
    assert not at.error
    assert at.slider(key="live_threshold").value == pytest.approx(0.26)
    assert at.session_state["live_session"].threshold == pytest.approx(0.26)
    at.slider(key="live_threshold").set_value(0.5).run()
    at.button(key="live_start").click().run()
    assert at.slider(key="live_threshold").value == pytest.approx(0.5)
    assert at.session_state["live_session"].threshold == pytest.approx(0.5)


def test_a_session_takes_the_advisors_fitted_gate_unless_given_one():
    class Fitted(FrequencyAdvisor):
        gate_threshold = 0.31

    def session(threshold):
        return LiveSession(SessionConfig(seed=0, index=0, days=3, warmup_days=1, threshold=threshold),
                           advisor_choice=AdvisorChoice(Fitted([])))

    assert session(None).threshold == 0.31 and session(0.6).threshold == 0.6
    assert LiveSession(SessionConfig(seed=0, index=0, days=3, warmup_days=1)).threshold == 0.7  # frequency


# ---------------------------------------------------------------- homepilot demo


def test_demo_command_and_environment(tmp_path):
    from app.demo import ENTRY, DemoConfig, command, environment

    cfg = DemoConfig(model=str(tmp_path), port=8600, headless=True)
    cmd = command(cfg)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4] == str(ENTRY)
    assert cmd[cmd.index("--server.port") + 1] == "8600" and cmd[cmd.index("--server.headless") + 1] == "true"
    env = environment(cfg, base={"PYTHONPATH": "/x"})
    assert env["HOMEPILOT_MODEL"] == str(tmp_path.resolve()) and env["HOMEPILOT_DATA"] == ""
    assert env["PYTHONPATH"].endswith(":/x") and env["PYTHONPATH"].startswith(str(ENTRY.parent.parent))
    assert env["HOMEPILOT_ADVISOR"] == "auto" and environment(DemoConfig(advisor="gbdt"))["HOMEPILOT_ADVISOR"] == "gbdt"
    with pytest.raises(ValueError, match="--advisor must be one of auto, gbdt, usual, frequency"):
        DemoConfig(advisor="model")
    with pytest.raises(ValueError, match="port"):
        DemoConfig(port=0)
    with pytest.raises(ValueError, match="--data .*no such file"):
        DemoConfig(data=str(tmp_path / "missing"))


def test_demo_cli_rejects_a_missing_model(tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    r = CliRunner().invoke(app, ["demo", "--model", str(tmp_path / "nope")])
    assert r.exit_code == 2 and "Invalid value" in r.output and "--model" in r.output  # rich may wrap the rest


def test_the_models_why_gives_its_posterior_share_and_the_calibrated_confidence_apart():
    """The runner-ups are posterior shares; the chosen one's share is said on the same scale, and the
    calibrated acceptance probability the gate reads beside it (a 22% answer above a 41% runner-up
    was what a person saw before)."""
    from types import SimpleNamespace

    from agent.confidence import ConfidenceConfig
    from app.advisors import ModelAdvisor

    light_off, lock = (Action("bedroom", "light", "power", "off"),), (Action("hallway", "lock", "lock", "locked"),)
    rec = SimpleNamespace(actions=light_off, description="Turn off the bedroom light", confidence=0.22, threshold=0.24,
                          alternatives=((light_off, 0.6), (lock, 0.3)), reason="")
    adv = ModelAdvisor.__new__(ModelAdvisor)
    adv.recommender = SimpleNamespace(recommend=lambda ctx: rec,
                                      config=SimpleNamespace(confidence=ConfidenceConfig(temperature=7.0)))
    why = adv.suggest(SimpleNamespace(current=None)).reason
    assert "gives this one 60% of its probability (calibrated on held-out days: 22% likely that the user does it next); runner-ups below." in why
    adv.recommender.config = SimpleNamespace(confidence=ConfidenceConfig())  # uncalibrated: the share alone
    assert "60% of its probability; runner-ups" in adv.suggest(SimpleNamespace(current=None)).reason
    # the usual pool (sim.candidates.restrict_pool): the share is still over every weighed setting, and
    # the page says the answer is the likeliest usual operation, not the likeliest setting
    adv.recommender.config = SimpleNamespace(confidence=ConfidenceConfig(), pool="usual")
    assert ("60% of its probability; it answers only with one of the home's usual operations, and this is the "
            "likeliest of them; runner-ups below.") in adv.suggest(SimpleNamespace(current=None)).reason
