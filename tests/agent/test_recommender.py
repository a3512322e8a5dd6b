"""The Recommender end to end: shared prompts, hand-computed confidence through the decoder,
cascade, adaptive thresholds, bad input, batching, calibration and loading a run directory."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from agent.confidence import ConfidenceConfig, calibrate
from agent.context import Context, random_contexts
from agent.recommender import BadInput, Recommender, RecommenderConfig, torch_device
from sim.catalog import is_legal
from sim.dataset.rows import Environment, RowSpec, home_rows
from sim.log import DeviceSpec, Event, HomeLog, HomeSpec
from sim.prompts import context_rooms, history_window
from sim.records import Action, EnvReading, Operation
from tests.agent.test_decoding import tiny_llama, toy_tokenizer

T0 = datetime(2026, 3, 2, 7, 0)
HOME = HomeSpec("h0", 0, ("bedroom", "kitchen"), (DeviceSpec("bedroom", "light", "light"),
                                                   DeviceSpec("kitchen", "light", "light")), ("p1",))
HISTORY = tuple(Operation(time=T0 + timedelta(minutes=7 * i), user="p1", logged=i % 3 != 1,
                          actions=(Action("bedroom", "light", "power", "on" if i % 2 else "off"),),
                          environment=(EnvReading("bedroom", "temperature", "21"),), description="light")
                for i in range(12))


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_llama(tok, hidden=32, layers=1)


# ---------------------------------------------------------------- the one prompt builder


# sensor readings every 10 min, the first one before any operation; kitchen readings never show
# (every operation is in the bedroom, and a prompt shows the last operation's rooms)
SENSORS = [Event(T0 + timedelta(minutes=10 * i - 5), "sensor", room, "", "temperature", f"{20 + i}")
           for i in range(10) for room in ("bedroom", "kitchen")]


def test_sft_prompt_and_inference_prompt_are_identical():
    log = HomeLog(home=HOME, start=T0, days=1, events=SENSORS, operations=list(HISTORY))
    sft = home_rows(log, RowSpec(cutoff=T0 + timedelta(days=1)))[("sft", "train")].to_pylist()
    assert len(sft) == 8  # the logged operations
    envs = Environment(SENSORS, T0)
    for row in sft:
        rooms = context_rooms(history_window(HISTORY, row["time"]), HOME.rooms)
        ctx = Context.from_home(HOME, HISTORY, row["time"], envs.at(row["time"], rooms, before=True))
        assert ctx.prompt_text() == row["prompt"]
        # a context parsed back from the prompt (its history is only the window) keeps the
        # prompt's device order and usual operations instead of counting them again
        short = ctx.prompt_text(2)  # a 2-operation window: the usual operations count more than it
        back = Context.from_prompt(short, HOME.types())
        assert back.prompt_text(2) == short
    # the last row (08:17): within +-1 h, "on" at 07:21, 07:35, 08:03 and "off" at 07:42, 07:56;
    # "off" leads overall (4 to 3) but not around this time of day
    assert short.endswith("<usual> [bedroom][light][power][off] <usual> [bedroom][light][power][on] <rec>")


def test_prompt_environment_is_known_before_the_decision_never_the_operation_own():
    """The prompt shows readings strictly before the decision, of the previous operation's rooms:
    never the predicted operation's own environment (it would reveal the target room)."""
    log = HomeLog(home=HOME, start=T0, days=1, events=SENSORS, operations=list(HISTORY))
    sft = home_rows(log, RowSpec(cutoff=T0 + timedelta(days=1)))[("sft", "train")].to_pylist()
    first = sft[0]  # 07:00, no history: the home's first room, readings before 07:00 only
    assert first["time"] == T0 and "<env> [bedroom][temperature][20] <devices>" in first["prompt"]
    later = next(r for r in sft if r["time"] == T0 + timedelta(minutes=35))  # reading 20+4 at 07:35 is not before
    assert "<env> [bedroom][temperature][23] <devices>" in later["prompt"]
    assert all("kitchen][temperature" not in r["prompt"] for r in sft)


# ---------------------------------------------------------------- hand-computed confidence through the decoder


