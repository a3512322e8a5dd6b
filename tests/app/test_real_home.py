"""A real home in and out (issue 17): a Home Assistant recorder database is imported, validated,
trained on and evaluated through the CLI; evaluation and replay of an imported log (no simulator,
no logged feedback) drop what needs the simulator and say so; recommendations come back out as
service calls on the recorder's own entities.

Training is shrunk as the quickstart test shrinks it (``tests/app/test_quickstart.py``'s
``TINY_TRAIN``: a few optimizer steps per stage). ``homepilot train`` has no options for those
budgets, so the CLI test patches the ``tiny`` preset's values (``training.pipeline.HYPER``) for its
run; every command itself goes through typer. This pins the plumbing, not model quality.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from sim.catalog import ServiceCall
from sim.dataset.files import read_homes
from sim.ha_export import actions_from_calls, device_map
from sim.records import parse_actions
from tests.sim.dataset.test_import_ha import make_recorder

SHRUNK = dict(sft_min_steps=0, pretrain_tokens=6_000, sft_max_rows=24, dpo_max_rows=8, sft_batch_size=8,
              dpo_batch_size=4)  # tests/app/test_quickstart.py's TINY_TRAIN budgets


def cli(*args: str):
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == 0, r.output
    return r


@pytest.fixture(scope="module")
def recorder(tmp_path_factory) -> Path:
    return make_recorder(tmp_path_factory.mktemp("real") / "home-assistant_v2.db")


@pytest.fixture(scope="module")
def imported(recorder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real_d") / "D"
    cli("import-ha", str(recorder), "--out", str(out), "--test-days", "3")
    return out


def check_predictions(path: Path, data: Path, method: str) -> int:
    """Every predictions.jsonl row's HA calls target the home's recorded entities and parse back to
    its actions; returns the rows with an answer."""
    home = next(iter(read_homes(data).values()))
    real = {e for d in home.devices for e in d.entity_ids}
    answered = 0
    for line in path.read_text().splitlines():
        row = json.loads(line)
        assert row["method"] == method and row["home_id"] == home.home_id and row["split"] == "test"
        acts = parse_actions(row["actions"]) if row["actions"] else ()
        calls = [ServiceCall.from_json(c) for c in row["ha_calls"]]
        assert {c.entity_id for c in calls} <= real
        assert actions_from_calls(calls, device_map(home.devices)) == acts
        answered += bool(acts)
    return answered


def test_evaluate_an_import_without_simulator_and_write_ha_predictions(imported, tmp_path):
    from agent.evaluate import NO_SIMULATOR, EvaluateConfig, evaluate
    from agent.report import write_report

    cfg = EvaluateConfig(data=imported, runs=[], out=tmp_path / "E", baselines=("Frequency", "Random"), n_boot=0,
                         format="ha")
    report = evaluate(cfg)
    write_report(report, cfg.out)
    assert report["splits"] == ["test"]  # the import has no test_unseen: the default takes what exists
    assert set(report["whole"]) == {"Frequency", "Random"}  # no Oracle row
    assert report["simulator"] == {"oracle": False, "simulated_acceptance": False, "note": NO_SIMULATOR}
    saved = json.loads((cfg.out / "report.json").read_text())
    assert saved["predictions_file"] == "predictions.jsonl" and "predictions" not in saved
    assert "gate_at_0_7" not in saved and "exposure_curve" not in saved
    md = (cfg.out / "report.md").read_text()
    assert NO_SIMULATOR in md and "splits: test ·" in md and "no simulated users judge" in md
    # no LM run: the baseline with the best EM-Acc answers in predictions.jsonl
    best = max(report["whole"], key=lambda n: report["whole"][n]["em_acc"])
    rows = (cfg.out / "predictions.jsonl").read_text().splitlines()
    assert len(rows) == report["n_samples"] > 10
    assert check_predictions(cfg.out / "predictions.jsonl", imported, best) > 0
    with pytest.raises(ValueError, match="--splits: .* has no sft test_unseen split \\(has: train, test\\)"):
        evaluate(EvaluateConfig(data=imported, runs=[], out=tmp_path / "E2", splits="test_unseen"))


def test_replay_an_import_judges_by_the_label_and_says_why(imported, tmp_path):
    from agent.replay_eval import NO_FEEDBACK, NO_SIMULATOR

    r = cli("replay", "--data", str(imported), "--model", "baseline", "--out", str(tmp_path / "P"), "--n-boot", "0")
    assert NO_FEEDBACK in " ".join(r.output.split())  # said in the one CLI line per note
    rep = json.loads((tmp_path / "P" / "replay.json").read_text())
    assert rep["logged_feedback"] is False and rep["splits"] == ["test"] and rep["simulator"]["live_truth"] is False
    assert not {"replay", "ips", "snips", "dr", "inside"} & set(rep)  # no propensities: no estimates
    jb = rep["judged_by"]  # every answer, shown or not, judged against what the user did
    assert jb["logged"] == 0 and jb["label"] + jb["abstain"] == rep["n_decisions"] and rep["n_exposed"] > 0
    assert rep["notes"] == [NO_FEEDBACK, NO_SIMULATOR]
    md = (tmp_path / "P" / "replay.md").read_text()
    assert NO_FEEDBACK in md and NO_SIMULATOR in md and "Live ground truth" not in md
    live = CliRunner().invoke(app, ["replay", "--data", str(imported), "--out", str(tmp_path / "L"), "--mode", "live"])
    assert live.exit_code == 1 and "--mode live runs the simulated homes of a generated dataset" in live.output
    bad = CliRunner().invoke(app, ["replay", "--data", str(imported), "--out", str(tmp_path / "B"), "--splits",
                                   "test_unseen"])
    assert bad.exit_code == 1 and "has no test_unseen rows" in bad.output


@pytest.mark.timeout(900)
def test_import_ha_validate_train_evaluate_through_the_cli(recorder, tmp_path, monkeypatch):
    """The show: `homepilot import-ha fixture.db --out D && homepilot validate D && homepilot train --data D
    --out R --preset tiny && homepilot evaluate --data D --runs R --out E` all exit 0, and E's report
    has the LM rows and the baseline rows (and no oracle: an import has no simulator)."""
    from training import pipeline

    monkeypatch.setitem(pipeline.HYPER, "tiny", replace(pipeline.HYPER["tiny"], **SHRUNK))
    d, run, e = tmp_path / "D", tmp_path / "R", tmp_path / "E"
    cli("import-ha", str(recorder), "--out", str(d))
    cli("validate", str(d))
    cli("train", "--data", str(d), "--out", str(run), "--preset", "tiny", "--save-steps", "1000")
    out = cli("evaluate", "--data", str(d), "--runs", str(run), "--out", str(e), "--format", "ha")
    report = json.loads((e / "report.json").read_text())
    assert {"Base LM", "PT+FT", "PT+FT+DPO", "Frequency", "Usual", "CGC", "GBDT", "Random"} == set(report["whole"])
    assert report["main_method"] == "PT+FT+DPO" and report["splits"] == ["test"]
    assert report["simulator"]["oracle"] is False and report["simulator"]["note"] in " ".join(out.output.split())
    assert all(m["n"] == report["n_samples"] > 0 for m in report["whole"].values())
    assert all(v == 1.0 for v in report["legal_rate"].values() if v == v)  # NaN: a method that abstained everywhere
    assert check_predictions(e / "predictions.jsonl", d, "PT+FT+DPO") > 0


def test_replay_an_import_writes_ha_predictions(imported, tmp_path):
    """replay --format ha: per decision point, the answer and its HA calls on the recorded entities."""
    out = tmp_path / "R"
    res = CliRunner().invoke(app, ["replay", "--data", str(imported), "--model", "baseline", "--out", str(out),
                                   "--n-boot", "0", "--format", "ha"])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}/predictions.jsonl" in res.output
    rep = json.loads((out / "replay.json").read_text())
    assert rep["predictions_file"] == "predictions.jsonl"
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == rep["n_decisions"]
    assert check_predictions(out / "predictions.jsonl", imported, "frequency-baseline") > 0
