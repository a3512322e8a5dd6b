"""homepilot sim-report end to end on a tiny run."""

import json
import math

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.sim_report import SimReportConfig

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