class StepTable(torch.nn.Module):
    """A stand-in LM: next-token logits depend only on the step (0 = first generated token).
    Unlisted tokens get logit 0, so a token with logit ln(k) among n allowed has legal probability
    k / (k + n - 1) and raw probability k / (k + V - 1)."""

    def __init__(self, tokenizer, table: list[dict[str, float]]) -> None:
        super().__init__()
        self.v = len(tokenizer)
        self.table = [{tokenizer.convert_tokens_to_ids(t): x for t, x in row.items()} for row in table]
        self.width = 0
        self.calls = 0

    def forward(self, input_ids, attention_mask=None, position_ids=None, cache=None, use_cache=False,
                logits_to_keep=0, **kw):
        self.calls += 1
        if input_ids.shape[1] > 1:
            self.width = input_ids.shape[1]
        step = attention_mask.shape[1] - self.width
        logits = torch.zeros((input_ids.shape[0], 1, self.v))
        for t, x in self.table[min(step, len(self.table) - 1)].items():
            logits[:, 0, t] = x
        return SimpleNamespace(logits=logits, cache=None, past_key_values=None)


L3 = math.log(3)


def _table(field: str = "power", value: str = "on", value_logit: float = L3) -> list[dict[str, float]]:
    # <act> [ bedroom ] [ light ] [ field ] [ value ] <desc> eos
    return [{}, {"[": L3}, {"bedroom": L3}, {}, {}, {}, {}, {}, {field: L3}, {}, {}, {value: value_logit}, {},
            {"<desc>": L3}, {"</s>": 30.0}]


def _rec(tok, table, **conf) -> tuple[Recommender, StepTable]:
    lm = StepTable(tok, table)
    cfg = RecommenderConfig(confidence=ConfidenceConfig(distribution="legal", **conf))
    return Recommender(lm, tok, cfg), lm


def test_eq6_and_fusion_by_hand_through_the_decoder(tok):
    r, _ = _rec(tok, _table())
    rec = r.recommend(Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2)))
    assert rec.actions == (Action("bedroom", "light", "power", "on"),) and rec.description == ""
    p = rec.attribute_probs[0]
    assert p.device == pytest.approx(0.75 * 0.75)  # "[" of 2 (space or bracket), "bedroom" of 2 rooms
    assert p.field == pytest.approx(0.6)  # power of 3 light fields
    assert p.value == pytest.approx(0.75)  # on of on/off
    assert rec.first_token_prob == pytest.approx(0.75)  # "bedroom": the "[" is formatting
    assert rec.eq6 == pytest.approx(0.5 * 0.5625 + 0.2 * 0.6 + 0.3 * 0.75)  # 0.62625
    assert rec.confidence == pytest.approx(0.7 * 0.62625 + 0.3 * 0.75)  # 0.663375
    assert not rec.exposed and rec.threshold == pytest.approx(0.7)
    assert rec.reason == "withheld: confidence 0.663 < threshold 0.700"
    raw = Recommender(r.model, tok, RecommenderConfig(cascade=False)).recommend(
        Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2)))
    v = len(tok)
    assert raw.attribute_probs[0].device == pytest.approx((3 / (v + 2)) ** 2 / v ** 4)  # 4 forced tokens at 1/V


def test_cascade_stops_decoding_at_the_device_and_withholds(tok):
    r, lm = _rec(tok, _table(), device_threshold=0.6)
    rec = r.recommend(Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2)))
    assert not rec.exposed and rec.actions == ()
    assert rec.reason.startswith("withheld: cascade: P(device) of action 1 fell to 0.56")  # 0.75 * 0.75
    assert "< device threshold 0.600" in rec.reason
    assert len(rec.steps) == 3 and lm.calls == 3  # <act> [ bedroom, then no further forward pass


def test_large_pool_lowers_both_thresholds_by_10_percent(tok):
    r, _ = _rec(tok, _table(), device_threshold=0.6, large_pool=1)
    rec = r.recommend(Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2)))
    assert rec.exposed and rec.threshold == pytest.approx(0.63)  # 0.663 >= 0.7 * 0.9; device 0.5625 >= 0.54
    assert rec.reason == "exposed: confidence 0.663 >= threshold 0.630"


