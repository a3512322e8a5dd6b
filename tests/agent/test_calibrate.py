"""After training: the held-out slice, the confidence temperature and the collapse warning."""

from __future__ import annotations

import json

import pytest

from agent.calibrate import HeldOut, calibrate_model, collapse_warning
from sim.records import Action

LIGHT_OFF = (Action("bedroom", "light", "power", "off"),)
KETTLE_ON = (Action("kitchen", "kettle", "power", "on"),)


def test_collapse_warning_names_the_top_answer_and_its_share():
    assert collapse_warning([LIGHT_OFF] * 3 + [KETTLE_ON] * 7) == (
        "collapsed answers: [kitchen][kettle][power][on] is 70% of 10 held-out answers (> 30%); "
        "the model is not reading its prompt")
    assert collapse_warning([LIGHT_OFF] * 3 + [KETTLE_ON] * 3 + [()] * 4) is not None  # abstentions count too
    varied = [(Action("bedroom", "light", "brightness", str(10 * i)),) for i in range(7)]
    assert collapse_warning([LIGHT_OFF] * 3 + varied) is None  # exactly 30%: not above the share
    assert collapse_warning([LIGHT_OFF] * 4 + varied[:6]) is not None  # 40%
    assert collapse_warning([]) is None


def test_a_degenerate_model_gets_the_warning_in_its_calibration_file(tmp_path, monkeypatch):
    """A model that answers the same action whatever the prompt (as the X10 run did) is flagged."""
    from types import SimpleNamespace

    import agent.recommender as R

    class Degenerate:
        config = R.RecommenderConfig(pool="plausible")

        def recommend_batch(self, contexts):
            return [SimpleNamespace(actions=LIGHT_OFF, confidence=0.6) for _ in contexts]

        def recommend_pools(self, contexts):
            return {"plausible": self.recommend_batch(contexts), "usual": self.recommend_batch(contexts)}

    monkeypatch.setattr(R.Recommender, "from_run", classmethod(lambda cls, *a, **k: Degenerate()))
    types = {("bedroom", "light"): "light", ("kitchen", "kettle"): "kettle"}
    prompt = ("<hist> <op> 2026-03-02 07:00 Mon <act> [kitchen][kettle][power][on] </op> </hist> "
              "<now> 2026-03-02 07:30 Mon <devices> [bedroom][light] [kitchen][kettle][power][on] <rec>")
    data = HeldOut([prompt] * 20, [types] * 20, [KETTLE_ON] * 10 + [LIGHT_OFF] * 10)
    fit = calibrate_model(tmp_path, "action-first", data)
    assert fit["top_answer_share"] == 1.0 and fit["em_acc"] == pytest.approx(0.5)
    assert "[bedroom][light][power][off] is 100% of 20" in fit["collapse_warning"]
    assert json.loads((tmp_path / "recommender.json").read_text())["collapse_warning"] == fit["collapse_warning"]


