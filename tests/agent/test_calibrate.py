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
        config = SimpleNamespace(confidence=SimpleNamespace(threshold=0.7))

        def recommend_batch(self, contexts):
            return [SimpleNamespace(actions=LIGHT_OFF, confidence=0.6) for _ in contexts]

    monkeypatch.setattr(R.Recommender, "from_run", classmethod(lambda cls, *a, **k: Degenerate()))
    types = {("bedroom", "light"): "light", ("kitchen", "kettle"): "kettle"}
    prompt = ("<hist> <op> 2026-03-02 07:00 Mon <act> [kitchen][kettle][power][on] </op> </hist> "
              "<now> 2026-03-02 07:30 Mon <devices> [bedroom][light] [kitchen][kettle][power][on] <rec>")
    data = HeldOut([prompt] * 20, [types] * 20, [KETTLE_ON] * 10 + [LIGHT_OFF] * 10)
    fit = calibrate_model(tmp_path, "action-first", data)
    assert fit["top_answer_share"] == 1.0 and fit["em_acc"] == pytest.approx(0.5)
    assert "[bedroom][light][power][off] is 100% of 20" in fit["collapse_warning"]
    assert json.loads((tmp_path / "recommender.json").read_text())["collapse_warning"] == fit["collapse_warning"]