def test_numeric_value_lowers_the_gate_by_10_percent(tok):
    # brightness of 3 fields (0.6); "50" of 100 grid values with logit ln 99 -> 99 / 198 = 0.5
    r, _ = _rec(tok, _table("brightness", "50", math.log(99)), threshold=0.67)
    rec = r.recommend(Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2)))
    assert rec.actions == (Action("bedroom", "light", "brightness", "50"),)
    assert rec.attribute_probs[0].value == pytest.approx(0.5)
    assert rec.confidence == pytest.approx(0.7 * (0.28125 + 0.12 + 0.15) + 0.3 * 0.75)  # 0.610875
    assert rec.threshold == pytest.approx(0.603) and rec.exposed  # would be withheld at 0.67


def test_a_repeated_action_is_kept_once(tok):
    one = _table()[1:13]  # [ bedroom ] [ light ] [ power ] [ on ]
    r, _ = _rec(tok, [{}, *one, *one, {"<desc>": L3}, {"</s>": 30.0}])
    rec = r.recommend(Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2)))
    assert rec.text.count("[bedroom][light][power][on]") == 2
    assert rec.actions == (Action("bedroom", "light", "power", "on"),) and len(rec.attribute_probs) == 1
    assert rec.eq6 == pytest.approx(0.62625)  # the first occurrence's Eq. 6


# ---------------------------------------------------------------- bad input


def test_bad_input_abstains_with_a_reason_or_raises(tok, model):
    r = Recommender(model, tok)
    lacking = Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2), candidates=[("garage", "light")])
    empty = Context.from_home(HOME, (), T0)
    unknown = Context(devices=(("bedroom", "toaster", "toaster"),), history=HISTORY, time=T0 + timedelta(hours=2))
    recs = r.recommend_batch([lacking, empty, "<hist> </hist> <now> garbage", unknown, 42])
    assert [x.exposed for x in recs] == [False] * 5 and all(x.actions == () for x in recs)
    assert "candidate device [garage][light] is not in the home" in recs[0].reason
    assert "history has fewer than 1 logged operation" in recs[1].reason
    assert recs[2].reason.startswith("abstained: bad input: malformed prompt: at position")
    assert "unknown type 'toaster'" in recs[3].reason
    assert "expected a Context or a prompt string" in recs[4].reason
    strict = Recommender(model, tok, RecommenderConfig(on_bad_input="raise"))
    with pytest.raises(BadInput, match=r"context 0: candidate device \[garage\]\[light\] is not in the home"):
        strict.recommend(lacking)
    lenient = Recommender(model, tok, RecommenderConfig(min_history=0, cascade=False))
    rec = lenient.recommend(empty)  # an empty history is fine when asked for
    assert rec.actions and all(a.target in HOME.types() for a in rec.actions)
    good = Context.from_home(HOME, HISTORY, T0 + timedelta(hours=3))
    mixed = lenient.recommend_batch([good, lacking, good])  # results stay in input order
    assert [bool(x.actions) for x in mixed] == [True, False, True] and mixed[0].text == mixed[2].text


def test_prompt_string_input_infers_types_from_device_names(tok, model):
    ctx = Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2))
    r = Recommender(model, tok, RecommenderConfig(cascade=False))
    assert r.recommend(ctx.prompt_text()).actions == r.recommend(ctx).actions


