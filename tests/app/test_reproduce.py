"""One tiny ``reproduce`` (2 seeds, the tiny data preset, runs shrunk as in ``test_quickstart``), shared
by every test here. It starts in a subprocess that is killed with SIGKILL as soon as seed 0's first
training step has finished (its step marker appears), then runs again in-process to the end: the
tests check that the finished steps were not redone, then the combined report and the sensitivity
studies against the per-seed reports they were made from. This pins plumbing and aggregation, not
model quality (a few optimizer steps per run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.quickstart import Steps
from app.reproduce import ReproduceConfig, run
from tests.app.test_quickstart import TINY_TRAIN

ROOT = Path(__file__).resolve().parents[2]
CONFIG = dict(seeds=(0, 1), data_preset="tiny", workers=1, max_samples=16, n_boot=200, train_overrides=TINY_TRAIN)
SCRIPT = """
import sys
from app.reproduce import ReproduceConfig, run
from tests.app.test_reproduce import CONFIG
run(ReproduceConfig(out=sys.argv[1], **CONFIG))
"""
METRICS = ("em_acc", "lm_f1", "rule")

pytestmark = pytest.mark.timeout(3600)  # two tiny quickstarts and the studies: ~10 min on a busy 2-core box


def _snapshot(out: Path) -> dict[str, object]:
    """What seed 0's finished steps left: their markers, the dataset shards, the main run's log and model."""
    seed0 = Steps(out / "seed-0")
    files = [seed0.marker("generate"), seed0.marker("train PT+FT+DPO"), out / "seed-0" / "runs" / "main" / "metrics.jsonl",
             out / "seed-0" / "runs" / "main" / "model" / "model.safetensors",
             *sorted((out / "seed-0" / "data" / "data").rglob("*.parquet"))]
    return {str(f.relative_to(out)): (f.read_bytes(), f.stat().st_mtime_ns) for f in files}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce") / "out"
    marker = Steps(out / "seed-0").marker("train PT+FT+DPO")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 1800
    while not marker.exists():  # poll for the first finished training step
        if proc.poll() is not None:
            pytest.fail(f"reproduce exited ({proc.returncode}) before its first training step finished: "
                        f"{proc.stderr.read().decode()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("reproduce did not finish its first training step within 30 min")
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    proc.stderr.close()
    before = _snapshot(out)
    steps: list[str] = []
    result = run(ReproduceConfig(out=out, **CONFIG), steps.append)
    return out, result, steps, before


def _seed_report(out: Path, seed: int) -> dict:
    return json.loads((out / f"seed-{seed}" / "report" / "report.json").read_text())


def test_rerun_after_kill_9_finishes_without_redoing_finished_steps(reproduced):
    out, result, steps, before = reproduced
    assert "seed 0: generate" not in steps and "seed 0: train PT+FT+DPO" not in steps
    assert {"seed 0: generate", "seed 0: train PT+FT+DPO"} <= set(result["resumed"])
    assert "seed 0: evaluate" in steps and "seed 1: train PT+FT+DPO" in steps  # what was left still ran
    assert _snapshot(out) == before  # markers, shards, the main run's log and model untouched
    assert (out / "report" / "report.md").is_file() and json.loads((out / "report" / "report.json").read_text())


def test_report_combines_the_seed_reports(reproduced):
    out, result, _, _ = reproduced
    r = json.loads((out / "report" / "report.json").read_text())
    for key in ("seeds", "whole", "paired_diff_vs_best_baseline", "sensitivity", "wall_seconds", "goal",
                "by_subset", "ablation", "order", "exposure_curve"):
        assert key in r, key
    assert r["seeds"] == [0, 1] and r["wall_seconds"] > 0
    assert r["software"]["torch"] == torch.__version__ and "Computed with: " in (out / "report" / "report.md").read_text()
    seeds = [_seed_report(out, s) for s in (0, 1)]
    assert set(r["whole"]) == set(seeds[0]["whole"])
    for method, metrics in r["whole"].items():
        for k in METRICS:
            vals = [s["whole"][method][k] for s in seeds]
            got = metrics[k]
            assert set(got) >= {"mean", "std", "lo", "hi"} and got["n"] == 2
            assert got["mean"] == pytest.approx(np.mean(vals)) and got["std"] == pytest.approx(np.std(vals, ddof=1))
            assert got["lo"] <= got["mean"] <= got["hi"] or got["std"] == 0
    # Table 3 and Fig. 7a combine the same way
    ft = [s["ablation"]["FT"]["ungated"]["em_acc"] for s in seeds]
    assert r["ablation"]["FT"]["ungated"]["em_acc"]["mean"] == pytest.approx(np.mean(ft))
    assert len(r["exposure_curve"]) == len(seeds[0]["exposure_curve"])
    # paired differences: per seed on that seed's contexts, pooled on all of them
    pd = r["paired_diff_vs_best_baseline"]
    assert pd["method"] == "PT+FT+DPO" and pd["baseline"] in ("Frequency", "Usual", "CGC", "GBDT", "Random")
    assert set(pd["per_seed"]) == {"0", "1"}
    exact = {m: np.concatenate([json.loads((out / f"seed-{s}" / "report" / "per_sample.json").read_text())[m]["exact"]
                                for s in (0, 1)]) for m in (pd["method"], pd["baseline"])}
    pooled = pd["pooled"]["em_acc"]
    assert pooled["diff"] == pytest.approx(exact[pd["method"]].mean() - exact[pd["baseline"]].mean())
    assert pooled["lo"] <= pooled["diff"] <= pooled["hi"]
    for s in ("0", "1"):
        assert set(pd["per_seed"][s]) == set(METRICS)
    for f in ("whole.png", "exposure_curve.png", "model_size.png", "context_length.png", "history_length.png"):
        assert (out / "report" / f).stat().st_size > 1000, f


def test_goal_verdicts_are_computed_from_the_means(reproduced):
    out, _, _, _ = reproduced
    r = json.loads((out / "report" / "report.json").read_text())
    md = (out / "report" / "report.md").read_text()
    mean = {m: {k: v[k]["mean"] for k in METRICS} for m, v in r["whole"].items()}
    beats = all(mean["PT+FT+DPO"][k] > mean["GBDT"][k] for k in METRICS)
    order = all(mean["FT"][k] < mean["PT+FT"][k] < mean["PT+FT+DPO"][k] for k in METRICS)
    assert r["goal"]["beats_gbdt"]["met"] is beats and r["goal"]["ablation_order"]["met"] is order
    verdict = {True: "**met**", False: "**not met**"}
    assert f"PT+FT+DPO beats GBDT on EM-Acc, LM-F1 and Rule (mean over seeds): {verdict[beats]}" in md
    assert f"FT < PT+FT < PT+FT+DPO in the mean over seeds, on every metric: {verdict[order]}" in md


def test_sensitivity_studies(reproduced):
    out, _, _, _ = reproduced
    sens = json.loads((out / "report" / "report.json").read_text())["sensitivity"]
    main = _seed_report(out, 0)["whole"]["PT+FT+DPO"]
    main_cfg = json.loads((out / "seed-0" / "runs" / "main" / "config.json").read_text())
    assert sens["seed"] == 0
    # history length at test: the same model, the prompts rebuilt with k operations; k = 8 is the seed's report
    hist = {row["history_k"]: row for row in sens["history_length"]["rows"]}
    assert list(hist) == [2, 4, 8, 16] and all(row["n"] == 16 for row in hist.values())
    assert {k: hist[8][k] for k in METRICS} == pytest.approx({k: main[k] for k in METRICS})
    # model size: tiny is the main run, small trained alike; base only with a GPU
    sizes = {row["preset"]: row for row in sens["model_size"]["rows"]}
    import torch

    gpu = torch.cuda.is_available()
    assert list(sizes) == (["tiny", "small", "base"] if gpu else ["tiny", "small"])
    if not gpu:
        assert "no GPU" in sens["model_size"]["skipped"]["base"]
    assert sizes["tiny"]["n_parameters"] == main_cfg["n_parameters"] < sizes["small"]["n_parameters"]
    assert {k: sizes["tiny"][k] for k in METRICS} == pytest.approx({k: main[k] for k in METRICS})
    small_cfg = json.loads((Path(sizes["small"]["run"]) / "config.json").read_text())
    assert small_cfg["preset"] == "small" and small_cfg["stages_run"] == ["pretrain", "sft", "dpo"]
    # training context: SFT and DPO on 4-operation windows from the main run's pre-trained model
    ctx = {row["history_k"]: row for row in sens["context_length"]["rows"]}
    assert list(ctx) == [4, 8] and ctx[8]["em_acc"] == pytest.approx(main["em_acc"])
    k4 = json.loads((Path(ctx[4]["run"]) / "config.json").read_text())
    assert k4["history_k"] == 4 and k4["stages_run"] == ["sft", "dpo"] and k4["base_model"].endswith("pretrain/final")
    md = (out / "report" / "report.md").read_text()
    assert "Fig. 7b shape" in md and "Fig. 7c shape" in md and "Fig. 7d shape" in md


def test_rerun_of_a_finished_reproduce_runs_only_the_report(reproduced):
    out, first, _, _ = reproduced
    steps: list[str] = []
    again = run(ReproduceConfig(out=out, **CONFIG), steps.append)
    assert steps == ["report"]
    assert again["report_dict"]["whole"] == first["report_dict"]["whole"]
    assert again["report_dict"]["sensitivity"] == first["report_dict"]["sensitivity"]


def test_no_sensitivity_leaves_the_studies_out(reproduced):  # last: it rewrites the shared report
    out, first, _, _ = reproduced
    steps: list[str] = []
    again = run(ReproduceConfig(out=out, **CONFIG, sensitivity=False), steps.append)
    r = json.loads((out / "report" / "report.json").read_text())
    assert steps == ["report"] and r["sensitivity"] is None
    assert r["whole"] == json.loads(json.dumps(first["report_dict"]["whole"]))  # the seeds' numbers unchanged
    assert "(not run: --no-sensitivity)" in again["report"].read_text()
