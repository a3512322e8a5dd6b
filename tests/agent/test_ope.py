"""Off-policy estimators: hand-worked values, and unbiasedness on synthetic logs whose truth is known."""

import numpy as np
import pytest

from agent.ope import Estimate, dr, estimate_all, ips, ratio_bootstrap, replay, snips


def _bandit(seed: int, n: int, k: int = 4, uniform: bool = True):
    """Synthetic log: 10 context kinds, k arms, Bernoulli rewards with known means.

    Returns rewards, logged arms, propensities, target arms, the reward means table (10, k)
    and the contexts. Truth = mean over the sampled contexts of mu[x, target(x)].
    """
    world = np.random.default_rng(1000)  # the same world for every seed
    mu = world.uniform(0.05, 0.95, (10, k))
    target = world.integers(0, k, 10)  # a deterministic target policy: one arm per context kind
    logits = world.normal(0, 1.0, (10, k))
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 10, n)
    probs = np.full((10, k), 1 / k) if uniform else np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    u = rng.random(n)[:, None]
    a = (u > np.cumsum(probs[x], axis=1)).sum(1)  # (n,) logged arm sampled from probs[x]
    a = np.minimum(a, k - 1)
    r = (rng.random(n) < mu[x, a]).astype(float)
    return r, a, probs[x, a], target[x], mu, x


def _truth(mu, x, target_arm):
    return float(mu[x, target_arm].mean())


def test_hand_worked_values():
    r = np.array([1, 0, 1, 1.0])
    p = np.array([0.5, 0.25, 0.5, 1.0])
    t = np.array([1, 1, 0, 0.0])  # target agrees with the log on the first two points
    rng = np.random.default_rng(0)
    assert replay(r, t, rng, n_boot=0).value == pytest.approx(0.5)
    assert replay(r, t, rng, n_boot=0).matched == 2
    assert ips(r, p, t, rng, n_boot=0).value == pytest.approx((1 / 0.5) / 4)  # w = 2, 4, 0, 0
    assert snips(r, p, t, rng, n_boot=0).value == pytest.approx(2 / 6)
    rl = np.array([0.5, 0.5, 0.5, 0.5])
    q = np.array([0.6, 0.2, 0.4, 0.0])
    # (0.6 + 2*0.5) + (0.2 + 4*(-0.5)) + 0.4 + 0 = 1.6 - 1.8 + 0.4 = 0.2 -> /4
    assert dr(r, p, t, rl, q, rng, n_boot=0).value == pytest.approx(0.05)


def test_no_match_gives_nan_not_error():
    e = replay([1, 0], [0, 0], np.random.default_rng(0), n_boot=50)
    assert np.isnan(e.value) and e.matched == 0 and np.isnan(e.lo)


def test_bad_inputs_name_the_field():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="propensity"):
        ips([1, 0], [0.5, 0.0], [1, 1], rng)
    with pytest.raises(ValueError, match="target_prob has 1 entries"):
        ips([1, 0], [0.5, 0.5], [1], rng)
    with pytest.raises(ValueError, match="matched must be 0/1"):
        replay([1, 0], [0.5, 1], rng)
    with pytest.raises(ValueError, match="level"):
        ratio_bootstrap(np.ones(3), np.ones(3), rng, 10, level=1.5)


def test_bootstrap_is_seeded_and_brackets_the_value():
    r = np.random.default_rng(3).random(200) < 0.3
    a = replay(r, np.ones(200), np.random.default_rng(7), n_boot=300)
    b = replay(r, np.ones(200), np.random.default_rng(7), n_boot=300)
    assert a == b
    assert a.lo < a.value < a.hi and a.value == pytest.approx(r.mean())
    assert isinstance(a, Estimate) and a.to_dict()["matched"] == 200


def test_uniform_logging_replay_keeps_one_in_k():
    k = 4
    kept = [replay(*_rm(s, k), np.random.default_rng(0), n_boot=0).matched / 2000 for s in range(10)]
    assert np.mean(kept) == pytest.approx(1 / k, abs=0.01)


def _rm(seed, k):
    r, a, _, tgt, _, _ = _bandit(seed, 2000, k)
    return r, (a == tgt).astype(float)


@pytest.mark.parametrize("uniform", [True, False])
def test_estimators_unbiased_across_seeds(uniform):
    """Mean over 150 seeds of each estimate minus the truth is within 4 standard errors."""
    errs = {k: [] for k in ("replay", "ips", "snips", "dr", "dr_bad_model")}
    for seed in range(150):
        r, a, p, tgt, mu, x = _bandit(seed, 400, uniform=uniform)
        truth = _truth(mu, x, tgt)
        t = (a == tgt).astype(float)
        est = estimate_all(r, p, t, mu[x, a] * 0.8, mu[x, tgt] * 0.8, np.random.default_rng(seed), n_boot=0)
        for k in ("replay", "ips", "snips", "dr"):
            errs[k].append(est[k].value - truth)
        bad = dr(r, p, t, np.full(400, 0.5), np.full(400, 0.5), np.random.default_rng(seed), n_boot=0)
        errs["dr_bad_model"].append(bad.value - truth)
    for k, e in errs.items():
        e = np.asarray(e)
        se = e.std() / np.sqrt(len(e))
        if k == "replay" and not uniform:
            continue  # replay needs uniform logging (asserted biased below)
        assert abs(e.mean()) < 4 * se + 1e-3, (k, e.mean(), se)
    if not uniform:
        e = np.asarray(errs["replay"])
        assert abs(e.mean()) > 4 * e.std() / np.sqrt(len(e))  # non-uniform logging biases replay
    # a good reward model makes DR tighter than IPS
    assert np.std(errs["dr"]) < np.std(errs["ips"])


def test_intervals_cover_the_truth_about_95_percent():
    hits = {k: 0 for k in ("ips", "snips", "dr")}
    n_seeds = 40
    for seed in range(n_seeds):
        r, a, p, tgt, mu, x = _bandit(seed, 600, uniform=False)
        truth = _truth(mu, x, tgt)
        t = (a == tgt).astype(float)
        est = estimate_all(r, p, t, mu[x, a], mu[x, tgt], np.random.default_rng(seed), n_boot=200)
        for k in hits:
            hits[k] += est[k].covers(truth)
    for k, h in hits.items():
        assert h / n_seeds >= 0.8, (k, h)
