"""``homepilot recommend``: the context of a home at a time is the dataset's own decision-time prompt
(built from what happened strictly before it), every recommender answers through it, and the HA
formats parse back to the recommended actions on the home's real (imported) or derived entities."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from app.cli import app
from sim.catalog import ServiceCall
from sim.dataset.files import read_home_log, read_homes, read_rows
from sim.dataset.rows import DecisionPrompts
from sim.ha_export import actions_from_calls, device_map
from sim.records import parse_actions


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    from sim.dataset.build import DatasetConfig, build

    out = tmp_path_factory.mktemp("rec") / "D"
    build(DatasetConfig(out=str(out), preset="tiny", workers=1))
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> Path:
    from sim.dataset.ha import HAConfig
    from sim.dataset.ha import main as import_ha
    from tests.sim.dataset.test_import_ha import make_recorder

    d = tmp_path_factory.mktemp("rec_ha")
    db = make_recorder(d / "home-assistant_v2.db")
    import_ha(HAConfig(db=str(db), out=str(d / "D"), test_days=3))
    return d / "D"


def invoke(*args: str):
    return CliRunner().invoke(app, ["recommend", *args])


@pytest.mark.parametrize("which", ["generated", "imported"])
def test_the_context_is_the_datasets_decision_time_prompt(which, request):
    """Rebuilt from the dataset with only what happened before the decision, the prompt is byte for
    byte the one the dataset's sft row holds (history, device states, usual operations, readings)."""
    data = request.getfixturevalue(which)
    rows = [r for split in ("test", "test_unseen") for r in read_rows(data, "sft", split, required=False)]
    assert len(rows) >= 10
    for r in rows[:: max(1, len(rows) // 12)]:
        log = read_home_log(data, r["home_id"], before=r["time"])
        assert all(o.time < r["time"] for o in log.operations) and all(e.time < r["time"] for e in log.events)
        assert DecisionPrompts(log)(r["time"]) == r["prompt"], (r["home_id"], r["time"])


def test_recommend_baseline_text_json_and_ha_on_a_synthetic_home(generated):
    r = read_rows(generated, "sft", "test")[0]
    at = (r["time"] + timedelta(seconds=30)).isoformat()
    res = invoke("--data", str(generated), "--run", "baseline", "--home", r["home_id"], "--at", at, "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == "frequency" and out["home_id"] == r["home_id"] and out["prompt"] == r["prompt"]
    home = read_homes(generated)[r["home_id"]]
    acts = parse_actions(out["actions"])
    assert acts and all(a.target in home.types() for a in acts)
    assert out["status"] == ("exposed" if out["confidence"] >= 0.7 else "withheld")
    # synthetic homes have no real entity ids: <domain>.<room>_<device>
    first = out["ha_calls"][0]
    assert first["target"]["entity_id"].endswith(f".{acts[0].room}_{acts[0].device}")
    calls = [ServiceCall.from_json(c) for c in out["ha_calls"]]
    assert actions_from_calls(calls, device_map(home.devices)) == acts
    text = invoke("--data", str(generated), "--run", "frequency", "--home", r["home_id"], "--at", at)
    assert text.exit_code == 0 and out["actions"] in text.output and "method frequency" in text.output


def test_ha_formats_target_the_imported_entities_and_parse_back(imported):
    home = next(iter(read_homes(imported).values()))
    res = invoke("--data", str(imported), "--run", "baseline", "--home", home.home_id, "--at", "2026-02-02T07:01",
                 "--format", "json")
    assert res.exit_code == 0, res.output
    acts = parse_actions(json.loads(res.stdout)["actions"])
    assert acts  # every morning at 07:00 the ceiling light goes on
    ha = invoke("--data", str(imported), "--run", "baseline", "--home", home.home_id, "--at", "2026-02-02T07:01",
                "--format", "ha")
    assert ha.exit_code == 0, ha.output
    calls = [ServiceCall.from_json(c) for c in json.loads(ha.stdout)]
    real = {e for d in home.devices for e in d.entity_ids}
    assert calls and {c.entity_id for c in calls} <= real  # the recorder's own entity ids
    assert actions_from_calls(calls, device_map(home.devices)) == acts
    script = invoke("--data", str(imported), "--run", "baseline", "--home", home.home_id, "--at",
                    "2026-02-02T07:01", "--format", "ha-script")
    assert script.exit_code == 0, script.output
    (body,) = yaml.safe_load(script.stdout)["script"].values()
    steps = [ServiceCall.from_json(s) for s in body["sequence"]]
    assert steps == calls and actions_from_calls(steps, device_map(home.devices)) == acts


def test_later_history_does_not_change_the_answer(imported, tmp_path):
    """Only operations strictly before --at count: dropping every later operation and event from the
    dataset gives the same prompt and answer."""
    import shutil

    import pyarrow as pa
    import pyarrow.compute as pc

    at = datetime(2026, 1, 20, 18, 30)
    cut = tmp_path / "cut"
    shutil.copytree(imported, cut)
    for config in ("operations", "events"):
        for f in (cut / "data" / config).glob("*.parquet"):
            t = pq.read_table(f)
            pq.write_table(t.filter(pc.less(t["time"], pa.scalar(at, t["time"].type))), f)
    home = next(iter(read_homes(imported)))
    outs = [json.loads(invoke("--data", str(d), "--run", "frequency", "--home", home, "--at", at.isoformat(),
                              "--format", "json").stdout) for d in (imported, cut)]
    assert outs[0]["prompt"] == outs[1]["prompt"] and outs[0]["actions"] == outs[1]["actions"]
    assert outs[0]["history_operations"] == outs[1]["history_operations"] > 0


def test_recommend_with_a_trained_run(generated, trained_run):
    r = read_rows(generated, "sft", "test")[3]
    res = invoke("--data", str(generated), "--run", str(trained_run), "--home", r["home_id"], "--at",
                 r["time"].isoformat(), "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["method"] == f"run:{trained_run}" and out["prompt"] == r["prompt"]
    home = read_homes(generated)[r["home_id"]]
    acts = parse_actions(out["actions"]) if out["actions"] else ()
    assert all(a.target in home.types() for a in acts)  # legal by construction
    assert 0.0 <= out["confidence"] <= 1.0 and out["status"] in ("exposed", "withheld", "abstained")
    calls = [ServiceCall.from_json(c) for c in out["ha_calls"]]
    assert actions_from_calls(calls, device_map(home.devices)) == acts


@pytest.mark.parametrize("name", ["random", "usual", "gbdt"])
def test_other_baselines_answer_legally(imported, name):
    home = next(iter(read_homes(imported).values()))
    res = invoke("--data", str(imported), "--run", name, "--home", home.home_id, "--at", "2026-02-01T18:05",
                 "--format", "json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    acts = parse_actions(out["actions"])
    assert acts and all(a.target in home.types() for a in acts)
    if name in ("random", "usual"):
        assert out["confidence"] is None and out["status"] == "withheld"
    if name == "usual":  # the prompt's first usual operation not already in place
        from agent.baselines.usual import usual_rule
        from sim.records import parse_prompt

        assert acts == usual_rule(parse_prompt(out["prompt"]))


@pytest.mark.parametrize("args, message", [
    (["--home", "nope"], "home 'nope' is not in"),
    (["--run", "no_such_run"], "--run 'no_such_run': no such run directory, and not a baseline"),
    (["--at", "tomorrow"], "--at must be a date and time such as 2026-01-20T07:30, got 'tomorrow'"),
    (["--at", "2026-01-20T07:30+01:00"], "without a UTC offset"),
])
def test_bad_input_is_one_line_exit_1(imported, args, message):
    home = next(iter(read_homes(imported)))
    base = {"--data": str(imported), "--run": "baseline", "--home": home, "--at": "2026-01-20T07:30"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    res = invoke(*[x for kv in base.items() for x in kv])
    assert res.exit_code == 1 and message in res.output and len(res.output.strip().splitlines()) == 1, res.output
