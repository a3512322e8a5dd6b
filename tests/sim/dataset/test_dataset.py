"""``homepilot generate --preset tiny`` end to end on the real simulator: loading, splits, the
paper's DPO rules on every pair, the card, and ``homepilot validate``."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from app.cli import app
from sim.catalog import conflict_window_s, inverse
from sim.dataset import DatasetConfig
from sim.dataset.schema import CONFIGS, SCHEMAS
from sim.dataset.validate import validate_dir
from sim.prompts import circular_minutes, minute_of_day
from sim.records import parse_actions, parse_prompt, parse_target

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "D"
    r = CliRunner().invoke(app, ["generate", "--preset", "tiny", "--out", str(out), "--workers", "2", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)  # structured: independent of the terminal width
    # not a terminal: progress goes to stderr as plain lines, one per shard's end at least
    lines = r.stderr.splitlines()  # print()ed lines, never wrapped
    assert "[generate] shards: started, 3 steps" in lines
    assert any(x.startswith("[generate] shards: step 3/3 (100%), ") and x.endswith(" - done") for x in lines)
    assert summary["shards_run"] == 3 and summary["rows"]["sft/test_unseen"] > 0 and summary["rows"]["sft/train"] > 0
    return out


def rows(root: Path, config: str, split: str | None = None) -> list[dict]:
    out = []
    for p in sorted((root / "data" / config).glob(f"{split + '-' if split else ''}*.parquet")):
        out += pq.read_table(p).to_pylist()
    return out


def test_every_config_loads_with_datasets(tiny, tmp_path):
    import datasets

    # a private cache: the shared one is keyed by the folder's name ("D") and served another run's
    # homes table (without a column added since) instead of reading these files
    cache = str(tmp_path / "hf_cache")
    for config in CONFIGS:
        ds = datasets.load_dataset(str(tiny), config, cache_dir=cache)
        assert set(ds) >= {"train"} or config in ("homes",)
        for split in ds:
            assert ds[split].column_names == SCHEMAS[config].names
    sft = datasets.load_dataset(str(tiny), "sft", cache_dir=cache)
    assert set(sft) == {"train", "test", "test_unseen"}
    assert all(n > 0 for n in sft.num_rows.values())
    default = datasets.load_dataset(str(tiny), cache_dir=cache)  # no config named: the card's default, sft
    assert default.num_rows == sft.num_rows and default["train"]["prompt"] == sft["train"]["prompt"]


def test_shard_names_and_counts_follow_the_plan(tiny):
    cfg = DatasetConfig(preset="tiny")
    seen = [s for s in cfg.shards() if s.group == "seen"]
    names = sorted(p.name for p in (tiny / "data" / "sft").iterdir())
    assert names == sorted([f"{sp}-{i:05d}-of-{len(seen):05d}.parquet" for sp in ("test", "train") for i in range(len(seen))]
                           + ["test_unseen-00000-of-00001.parquet"])
    homes = rows(tiny, "homes")
    assert len(homes) == cfg.homes
    assert {h["home_id"] for h in homes if h["split"] == "test_unseen"} == {"h00002", "h00005"}


def test_splits_do_not_overlap_and_unseen_homes_never_train(tiny):
    cfg = DatasetConfig(preset="tiny")
    unseen = {h["home_id"] for h in rows(tiny, "homes", "test_unseen")}
    for config in ("events", "operations", "sft", "feedback", "dpo", "pretrain"):
        train = rows(tiny, config, "train")
        assert train and not unseen & {r["home_id"] for r in train}
        if "time" in SCHEMAS[config].names:
            assert max(r["time"] for r in train) < cfg.cutoff
            assert all(r["time"] >= cfg.cutoff for r in rows(tiny, config, "test"))
    for r in rows(tiny, "sft", "test_unseen"):
        assert r["home_id"] in unseen and r["time"] >= cfg.cutoff


def test_sft_rows_carry_subdataset_keys_and_consistent_targets(tiny):
    homes = {h["home_id"]: h for h in rows(tiny, "homes")}
    for r in rows(tiny, "sft"):
        assert r["bucket"] == homes[r["home_id"]]["bucket"]
        acts, desc = parse_target(r["completion"])
        assert parse_target(r["completion_text_first"], "text-first") == (acts, desc)
        assert parse_actions(r["actions"]) == acts and desc == r["description"]
        assert r["categories"] and all(isinstance(c, str) for c in r["categories"])
        p = parse_prompt(r["prompt"])
        assert p.time == r["time"].replace(second=0) and all(o.time < p.time for o in p.history)
        assert len(p.devices) == len(homes[r["home_id"]]["devices"])


def test_every_dpo_pair_follows_the_papers_rules(tiny):
    """Recheck each pair from the operations config: time = never by this user within +-1 h of this
    time of day before; conflict = inverse of an in-window action on that device."""
    logged = defaultdict(list)
    for split in ("train", "test"):
        for o in rows(tiny, "operations", split):
            if o["logged"]:
                logged[o["home_id"]].append((o["time"], o["user"], parse_actions(o["actions"])))
    types = {h["home_id"]: {(d["room"], d["device"]): d["type"] for d in h["devices"]} for h in rows(tiny, "homes")}
    users = {(r["home_id"], r["time"], r["prompt"]): r["user"] for r in rows(tiny, "sft", "train")}
    pairs = rows(tiny, "dpo", "train")
    assert len(pairs) > 20 and {p["negative_kind"] for p in pairs} == {"time", "conflict"}
    for p in pairs:
        assert p["chosen"] != p["rejected"]
        rejected, _ = parse_target(p["rejected"])
        chosen, _ = parse_target(p["chosen"])
        assert len(rejected) == 1 and rejected[0] not in chosen
        (neg,) = rejected
        t = p["time"].replace(second=0)
        before = [x for x in logged[p["home_id"]] if x[0] < t]
        home_types = types[p["home_id"]]
        if p["negative_kind"] == "time":
            user = users[(p["home_id"], p["time"], p["prompt"])]
            assert any(neg in acts for _, _, acts in before), "a time negative is an action of this home"
            for when, u, acts in before:
                if u == user and neg in acts:
                    assert circular_minutes(minute_of_day(when), minute_of_day(t)) > 60
        else:
            window = timedelta(seconds=conflict_window_s(home_types[neg.target]))
            assert any(a.target == neg.target and inverse(home_types[a.target], a.field, a.value) == (neg.field, neg.value)
                       for when, _, acts in before if t - when <= window for a in acts)


def test_feedback_rows_keep_propensities_and_labels(tiny):
    fb = rows(tiny, "feedback")
    assert fb
    for r in fb:
        assert 0 < r["propensity"] <= 1 and 0 <= r["p_accept"] <= 1
        assert r["label"] == "" or parse_actions(r["label"])
        parse_prompt(r["prompt"])


def test_card_describes_every_config_and_column(tiny):
    from huggingface_hub import DatasetCard

    text = (tiny / "README.md").read_text()
    data = DatasetCard.load(tiny / "README.md").data
    assert data.license == "cc-by-4.0" and data.pretty_name == "HomePilot synthetic smart-home operations (tiny)"
    assert [c["config_name"] for c in data.configs] == list(CONFIGS)
    assert [c["config_name"] for c in data.configs if c.get("default")] == ["sft"]
    assert "| `source` | app \\| voice \\| physical \\| automation |" in text  # `|` escaped inside a cell
    for config in CONFIGS:
        for col in SCHEMAS[config].names:
            assert f"| `{col}` |" in text
    assert "homepilot generate --preset tiny --seed 0" in text
    assert (tiny / "stats" / "ops_per_hour.png").read_bytes()[:4] == b"\x89PNG"
    n = sum(pq.read_metadata(p).num_rows for p in (tiny / "data" / "sft").glob("train-*"))
    assert f"| sft | {n} |" in text


def test_validate_passes_then_names_the_first_bad_file_and_row(tiny, tmp_path):
    report = validate_dir(tiny)
    assert report.files == len(list((tiny / "data").rglob("*.parquet")))
    ok = CliRunner().invoke(app, ["validate", str(tiny)])
    assert ok.exit_code == 0 and "ok:" in ok.output
    import shutil

    import pyarrow as pa

    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    path = sorted((bad / "data" / "dpo").glob("train-*"))[0]
    t = pq.read_table(path)
    chosen = t.column("chosen").to_pylist()
    rej = t.column("rejected").to_pylist()
    rej[2] = chosen[2]
    pq.write_table(t.set_column(t.schema.get_field_index("rejected"), "rejected", pa.array(rej)), path)
    r = CliRunner().invoke(app, ["validate", str(bad)])
    assert r.exit_code == 1
    assert f"data/dpo/{path.name} row 2: rejected equals chosen" in r.output


def test_validate_reports_overlapping_splits(tiny, tmp_path):
    import shutil

    import pyarrow as pa

    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    path = sorted((bad / "data" / "events").glob("train-*"))[0]
    t = pq.read_table(path)
    times = t.column("time").to_pylist()
    times[3] = DatasetConfig(preset="tiny").cutoff + timedelta(hours=12)  # a train row inside the test period
    pq.write_table(t.set_column(t.schema.get_field_index("time"), "time", pa.array(times, pa.timestamp("s"))), path)
    with pytest.raises(ValueError, match=f"data/events/{path.name} row 3: .*splits must not overlap in time"):
        validate_dir(bad)


def test_generate_rejects_a_bad_preset_naming_the_choices(tmp_path):
    # the exception itself, not the box rich draws at the terminal width
    err = CliRunner().invoke(app, ["generate", "--preset", "huge", "--out", str(tmp_path / "D")],
                             standalone_mode=False).exception
    assert err.param.name == "preset" and err.exit_code == 2
    assert "'huge' is not one of 'tiny', 'quickstart', 'paper'" in err.format_message()
