"""``homepilot quickstart``: the whole pipeline on 2 CPU cores, end to end.

generate (quickstart preset) -> train PT+FT+DPO (action-first) -> train FT only (the ablation's
first row) -> train text-first (SFT+DPO on the same pre-trained model, Table 4); each run is then
calibrated on the held-out validation prompts (``agent.calibrate``) -> evaluate every model and
baseline -> report. Every step resumes: a re-run skips finished shards and stages.

Layout of ``OUT``::

    OUT/data/            the dataset (Hugging Face-ready)
    OUT/runs/main/       PT+FT+DPO run (its pretrain/final and sft/final are the Base LM and PT+FT rows)
    OUT/runs/ft_only/    FT only
    OUT/runs/text_first/ text-first SFT+DPO from runs/main/pretrain/final
    OUT/report/          report.md, report.json, PNG plots
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from training.runtime import ProgressFn


@dataclass
class QuickstartConfig:
    """Options of ``homepilot quickstart``."""

    out: Path = Path("quickstart_out")  # everything goes under this folder
    data_preset: str = "quickstart"  # dataset preset (tiny for a smoke run)
    model_preset: str = "tiny"  # model preset of every run
    seed: int = 0  # dataset, model init and evaluation seed
    workers: int = 2  # dataset generation processes
    max_samples: int | None = 600  # test contexts evaluated (seeded subsample)
    train_overrides: dict | None = None  # extra TrainConfig fields (tests shrink the runs)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


def _train(data: Path, out: Path, cfg: QuickstartConfig, progress: ProgressFn | None, **kw) -> dict:
    from agent.calibrate import calibrate_run
    from training.pipeline import TrainConfig
    from training.pipeline import main as train_main

    tc = TrainConfig(data=data, out=out, preset=cfg.model_preset, seed=cfg.seed, resume=out.exists(),
                     **{**(cfg.train_overrides or {}), **kw})
    info = train_main(tc, progress)
    info["calibration"] = calibrate_run(out, data)  # held-out prompts: confidence temperature, collapse check
    return info


def run(cfg: QuickstartConfig, step: Callable[[str], None] = lambda _s: None,
        progress: ProgressFn | None = None) -> dict:
    """Run every step; ``step(name)`` announces a step, ``progress`` follows training.

    Returns {"report": path, "seconds": {step: s}, "report_dict": the evaluation report}.
    """
    from agent.evaluate import EvaluateConfig, evaluate
    from agent.report import write_report
    from sim import outdir
    from sim.dataset.build import DatasetConfig, build

    seconds: dict[str, float] = {}
    outdir.claim(cfg.out, "quickstart", ("data", "runs", "report"))  # each step claims its own folder too
    data, runs = cfg.out / "data", cfg.out / "runs"

    def timed(name: str, fn: Callable[[], object]) -> object:
        step(name)
        t0 = time.perf_counter()
        out = fn()
        seconds[name] = round(time.perf_counter() - t0, 1)
        return out

    timed("generate", lambda: build(DatasetConfig(out=str(data), preset=cfg.data_preset, seed=cfg.seed,
                                                  workers=cfg.workers)))
    timed("train PT+FT+DPO", lambda: _train(data, runs / "main", cfg, progress))
    timed("train FT only", lambda: _train(data, runs / "ft_only", cfg, progress, stages=("sft",)))
    timed("train text-first", lambda: _train(data, runs / "text_first", cfg, progress, stages=("sft", "dpo"),
                                              order="text-first", base_model=runs / "main" / "pretrain" / "final"))
    ecfg = EvaluateConfig(data=data, runs=[runs / "main", runs / "ft_only", runs / "text_first"],
                          out=cfg.out / "report", max_samples=cfg.max_samples, seed=cfg.seed,
                          compare_samples=100)  # greedy and beam on 100 contexts: beam costs ~0.2 s each
    report = timed("evaluate", lambda: evaluate(ecfg, lambda m: step(f"evaluate: {m}")))
    report["quickstart_seconds"] = seconds
    report["wall_seconds"] = round(sum(seconds.values()), 1)
    path = write_report(report, ecfg.out)
    return {"report": path, "seconds": seconds, "report_dict": report}
