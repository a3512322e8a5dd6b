"""Same seed, same machine -> the same dataset and the same report, whatever Python's string-hash
seed: generate (2 workers), train (pre-training, SFT, DPO, calibration) and evaluate (every
baseline, CGC and GBDT included) run twice in separate processes with different
``PYTHONHASHSEED``; the dataset files are byte-identical and the reports' numbers equal.
Runs are shrunk as in ``test_quickstart`` (a few optimizer steps): this pins determinism, not quality."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from pathlib import Path
from agent.calibrate import calibrate_run
from agent.evaluate import EvaluateConfig, evaluate
from sim.dataset.build import DatasetConfig, build
from tests.app.test_quickstart import TINY_TRAIN
from training.pipeline import TrainConfig, main as train

out = Path(sys.argv[1])
build(DatasetConfig(out=str(out / "data"), preset="tiny", seed=0, workers=2))
train(TrainConfig(data=out / "data", out=out / "run", preset="tiny", seed=0, **TINY_TRAIN))
calibrate_run(out / "run", out / "data")
report = evaluate(EvaluateConfig(data=out / "data", runs=[out / "run"], out=out / "report", max_samples=24,
                                 n_boot=50, compare_searches=()))
keys = ("whole", "by_subset", "by_split", "diversity", "gate_at_0_7", "failures", "paired_diff_vs_best_baseline")
(out / "numbers.json").write_text(json.dumps({k: report.get(k) for k in keys}, sort_keys=True, default=str))
"""


def _run(out: Path, hash_seed: str) -> tuple[dict[str, str], str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    files = {str(p.relative_to(out / "data")): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted((out / "data").rglob("*")) if p.is_file()}
    return files, (out / "numbers.json").read_text()  # compared as text: NaN equals NaN there


@pytest.mark.timeout(900)
def test_same_seed_same_report_across_hash_seeds(tmp_path):
    files_a, numbers_a = _run(tmp_path / "a", "1")
    files_b, numbers_b = _run(tmp_path / "b", "2")
    assert files_a == files_b
    assert json.loads(numbers_a)["whole"] and numbers_a == numbers_b
