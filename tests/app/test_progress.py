"""Plain progress lines for output that is not a terminal (``homepilot train ... > log.txt``)."""

from __future__ import annotations

import io
import json

from app.progress import LineProgress


def test_lines_at_start_every_interval_and_end(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps({"stage": "sft", "step": 10, "loss": 1.25}) + "\n")
    now = [0.0]
    out = io.StringIO()
    p = LineProgress("train", out=out, metrics=metrics, every_s=30.0, clock=lambda: now[0])
    p("sft", 1, 100)
    for step, t in ((10, 10.0), (20, 29.0), (30, 31.0), (60, 50.0), (100, 70.0)):
        now[0] = t
        p("sft", step, 100)
    lines = out.getvalue().splitlines()
    assert lines == ["[train] sft: started, 100 steps",
                     "[train] sft: step 30/100 (30%), loss 1.250, 31s elapsed, ETA 1m12s",
                     "[train] sft: step 100/100 (100%), loss 1.250, 1m10s elapsed - done"]


def test_the_same_stage_of_the_next_run_starts_anew():
    now = [0.0]
    out = io.StringIO()
    p = LineProgress("quickstart", out=out, every_s=30.0, clock=lambda: now[0])
    for step, t in ((1, 0.0), (10, 10.0)):
        now[0] = t
        p("sft", step, 10)
    now[0] = 100.0
    p("sft", 1, 20)  # the next run's SFT
    assert out.getvalue().splitlines()[-1] == "[quickstart] sft: started, 20 steps"
