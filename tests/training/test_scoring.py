"""Candidate scoring: the plausible action sets of a prompt (hand-worked), their log-probabilities
through the shared KV cache equal a plain forward pass, and the recommender answers with the
max-likelihood candidate and its posterior."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
import torch

from agent.context import Context
from agent.recommender import Recommender, RecommenderConfig
from sim.candidates import is_noop, plausible_sets, restrict_pool
from sim.prompts import prompt_text
from sim.records import Action, Operation, parse_prompt
from tests.agent.test_decoding import tiny_llama, toy_tokenizer
from training.scoring import completion_text, score_sets

T0 = datetime(2026, 3, 2, 7, 0)
TYPES = {("bedroom", "light"): "light", ("bedroom", "curtain"): "curtain", ("kitchen", "kettle"): "kettle"}


def A(room, device, field, value):
    return Action(room, device, field, value)


HISTORY = (
    Operation(T0, (A("bedroom", "light", "power", "on"), A("bedroom", "light", "brightness", "40"))),
    Operation(T0 + timedelta(minutes=5), (A("bedroom", "curtain", "action", "open"),)),
    Operation(T0 + timedelta(minutes=9), (A("kitchen", "kettle", "power", "on"),)),
)


@pytest.fixture(scope="module")
def tok():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    torch.manual_seed(0)
    return tiny_llama(tok, hidden=32, layers=2)


def test_plausible_sets_hand_worked():
    now = T0 + timedelta(minutes=20)
    p = parse_prompt(prompt_text(HISTORY, now, (), tuple(TYPES)))
    sets = plausible_sets(p, TYPES, drop_noops=True)
    # every listed operation (usual: kettle, curtain, light, the latest first on a tie; the same in
    # the window) is already in place, so none is offered again and neither is a part of a bundle
    # that changes nothing (brightness 40); their inverses are, in the order their operations are
    # listed; the state toggles of the ranked devices add the curtain's position 100 -> 0
    assert sets == [(A("kitchen", "kettle", "power", "off"),), (A("bedroom", "curtain", "action", "close"),),
                    (A("bedroom", "light", "power", "off"),), (A("bedroom", "curtain", "position", "0"),)]
    assert all(is_noop(op.actions, p.known_state()) for op in HISTORY)
    # by default the no-ops stay (the logged state can be stale): the listed operations first
    every = plausible_sets(p, TYPES)
    assert every[:3] == [HISTORY[2].actions, HISTORY[1].actions, HISTORY[0].actions]
    assert [s for s in every if not is_noop(s, p.known_state())] == sets
    # an action on a device the home lacks is never offered
    assert all(a.target in TYPES for s in sets for a in s)


def test_plausible_sets_judge_noops_by_the_true_state_when_given():
    now = T0 + timedelta(minutes=20)
    p = parse_prompt(prompt_text(HISTORY, now, (), tuple(TYPES)))
    # the logged state says the kettle is on; in truth it switched itself off, the light is off
    # (brightness still 40) and the curtain is open as logged
    current = {("kitchen", "kettle"): {"power": "off", "target_temperature": "100"},
               ("bedroom", "light"): {"power": "off", "brightness": "40", "color_temp": "4000"},
               ("bedroom", "curtain"): {"action": "open", "position": "100"}}
    sets = plausible_sets(p, TYPES, drop_noops=True, current=current)
    assert (A("kitchen", "kettle", "power", "on"),) in sets  # stale in the log, wanted in truth
    assert (A("kitchen", "kettle", "power", "off"),) not in sets  # already so in truth
    assert (A("bedroom", "light", "power", "off"),) not in sets
    assert (A("bedroom", "curtain", "action", "open"),) not in sets
    assert not any(is_noop(s, current, TYPES) for s in sets)
    # with the catalogue's effects, brightness 40 on a light that is off turns it on: not a no-op
    assert not is_noop((A("bedroom", "light", "brightness", "40"),), current, TYPES)
    assert is_noop((A("bedroom", "light", "brightness", "40"),), current)  # field by field it is
    assert (A("bedroom", "light", "brightness", "40"),) in sets


def test_the_usual_pool_keeps_the_usual_operations_or_everything_when_none_is_left():
    now = T0 + timedelta(minutes=20)
    usual = ((A("bedroom", "curtain", "action", "close"),),
             (A("bedroom", "light", "brightness", "40"), A("bedroom", "light", "power", "off")))
    p = parse_prompt(prompt_text(HISTORY, now, (), tuple(TYPES), usual=usual))
    sets = plausible_sets(p, TYPES, drop_noops=True)
    assert restrict_pool(sets, p, "plausible") == sets
    # the usual operations come first among the candidates, as listed; the light's single "off" (cut out
    # of the usual pair), the kettle's off and the curtain's position are not usual operations
    assert sets == [*usual, (A("bedroom", "light", "power", "off"),), (A("kitchen", "kettle", "power", "off"),),
                    (A("bedroom", "curtain", "position", "0"),)]
    assert restrict_pool(sets, p, "usual") == list(usual)
    # as sets: the pair in the other order is the same usual operation
    swapped = [(A("bedroom", "light", "power", "off"), A("bedroom", "light", "brightness", "40")), sets[3]]
    assert restrict_pool(swapped, p, "usual") == swapped[:1]
    # no usual operation among the candidates (none listed): every plausible set stays
    bare = parse_prompt(prompt_text(HISTORY, now, (), tuple(TYPES), usual=()))
    assert restrict_pool(plausible_sets(bare, TYPES, drop_noops=True), bare, "usual") == plausible_sets(
        bare, TYPES, drop_noops=True)
    with pytest.raises(ValueError, match="pool must be one of plausible, usual, got 'all'"):
        restrict_pool(sets, p, "all")


def test_scores_match_a_plain_forward_pass(model, tok):
    prompts = [prompt_text(HISTORY[:k], T0 + timedelta(minutes=30), (), tuple(TYPES)) for k in (1, 3)]
    cands = [[(A("bedroom", "light", "power", "off"),), (A("bedroom", "curtain", "action", "close"),
                                                          A("bedroom", "light", "power", "off"))],
             [(A("kitchen", "kettle", "power", "off"),)]]
    scored = score_sets(model, tok, prompts, cands, "action-first")
    for p, cs, sc in zip(prompts, cands, scored, strict=True):
        assert sc.candidates == tuple(cs)
        for c, lp in zip(cs, sc.logp, strict=True):
            ids = tok(p)["input_ids"]
            comp = tok(completion_text(c, "action-first"), add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logits = model(input_ids=torch.tensor([ids + comp])).logits[0].float()
            logp = torch.log_softmax(logits, -1)
            want = sum(float(logp[len(ids) - 1 + j, t]) for j, t in enumerate(comp))
            assert lp == pytest.approx(want, abs=1e-4)
        post = sc.posterior()
        assert post.sum() == pytest.approx(1.0) and np.argmax(post) == np.argmax(sc.logp)


def test_recommender_answers_the_max_likelihood_candidate(model, tok):
    from dataclasses import replace

    now = T0 + timedelta(minutes=20)
    ctx = Context(devices=tuple((r, d, t) for (r, d), t in TYPES.items()), history=HISTORY, time=now)
    rec = Recommender(model, tok, RecommenderConfig(search="candidates", max_desc_tokens=4))
    r = rec.recommend(ctx)
    p = parse_prompt(ctx.prompt_text())
    sets = plausible_sets(p, TYPES, drop_noops=True)  # the default: never what the devices already have
    sc = score_sets(model, tok, [ctx.prompt_text()], [sets], "action-first")[0]
    best = int(np.argmax(sc.logp))
    assert r.actions == sets[best]
    assert r.confidence == pytest.approx(float(sc.posterior()[best]))
    assert r.alternatives[0] == (sets[best], pytest.approx(r.confidence))
    assert r.exposed == (r.confidence >= r.threshold)
    assert "[" not in r.description and "<" not in r.description
    assert not is_noop(r.actions, p.known_state())
    # the usual pool: the best-scored of the candidates that are usual operations, its confidence the
    # posterior over every plausible set; recommend_pools gives both pools' answers from one pass
    usual = ((A("bedroom", "curtain", "action", "close"),), (A("kitchen", "kettle", "power", "off"),))
    uctx = replace(ctx, usual=usual)
    up = parse_prompt(uctx.prompt_text())
    every_u = plausible_sets(up, TYPES, drop_noops=True)
    assert restrict_pool(every_u, up, "usual") == list(usual)
    post = score_sets(model, tok, [uctx.prompt_text()], [every_u], "action-first")[0].posterior()
    best_u = max(range(2), key=lambda j: post[every_u.index(usual[j])])
    only = Recommender(model, tok, RecommenderConfig(search="candidates", max_desc_tokens=4, pool="usual"))
    r = only.recommend(uctx)
    assert r.actions == usual[best_u]
    assert r.confidence == pytest.approx(float(post[every_u.index(usual[best_u])]), abs=1e-5)
    assert [a for a, _ in r.alternatives] == [usual[best_u], usual[1 - best_u]]  # the pool's, best first
    both = only.recommend_pools([uctx])
    assert both["usual"][0].actions == r.actions
    assert both["plausible"][0].actions == every_u[int(np.argmax(post))]
    with pytest.raises(ValueError, match="recommend_pools needs search='candidates'"):
        Recommender(model, tok, RecommenderConfig(search="greedy")).recommend_pools([uctx])
    with pytest.raises(ValueError, match="pool must be one of plausible, usual or None"):
        RecommenderConfig(pool="all")
    keep = Recommender(model, tok, RecommenderConfig(search="candidates", max_desc_tokens=4, drop_noops=False))
    every = plausible_sets(p, TYPES)
    sc = score_sets(model, tok, [ctx.prompt_text()], [every], "action-first")[0]
    assert keep.recommend(ctx).actions == every[int(np.argmax(sc.logp))]


def test_recommender_never_answers_what_the_true_state_already_has(model, tok):
    from dataclasses import replace

    now = T0 + timedelta(minutes=20)
    ctx = Context(devices=tuple((r, d, t) for (r, d), t in TYPES.items()), history=HISTORY, time=now)
    rec = Recommender(model, tok, RecommenderConfig(search="candidates", max_desc_tokens=2))
    first = rec.recommend(ctx).actions
    # tell the recommender the true state already has its answer: it must answer something else
    from sim.catalog import effects

    current = {target: {} for target in TYPES}
    for a in first:  # everything the answer sets (curtain close = position 0, brightness = power on)
        current[a.target].update(effects(TYPES[a.target], a.field, a.value))
    r = rec.recommend(replace(ctx, current=current))
    assert r.actions and r.actions != first and not is_noop(r.actions, current, TYPES)
    assert ctx.prompt_text() == replace(ctx, current=current).prompt_text()  # the prompt does not change


def test_a_model_trained_with_refs_is_scored_and_decoded_with_them(model, tok):
    """A model whose config says ``completion_refs`` reads ``<act> [k] ACTIONS``: k = which usual
    operation of the prompt the candidate is (1 = most likely, 0 = none); scoring, the answer's
    text and greedy decoding all use it."""
    import copy

    from sim.records import parse_ref, parse_target

    usual = ((A("bedroom", "curtain", "action", "close"),), (A("kitchen", "kettle", "power", "off"),))
    assert completion_text(usual[1], "action-first", usual) == "<act> [2] [kitchen][kettle][power][off] <desc>"
    assert completion_text((A("bedroom", "light", "power", "off"),), "action-first", usual).startswith("<act> [0] ")
    assert completion_text(usual[0], "text-first", usual).endswith("<act> [1] [bedroom][curtain][action][close]")
    ctx = Context(devices=tuple((r, d, t) for (r, d), t in TYPES.items()), history=HISTORY,
                  time=T0 + timedelta(minutes=20), usual=usual)
    text = ctx.prompt_text()
    sets = plausible_sets(parse_prompt(text), TYPES, drop_noops=True)
    with_refs = score_sets(model, tok, [text], [sets], "action-first", usual=[usual])[0]
    plain = score_sets(model, tok, [text], [sets], "action-first")[0]
    ids = tok(text)["input_ids"]
    for c, lp in zip(sets, with_refs.logp, strict=True):
        comp = tok(completion_text(c, "action-first", usual), add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids + comp])).logits[0].float(), -1)
        assert lp == pytest.approx(sum(float(logp[len(ids) - 1 + j, t]) for j, t in enumerate(comp)), abs=1e-4)
    assert not np.allclose(with_refs.logp, plain.logp)  # the ref tokens are scored

    refs_model = copy.deepcopy(model)
    refs_model.config.completion_refs = True
    rec = Recommender(refs_model, tok, RecommenderConfig(search="candidates", max_desc_tokens=2))
    assert rec.refs and not Recommender(model, tok, RecommenderConfig(search="candidates")).refs
    r = rec.recommend(ctx)
    best = int(np.argmax(with_refs.logp))
    assert r.actions == sets[best]
    assert r.text == completion_text(sets[best], "action-first", usual)
    greedy = Recommender(refs_model, tok, RecommenderConfig(search="greedy", cascade=False, max_desc_tokens=2))
    g = greedy.recommend(ctx)
    assert g.actions and parse_target(g.text)[0] == g.actions  # a ref, if the model wrote one, is read past
    assert parse_ref(g.text) in (None, *range(10))