def test_config_checks_name_the_field():
    with pytest.raises(ValueError, match="order must be one of action-first, text-first"):
        RecommenderConfig(order="sideways")
    with pytest.raises(ValueError, match="search must be one of greedy, beam"):
        RecommenderConfig(search="sample")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        RecommenderConfig(batch_size=0)
    with pytest.raises(ValueError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        RecommenderConfig(device="gpu")


def test_the_model_runs_where_the_config_says(tok, model):
    assert torch_device("cpu") == "cpu"
    assert torch_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert torch_device("cuda") == "cuda"
    else:
        with pytest.raises(ValueError, match="no CUDA GPU is visible"):
            torch_device("cuda")
    r = Recommender(model, tok, RecommenderConfig(device="cpu"))
    assert next(r.model.parameters()).device.type == "cpu"


# ---------------------------------------------------------------- batching, legality, calibration, runs


def test_batch_equals_one_by_one_and_every_recommendation_is_legal(tok, model):
    ctxs = random_contexts(120, seed=4, devices=(1, 14), history=2)
    r = Recommender(model, tok, RecommenderConfig(cascade=False, history_k=2, max_desc_tokens=2, batch_size=64))
    recs = r.recommend_batch(ctxs)
    for ctx, rec in zip(ctxs, recs, strict=True):
        types = ctx.types
        assert rec.actions and rec.reason.startswith(("exposed", "withheld: confidence"))
        assert all(is_legal(types[a.target], a.field, a.value) for a in rec.actions)
        assert 0.0 <= rec.confidence <= 1.0
    one = [r.recommend(c) for c in ctxs[:6]]
    assert [x.text for x in one] == [x.text for x in recs[:6]]


def test_fit_calibration_reports_ece_before_and_after(tok, model):
    ctxs = random_contexts(40, seed=9, devices=(2, 6), history=2)
    cc = ConfidenceConfig(distribution="legal")
    r = Recommender(model, tok, RecommenderConfig(cascade=False, history_k=2, max_desc_tokens=1, min_history=0,
                                                 confidence=cc))
    accepted = np.zeros(40, dtype=bool)  # nothing accepted: a calibrated confidence must fall
    out = r.fit_calibration(ctxs, accepted, n_bins=10)
    assert out["n"] == 40 and out["n_bins"] == 10
    assert out["temperature"] != 1.0 and out["ece_after"] < out["ece_before"]
    assert (r.config.confidence.temperature, r.config.confidence.bias) == (out["temperature"], out["bias"])
    uncalibrated = Recommender(model, tok, replace(r.config, confidence=cc)).recommend(ctxs[0]).confidence
    assert r.recommend(ctxs[0]).confidence == pytest.approx(float(calibrate(uncalibrated, out["temperature"],
                                                                            out["bias"])))


def test_from_run_reads_order_and_model(tmp_path, tok, model):
    run = tmp_path / "run"
    model.save_pretrained(run / "model")
    tok.save_pretrained(run / "model")
    (run / "config.json").write_text(json.dumps({"order": "text-first", "preset": "tiny"}))
    r = Recommender.from_run(run, RecommenderConfig(cascade=False, max_desc_tokens=2))
    assert r.config.order == "text-first" and r.config.pool == "plausible"  # uncalibrated: every plausible set
    (run / "model" / "recommender.json").write_text(json.dumps({"temperature": 2.0, "pool": "usual"}))
    assert Recommender.from_run(run).config.pool == "usual"  # the run's held-out choice
    assert Recommender.from_run(run, RecommenderConfig(pool="plausible")).config.pool == "plausible"  # given
    assert Recommender.from_run(run, calibrated=False).config.pool == "plausible"
    rec = r.recommend(Context.from_home(HOME, HISTORY, T0 + timedelta(hours=2)))
    assert rec.text.startswith("<desc>") and rec.actions
    with pytest.raises(FileNotFoundError, match="no model in"):
        Recommender.from_run(tmp_path / "missing")


def test_domain_tokenizer_from_training():
    from training.models import build_model
    from training.tokenizer import train_tokenizer

    ctxs = random_contexts(30, seed=12, devices=(2, 10), history=3)
    dom = train_tokenizer([c.prompt_text(3) for c in ctxs], vocab_size=300)
    lm = build_model("tiny", dom, seed=0)
    r = Recommender(lm, dom, RecommenderConfig(cascade=False, history_k=3, max_desc_tokens=2, min_history=0))
    recs = r.recommend_batch(ctxs[:12])
    for ctx, rec in zip(ctxs[:12], recs, strict=True):
        assert rec.actions and all(is_legal(ctx.types[a.target], a.field, a.value) for a in rec.actions)
    beam = Recommender(lm, dom, replace(r.config, search="beam", num_beams=2)).recommend_batch(ctxs[:3])
    for ctx, rec in zip(ctxs[:3], beam, strict=True):
        assert rec.actions and all(is_legal(ctx.types[a.target], a.field, a.value) for a in rec.actions)
