"""homepilot sim-report end to end on a tiny run."""

import json
import math
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.sim_report import SimReportConfig
from sim.records import Action

KEYS = ("ops_per_home_day", "share_multi_action", "share_unlogged", "ops_by_source", "ops_by_category",
        "oracle_em_acc", "frequency_em_acc", "em_acc_by_device_bucket", "curtain_acceptance_by_hour",
        "probe_em_acc", "probe_em_acc_without_env", "probe_over_frequency", "probe_em_acc_by_device_bucket")


def test_tiny_run_writes_every_key_and_plot(tmp_path):
    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["sim-report", "--homes", "3", "--days", "2", "--test-days", "1", "--seed", "5",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    # not a terminal: progress as plain lines, and a word before the probe's silent training
    lines = r.stdout.splitlines()  # print()ed lines, never wrapped: independent of the terminal width
    assert any(x.startswith("[sim-report] simulating homes: step 3/3 (100%), ") and x.endswith(" - done") for x in lines)
    assert "[sim-report] learnability probe: training the GBDT reranker with and without the readings" in lines
    data = json.loads((out / "sim_report.json").read_text())
    for k in KEYS:
        assert k in data, k
    assert data["ops_per_home_day"] > 0 and 0 <= data["share_unlogged"] < 1
    assert math.isclose(sum(data["ops_by_source"].values()), 1.0)
    assert set(data["em_acc_by_device_bucket"]) >= {"oracle", "frequency"}
    assert len(data["curtain_acceptance_by_hour"]) == 24
    assert 0 <= data["oracle_em_acc"] <= 1 and 0 <= data["frequency_em_acc"] <= 1
    assert data["probe_samples"] > 0  # held-out operations the learnability probe is scored on
    md = (out / "sim_report.md").read_text()
    assert "oracle EM-Acc" in md
    assert len(list(out.glob("*.png"))) >= 3


def test_bad_config_names_the_field():
    with pytest.raises(ValueError, match=r"SimReportConfig.homes must be an integer in 1\.\.100000"):
        SimReportConfig(homes=0)
    with pytest.raises(ValueError, match="SimConfig.noise_scale"):
        SimReportConfig(sim={"noise_scale": -1})
    r = CliRunner().invoke(app, ["sim-report", "--days", "0"])
    assert r.exit_code != 0 and "days" in r.output


def test_learnability_probe_trains_the_gbdt_reranker_and_blanks_only_the_environment():
    """Four homes, a week: the probe learns (beats abstaining) and both variants are scored."""
    from app.sim_report import compute

    r = compute(SimReportConfig(homes=4, days=5, test_days=2, seed=1))
    assert r["probe_samples"] > 20
    assert 0 < r["probe_em_acc"] <= 1 and 0 < r["probe_em_acc_without_env"] <= 1
    assert math.isclose(r["probe_over_frequency"], r["probe_em_acc"] / r["probe_frequency_em_acc"])


def test_curtain_proposals_leave_out_what_the_logs_show_in_place():
    """The early bird's home (tests/sim/world/test_acceptance.py), fitted on Monday, proposed on
    Tuesday. Monday's curtain operations: bedroom open 06:00 / close 21:25, living room open 06:25 /
    close 16:58; Tuesday repeats them (16:59 for the living room). The frequency recommender's curtain
    proposal per slot: bedroom close 0-1 h and 19-23 h, living room open 2-11 h, close 12-18 h."""
    from agent.baselines.frequency import FrequencyBaseline
    from app.sim_report import curtain_proposals
    from sim.world import simulate_home
    from sim.world.behaviour import FixedChooser
    from tests.sim.world.test_acceptance import HOME, QUIET

    log = simulate_home(QUIET, 42, home=HOME, chooser=FixedChooser())
    cut = log.start + timedelta(days=1)
    made = curtain_proposals(log, FrequencyBaseline().fit(o for o in log.operations if o.time < cut), cut, 1)
    when = [(t.hour, t.minute) for t, _ in made]
    every = [10, 30, 50]
    assert when == ([(h, m) for h in range(2, 6) for m in every] + [(6, 10)]  # open until 06:25 opens it
                    + [(h, m) for h in range(12, 17) for m in every]  # close until 16:59 closes it
                    + [(h, m) for h in (19, 20) for m in every] + [(21, 10)])  # close until 21:25
    assert {(t.hour, a) for t, a in made if t.hour in (2, 12, 19)} == {
        (2, (Action("living_room", "curtain", "action", "open"),)),
        (12, (Action("living_room", "curtain", "action", "close"),)),
        (19, (Action("bedroom", "curtain", "action", "close"),))}
