"""``homepilot quickstart``: the whole pipeline on 2 CPU cores, end to end.

generate (quickstart preset) -> train PT+FT+DPO (action-first; its pre-trained and SFT checkpoints
are the Base LM and PT+FT rows) -> with ``ablations``, also train FT only (the ablation's first row)
and text-first (SFT+DPO on the same pre-trained model, Table 4); each run is then calibrated on the
held-out validation prompts (``agent.calibrate``) -> evaluate every model and baseline -> report.
``homepilot reproduce`` (``app.reproduce``) runs this once per seed, ablations included.

Why the ablations are not the default: they are half the quickstart's time (FT only 172 s and
text-first 364 s of 1,095 s on a 2-core AVX2 box, 2026-12-01, where the whole ``make quickstart``
took 20.5 minutes), and none of them is what a user runs or the demo shows; without them the
quickstart fits its 15 minutes on that box too. Training is the same either way: the main run comes
first and is the same model, so its figures do not depend on the flag.

Every step resumes (``Steps``): a step that finished with the same options is not run again (its
marker in ``OUT/.steps/`` holds its result), and a step killed part-way resumes from its own files
(finished shards, finished stages and the last checkpoint of a training run).

Layout of ``OUT``::

    OUT/data/            the dataset (Hugging Face-ready)
    OUT/runs/main/       PT+FT+DPO run (its pretrain/final and sft/final are the Base LM and PT+FT rows)
    OUT/runs/ft_only/    FT only (ablations)
    OUT/runs/text_first/ text-first SFT+DPO from runs/main/pretrain/final (ablations)
    OUT/report/          report.md, report.json, PNG plots
    OUT/.steps/          one marker per finished step
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.runtime import ProgressFn

STEPS_DIR = ".steps"


def _jsonable(x: Any) -> Any:
    """``x`` as it reads back from JSON (Paths as strings, tuples as lists), to compare options."""
    return json.loads(json.dumps(x, default=str))


class Steps:
    """The named steps of a resumable job rooted at ``root``.

    ``steps(name, fn, options, outputs)`` runs ``fn()`` unless ``root/.steps/<name>.json`` says the
    step finished with the same ``options`` and every path in ``outputs`` exists; then it returns
    the result recorded there (as JSON gives it back) without running anything. The marker
    (``{name, options, seconds, result}``) is written atomically after ``fn`` returns, so a job
    killed part-way (``kill -9``) left none for the step it was in: that step runs again and
    resumes from its own files. A step whose options changed runs again too; the tools it calls
    refuse outputs made with other options (``sim.outdir``, ``homepilot train --resume``).

    ``seconds``: step -> seconds it took (the recorded time for a resumed step); ``resumed``: the
    steps that were not run again.
    """

    def __init__(self, root: str | Path, announce: Callable[[str], None] = lambda _s: None) -> None:
        self.root = Path(root)
        self.announce = announce
        self.seconds: dict[str, float] = {}
        self.resumed: list[str] = []

    def marker(self, name: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
        return self.root / STEPS_DIR / f"{slug}.json"

    def done(self, name: str, options: Any = None, outputs: Sequence[str | Path] = ()) -> dict | None:
        """The marker of a finished step with these options and outputs, else None."""
        path = self.marker(name)
        try:
            have = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(have, dict) or have.get("options") != _jsonable(options):
            return None
        if not all(Path(p).exists() for p in outputs):
            return None
        return have

    def __call__(self, name: str, fn: Callable[[], Any], options: Any = None,
                 outputs: Sequence[str | Path] = ()) -> Any:
        have = self.done(name, options, outputs)
        if have is not None:
            self.seconds[name] = float(have.get("seconds", 0.0))
            self.resumed.append(name)
            return have.get("result")
        self.announce(name)
        t0 = time.perf_counter()
        result = fn()
        self.seconds[name] = round(time.perf_counter() - t0, 1)
        path = self.marker(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"name": name, "options": _jsonable(options), "seconds": self.seconds[name],
                                   "result": _jsonable(result)}, indent=1))
        os.replace(tmp, path)
        return result


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
    prompted_model: Path | None = None  # a local Hugging Face causal LM scored zero-shot ("Prompted LM" row)
    compare_searches: bool = True  # also run the main model with greedy and beam search on 100 contexts
    ablations: bool = False  # also train FT only and text-first (Table 3's FT row, Table 4): ~2x the time

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.prompted_model = Path(self.prompted_model) if self.prompted_model else None
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")


def train_and_calibrate(data: Path, out: Path, model_preset: str, seed: int, overrides: dict | None,
                        progress: ProgressFn | None, calibrate: bool = True, **kw) -> dict:
    """One training run into ``out`` (resumed when it exists), then its confidence calibration on the
    held-out prompts (``agent.calibrate``; ``calibrate=False``: left out, as for runs whose
    confidence nothing reads). Returns the run's info (``training.pipeline.main``)."""
    from agent.calibrate import calibrate_run
    from training.pipeline import TrainConfig
    from training.pipeline import main as train_main

    tc = TrainConfig(data=data, out=out, preset=model_preset, seed=seed, resume=out.exists(),
                     **{**(overrides or {}), **kw})
    info = train_main(tc, progress)
    if calibrate:
        info["calibration"] = calibrate_run(out, data)  # held-out prompts: confidence calibration, collapse check
    return info