def test_fit_gate_takes_the_widest_top_share_accepted_1_2x_the_average():
    """Hand-worked: 20 answers, 8 accepted (average 0.4). By score, the top 10% (2) are 2/2 accepted,
    20% 4/4, 30% 5/6, 40% 6/8 = 0.75, 50% 6/10 = 0.6 (1.5x), 60% 6/12 = 0.5 (1.25x), 70% 6/14 = 0.43
    (1.07x): the widest share at >= 1.2x is 60%, admitted by the 12th score."""
    from agent.confidence import fit_gate

    scores = [1.0 - 0.01 * i for i in range(20)]  # distinct, falling
    accepted = [1, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
    fit = fit_gate(scores, accepted, min_answers=10)
    assert fit["exposure"] == pytest.approx(0.6) and fit["threshold"] == pytest.approx(0.89)
    assert fit["acceptance"] == pytest.approx(0.5) and fit["lift"] == pytest.approx(1.25)
    assert fit["ungated_acceptance"] == pytest.approx(0.4)
    assert fit_gate(scores, accepted, lift=3.0, min_answers=10) is None  # no share reaches 3x
    assert fit_gate(scores, accepted) is None  # fewer than 50 answers: no operating point
    assert fit_gate(scores, [0] * 20, min_answers=10) is None  # nothing accepted
    tied = fit_gate([0.5] * 10 + [0.1] * 10, [1] * 6 + [0] * 14, min_answers=10)
    assert tied["exposure"] == pytest.approx(0.5) and tied["threshold"] == 0.5  # ties at the cut are admitted


def test_the_threshold_is_the_runs_fitted_one_unless_given(tmp_path):
    from agent.calibrate import CALIBRATION_FILE, gate_threshold, resolve_threshold

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    assert gate_threshold(run) == 0.7 and gate_threshold(None) == 0.7  # uncalibrated / no run: the paper's
    (run / "model" / CALIBRATION_FILE).write_text(json.dumps({"temperature": 3.0, "gate_threshold": 0.26}))
    assert gate_threshold(run) == 0.26 and gate_threshold(run / "model") == 0.26
    assert resolve_threshold(None, run) == 0.26 and resolve_threshold(0.5, run) == 0.5
    assert resolve_threshold(0.0, run) == 0.0  # an explicit 0 is a threshold, not "unset"
    (run / "model" / CALIBRATION_FILE).write_text(json.dumps({"temperature": 3.0, "gate_threshold": None}))
    assert gate_threshold(run) == 0.7  # no share of its answers reached the lift
    with pytest.raises(ValueError, match="threshold must be in"):
        resolve_threshold(1.5, run)
    (run / "model" / CALIBRATION_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="recommender.json: not a calibration file"):
        gate_threshold(run)
    assert resolve_threshold(0.4, run) == 0.4  # a given threshold never reads the file
    (run / "model" / CALIBRATION_FILE).write_text(json.dumps({"gate_threshold": 3}))
    with pytest.raises(ValueError, match="gate_threshold 3.0 is not in"):
        gate_threshold(run)


def test_calibration_writes_the_operating_point(tmp_path, monkeypatch):
    """60 held-out answers whose confidence ranks acceptance: the calibration file carries a gate
    threshold that admits the well-accepted top, and it is a calibrated-scale value below 0.7."""
    from types import SimpleNamespace

    import agent.recommender as R

    confs = [0.9 - 0.01 * i for i in range(60)]

    class Ranked:
        config = R.RecommenderConfig(pool="plausible")

        def recommend_batch(self, contexts):
            return [SimpleNamespace(actions=KETTLE_ON if i < 20 or i % 3 == 0 else LIGHT_OFF, confidence=c, relax=0.81)
                    for i, c in zip(range(len(contexts)), confs, strict=True)]

        def recommend_pools(self, contexts):
            return {"plausible": self.recommend_batch(contexts), "usual": self.recommend_batch(contexts)}

    monkeypatch.setattr(R.Recommender, "from_run", classmethod(lambda cls, *a, **k: Ranked()))
    types = {("bedroom", "light"): "light", ("kitchen", "kettle"): "kettle"}
    prompt = ("<hist> <op> 2026-03-02 07:00 Mon <act> [kitchen][kettle][power][on] </op> </hist> "
              "<now> 2026-03-02 07:30 Mon <devices> [bedroom][light] [kitchen][kettle][power][off] <rec>")
    fit = calibrate_model(tmp_path, "action-first", HeldOut([prompt] * 60, [types] * 60, [KETTLE_ON] * 60))
    # accepted: the top 20, then every third (i = 21, 24, ...): 33 of 60 = 0.55; the top 40% (24) hold
    # 21 accepted = 0.875 (1.59x), 50% 30 -> 23/30 (1.39x), 60% 36 -> 25/36 (1.26x), 70% 42 -> 27/42 (1.17x)
    assert fit["gate"]["exposure"] == pytest.approx(0.6) and fit["gate"]["lift"] == pytest.approx(25 / 36 / 0.55)
    saved = json.loads((tmp_path / "recommender.json").read_text())
    assert saved["gate_threshold"] == pytest.approx(fit["gate"]["threshold"]) and saved["gate_threshold"] < 0.7


def test_calibration_chooses_the_usual_pool_only_where_it_answers_more_held_out_contexts(tmp_path, monkeypatch):
    """The recommender answers from both pools; "usual" is written when it is exactly right more often,
    and the calibration is then fitted on its answers; a tie keeps every plausible set."""
    from types import SimpleNamespace

    import agent.recommender as R

    def answers(right_usual: int, right_plausible: int):
        class ByPool:
            config = R.RecommenderConfig(pool="plausible")

            def recommend_batch(self, contexts):  # greedy
                return self.answers(len(contexts), right_usual)

            def recommend_pools(self, contexts):  # candidate scoring: one pass, both pools
                return {"plausible": self.answers(len(contexts), right_plausible),
                        "usual": self.answers(len(contexts), right_usual)}

            @staticmethod
            def answers(n, right):
                return [SimpleNamespace(actions=KETTLE_ON if i < right else LIGHT_OFF, confidence=0.5)
                        for i in range(n)]
        return ByPool()

    types = {("bedroom", "light"): "light", ("kitchen", "kettle"): "kettle"}
    prompt = ("<hist> <op> 2026-03-02 07:00 Mon <act> [kitchen][kettle][power][on] </op> </hist> "
              "<now> 2026-03-02 07:30 Mon <devices> [bedroom][light] [kitchen][kettle][power][off] <rec>")
    data = HeldOut([prompt] * 20, [types] * 20, [KETTLE_ON] * 20)
    monkeypatch.setattr(R.Recommender, "from_run", classmethod(lambda cls, *a, **k: answers(12, 8)))
    fit = calibrate_model(tmp_path, "action-first", data)
    assert fit["pool"] == "usual" and fit["pool_em"] == {"plausible": 0.4, "usual": 0.6}
    assert fit["em_acc"] == pytest.approx(0.6)  # the figures are the chosen pool's
    assert json.loads((tmp_path / "recommender.json").read_text())["pool"] == "usual"
    monkeypatch.setattr(R.Recommender, "from_run", classmethod(lambda cls, *a, **k: answers(8, 8)))
    fit = calibrate_model(tmp_path, "action-first", data)
    assert fit["pool"] == "plausible" and fit["em_acc"] == pytest.approx(0.4)
    monkeypatch.setattr(R.Recommender, "from_run", classmethod(lambda cls, *a, **k: answers(20, 8)))
    fit = calibrate_model(tmp_path, "action-first", data, search="greedy")  # pools are for candidate scoring
    assert fit["pool"] == "plausible" and fit["pool_em"] == {} and fit["em_acc"] == pytest.approx(1.0)


def test_the_pool_is_the_runs_chosen_one(tmp_path):
    from agent.calibrate import CALIBRATION_FILE, fitted_pool

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    assert fitted_pool(run) == "plausible" and fitted_pool(None) == "plausible"
    (run / "model" / CALIBRATION_FILE).write_text(json.dumps({"temperature": 3.0}))  # from before pools
    assert fitted_pool(run) == "plausible"
    (run / "model" / CALIBRATION_FILE).write_text(json.dumps({"pool": "usual"}))
    assert fitted_pool(run) == "usual" and fitted_pool(run / "model") == "usual"
    (run / "model" / CALIBRATION_FILE).write_text(json.dumps({"pool": "all"}))
    with pytest.raises(ValueError, match="recommender.json: pool must be one of plausible, usual, got 'all'"):
        fitted_pool(run)


def test_homepilot_train_prints_the_pool_and_the_gate():
    """Hand-worked: the lines ``homepilot train`` prints of a calibration file's figures."""
    from app.cli import calibration_lines

    fit = {"em_acc": 0.2296, "temperature": 4.65, "distinct_per_100": 19.03, "top_answer_share": 0.139,
           "pool": "usual", "pool_em": {"plausible": 0.2204, "usual": 0.2296}, "exposure_at_0_7": 0.003,
           "gate": {"threshold": 0.2533, "exposure": 0.5015, "lift": 1.3293}}
    assert calibration_lines("dpo/final", fit) == [
        "dpo/final: held-out EM-Acc 0.230, confidence temperature 4.65, 19 distinct answers per 100, "
        "top answer share 0.14",
        "dpo/final: candidate pool usual (held-out answers exactly right: plausible 0.220, usual 0.230)",
        "dpo/final: gate threshold 0.253 (held-out: shows 50%, accepted 1.33x the average; 0.7 shows 0%)"]
    greedy = {**fit, "pool": "plausible", "pool_em": {}, "gate": None, "answered": 200}  # no pools, no point
    assert calibration_lines("sft/final", greedy)[1:] == [
        "sft/final: no gate operating point (no top share of the held-out answers is accepted 1.2x the average): "
        "the gate stays at 0.7"]
    small = {**greedy, "answered": 19}  # a small dataset: too few answers to fit one on
    assert calibration_lines("sft/final", small)[1:] == [
        "sft/final: no gate operating point (19 held-out answers, fewer than the 50 it is fitted on): "
        "the gate stays at 0.7"]