RUNS: tuple[tuple[str, str, dict], ...] = (  # (step, run folder, TrainConfig fields beyond the preset's)
    ("train PT+FT+DPO", "main", {}),
    # the ablations (QuickstartConfig.ablations)
    ("train FT only", "ft_only", {"stages": ("sft",)}),
    ("train text-first", "text_first", {"stages": ("sft", "dpo"), "order": "text-first"}),
)


def run(cfg: QuickstartConfig, step: Callable[[str], None] = lambda _s: None,
        progress: ProgressFn | None = None) -> dict:
    """Run every step; ``step(name)`` announces a step that runs, ``progress`` follows training.

    Returns {"report": path, "seconds": {step: s}, "resumed": [steps not run again],
    "report_dict": the evaluation report as report.json holds it (NaN as None)}.
    """
    from agent.evaluate import EvaluateConfig, evaluate
    from agent.report import write_report
    from sim import outdir
    from sim.dataset.build import DatasetConfig, build

    outdir.claim(cfg.out, "quickstart", ("data", "runs", "report", STEPS_DIR))  # each step claims its own folder too
    data, runs = cfg.out / "data", cfg.out / "runs"
    steps = Steps(cfg.out, step)
    train_opts = {"data_preset": cfg.data_preset, "model_preset": cfg.model_preset, "seed": cfg.seed,
                  "train_overrides": cfg.train_overrides}

    steps("generate", lambda: build(DatasetConfig(out=str(data), preset=cfg.data_preset, seed=cfg.seed,
                                                  workers=cfg.workers)).rows,
          {"data_preset": cfg.data_preset, "seed": cfg.seed}, [data])
    todo = RUNS if cfg.ablations else RUNS[:1]
    for name, folder, kw in todo:
        opts = {**train_opts, **kw}
        if "order" in kw:  # text-first SFT+DPO starts from the main run's pre-trained model
            kw = {**kw, "base_model": runs / "main" / "pretrain" / "final"}
        steps(name, lambda f=folder, kw=kw: train_and_calibrate(data, runs / f, cfg.model_preset, cfg.seed,
                                                                 cfg.train_overrides, progress, **kw),
              opts, [runs / folder / "model"])
    ecfg = EvaluateConfig(data=data, runs=[runs / f for _, f, _ in todo], out=cfg.out / "report",
                          max_samples=cfg.max_samples, seed=cfg.seed, prompted_model=cfg.prompted_model,
                          compare_searches=("greedy", "beam") if cfg.compare_searches else (),
                          compare_samples=100)  # greedy and beam on 100 contexts: beam costs ~0.2 s each

    def evaluate_and_report() -> str:
        t0 = time.perf_counter()
        report = evaluate(ecfg, lambda m: step(f"evaluate: {m}"))
        report["quickstart_seconds"] = {**steps.seconds, "evaluate": round(time.perf_counter() - t0, 1)}
        report["wall_seconds"] = round(sum(report["quickstart_seconds"].values()), 1)
        return str(write_report(report, ecfg.out))

    # the methods are options too: a report from before a baseline was added is made again
    eval_opts = {**train_opts, "max_samples": cfg.max_samples, "prompted_model": cfg.prompted_model,
                 "compare_searches": cfg.compare_searches, "baselines": list(ecfg.baselines),
                 "runs": [f for _, f, _ in todo]}
    outputs = [ecfg.out / f for f in ("report.json", "report.md", "per_sample.json")]
    steps("evaluate", evaluate_and_report, eval_opts, outputs)
    report = json.loads((ecfg.out / "report.json").read_text())
    return {"report": ecfg.out / "report.md", "seconds": steps.seconds, "resumed": steps.resumed,
            "report_dict": report}
