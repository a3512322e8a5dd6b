"""``homepilot reproduce``: the paper's experiments over several seeds, with sensitivity studies.

Per seed K, the whole quickstart (``app.quickstart.run`` into ``OUT/seed-K/``): a dataset generated
with seed K, the PT+FT+DPO, FT and text-first runs (their pre-trained and SFT models are the Base LM
and PT+FT rows), every baseline (Frequency, Usual, CGC, GBDT, Random, the Oracle; a Prompted LM with
``prompted_model``), calibration and the per-seed report. Then, on the first seed only, the
sensitivity studies (paper Fig. 7b-d), each a PT+FT+DPO model scored ungated on the same test
contexts (``agent.evaluate.evaluate_model``):

- model size: the same training at each preset of ``model_sizes`` (``base`` only where a GPU is
  present: on a CPU it is skipped and the report says so);
- training context: SFT and DPO prompts holding a history window of k operations at training
  (``TrainConfig.history_k``), from the main run's pre-trained model, scored with that window;
- history length at test: the seed's main PT+FT+DPO model scored with k operations in its prompts
  (``sim.prompts.rewindow``).

Sensitivity runs are not calibrated: the studies report ungated metrics, and calibration changes
only the confidence, never which candidate is chosen. Finally one report (``agent.report.
combine_reports``): mean ± std and 95% t-intervals over seeds for Tables 2-4 and Fig. 7a, the
main model against the best baseline per seed and pooled, and the goal verdicts.

Layout of ``OUT``::

    OUT/seed-K/                             a quickstart folder per seed
    OUT/sensitivity/model_size/<preset>/    training runs of the model-size study
    OUT/sensitivity/context_length/k<k>/    training runs of the training-context study
    OUT/report/                             report.md, report.json, PNG plots
    OUT/.steps/                             markers of the finished sensitivity steps

Every step resumes (``app.quickstart.Steps``): a re-run, also after ``kill -9``, skips finished
seeds and steps and continues the one it was in from its files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from app.quickstart import STEPS_DIR, QuickstartConfig, Steps, train_and_calibrate
from app.quickstart import run as quickstart
from sim.prompts import HISTORY_K
from training.runtime import ProgressFn, software

NO_GPU = ("no GPU here: the base preset (~30M parameters) is meant for one; run reproduce on a machine with a "
          "CUDA GPU to include it")


def _ints(x: str | tuple[int, ...] | list[int], what: str) -> tuple[int, ...]:
    if isinstance(x, str):
        try:
            x = [int(v) for v in x.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"{what} must be comma-separated integers, got {x!r}") from None
    return tuple(int(v) for v in x)


@dataclass
class ReproduceConfig:
    """Options of ``homepilot reproduce``."""

    out: Path = Path("reproduce_out")  # everything goes under this folder
    seeds: tuple[int, ...] = (0, 1, 2)  # one dataset, training and evaluation per seed ("0,1,2" accepted)
    data_preset: str = "quickstart"  # dataset preset of every seed (paper: the paper's sizes, GPU-sized)
    model_preset: str = "tiny"  # model preset of every seed's runs
    max_samples: int | None = 600  # test contexts evaluated per seed (seeded subsample; None = all)
    workers: int = 2  # dataset generation processes
    sensitivity: bool = True  # run the Fig. 7b-d studies on the first seed
    prompted_model: Path | None = None  # a local causal LM scored zero-shot ("Prompted LM" row)
    model_sizes: tuple[str, ...] = ("tiny", "small", "base")  # model-size study ("base" needs a GPU)
    train_windows: tuple[int, ...] = (4, HISTORY_K)  # history windows at training (context study)
    test_windows: tuple[int, ...] = (2, 4, 8, 16)  # history windows at test (one model)
    compare_searches: bool = False  # also time greedy and beam search per seed (not in the tables)
    n_boot: int = 1000  # paired bootstrap resamples (per seed and pooled)
    train_overrides: dict | None = None  # extra TrainConfig fields of every run (tests shrink the runs)

    def __post_init__(self) -> None:
        from sim.dataset.build import PRESETS as DATA_PRESETS
        from training.models import PRESETS as MODEL_PRESETS

        self.out = Path(self.out)
        self.prompted_model = Path(self.prompted_model) if self.prompted_model else None
        self.seeds = _ints(self.seeds, "seeds")
        self.train_windows, self.test_windows = _ints(self.train_windows, "train_windows"), _ints(self.test_windows, "test_windows")
        self.model_sizes = tuple(self.model_sizes)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct integers >= 0, at least one, got {self.seeds}")
        if self.data_preset not in DATA_PRESETS:
            raise ValueError(f"data_preset must be one of {', '.join(DATA_PRESETS)}, got {self.data_preset!r}")
        for p in (self.model_preset, *self.model_sizes):
            if p not in MODEL_PRESETS:
                raise ValueError(f"model presets must be among {', '.join(MODEL_PRESETS)}, got {p!r}")
        if min((*self.train_windows, *self.test_windows), default=1) < 1:
            raise ValueError("history windows must be >= 1")
        if self.max_samples is not None and self.max_samples < 1:
            raise ValueError(f"max_samples must be >= 1 or None, got {self.max_samples}")
        if self.workers < 1 or self.n_boot < 1:
            raise ValueError(f"workers and n_boot must be >= 1, got {self.workers}, {self.n_boot}")

    def seed_config(self, seed: int) -> QuickstartConfig:
        return QuickstartConfig(out=self.out / f"seed-{seed}", data_preset=self.data_preset,
                                model_preset=self.model_preset, seed=seed, workers=self.workers,
                                max_samples=self.max_samples, train_overrides=self.train_overrides,
                                prompted_model=self.prompted_model, compare_searches=self.compare_searches,
                                ablations=True)


def _gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def sensitivity(cfg: ReproduceConfig, steps: Steps, progress: ProgressFn | None = None) -> dict:
    """The Fig. 7b-d studies on the first seed (module docstring); each trained model or scored
    window is one resumable step."""
    from agent.evaluate import evaluate_model

    seed = cfg.seeds[0]
    data = cfg.out / f"seed-{seed}" / "data"
    main = cfg.out / f"seed-{seed}" / "runs" / "main"
    home = cfg.out / "sensitivity"
    opts = {"seed": seed, "data_preset": cfg.data_preset, "model_preset": cfg.model_preset,
            "max_samples": cfg.max_samples, "train_overrides": cfg.train_overrides}

    def score(model_dir: Path, k: int) -> dict:
        return evaluate_model(data, model_dir, history_k=k, max_samples=cfg.max_samples, seed=seed)

    def train(out: Path, preset: str, **kw) -> dict:
        return train_and_calibrate(data, out, preset, seed, cfg.train_overrides, progress, calibrate=False, **kw)

    at = {k: steps(f"sensitivity: main model, history {k} at test", lambda k=k: score(main / "dpo" / "final", k),
                   {**opts, "history_k": k})
          for k in sorted({*cfg.test_windows, HISTORY_K})}
    n_main = json.loads((main / "config.json").read_text())["n_parameters"]

    def size_row(preset: str) -> dict:
        run = home / "model_size" / preset
        info = train(run, preset)
        return {"preset": preset, "n_parameters": info["n_parameters"], "run": str(run),
                **score(run / "dpo" / "final", HISTORY_K)}

    sizes: dict = {"rows": [], "skipped": {}, "note": (
        f"PT+FT+DPO trained at each model preset on seed {seed}'s dataset with the same options, scored on the "
        f"same {cfg.max_samples or 'all'} test contexts with {HISTORY_K} operations of history.")}
    for preset in cfg.model_sizes:
        if preset == cfg.model_preset:
            sizes["rows"].append({"preset": preset, "n_parameters": n_main, "run": str(main), **at[HISTORY_K]})
        elif preset == "base" and not _gpu():
            sizes["skipped"][preset] = NO_GPU
        else:
            sizes["rows"].append(steps(f"sensitivity: model size {preset}", lambda p=preset: size_row(p),
                                       {**opts, "preset": preset}))

    def window_row(k: int) -> dict:
        run = home / "context_length" / f"k{k}"
        train(run, cfg.model_preset, stages=("sft", "dpo"), base_model=main / "pretrain" / "final", history_k=k)
        return {"run": str(run), **score(run / "dpo" / "final", k)}

    context: dict = {"rows": [], "note": (
        f"PT+FT+DPO whose SFT and DPO prompts held k operations of history (from seed {seed}'s pre-trained "
        f"model; k = {HISTORY_K} is the main run, trained on the prompts as stored), each scored with its own k.")}
    for k in sorted(set(cfg.train_windows)):
        context["rows"].append({"run": str(main), **at[k]} if k == HISTORY_K and k in at else
                               steps(f"sensitivity: history window {k} at training", lambda k=k: window_row(k),
                                     {**opts, "history_k": k}))
    history = {"rows": [at[k] for k in sorted(set(cfg.test_windows))], "note": (
        f"One model, seed {seed}'s PT+FT+DPO (trained with {HISTORY_K} operations of history), scored with k "
        "operations in every test prompt (the prompts rebuilt from the dataset's logged operations).")}
    return {"seed": seed, "model_size": sizes, "context_length": context, "history_length": history,
            "note": "Ungated EM-Acc, LM-F1 and Rule with 95% bootstrap intervals over the test contexts. The studies' "
                    "runs are not calibrated: calibration changes the confidence, never the chosen answer."}


def run(cfg: ReproduceConfig, step: Callable[[str], None] = lambda _s: None,
        progress: ProgressFn | None = None) -> dict:
    """Every seed, the sensitivity studies, the combined report. ``step(name)`` announces each step
    that runs (seed steps as ``"seed K: <step>"``). Returns {"report": path, "report_dict": the
    combined report, "seconds": {step: s}, "resumed": [steps not run again]}."""
    from agent.evaluate import BASELINES, PROMPTED
    from agent.report import combine_reports, write_reproduce_report
    from sim import outdir

    outdir.claim(cfg.out, "reproduce", (*(f"seed-{s}" for s in cfg.seeds), "sensitivity", "report", STEPS_DIR))
    seconds: dict[str, float] = {}
    resumed: list[str] = []
    reports, scores, paths = {}, {}, {}
    for s in cfg.seeds:
        qs = cfg.seed_config(s)
        got = quickstart(qs, lambda m, s=s: step(f"seed {s}: {m}"), progress)
        reports[s] = got["report_dict"]
        scores[s] = json.loads((qs.out / "report" / "per_sample.json").read_text())
        paths[s] = str(Path(f"seed-{s}") / "report" / "report.md")
        seconds.update({f"seed {s}: {k}": v for k, v in got["seconds"].items()})
        resumed += [f"seed {s}: {k}" for k in got["resumed"]]
    steps = Steps(cfg.out, step)
    sens = sensitivity(cfg, steps, progress) if cfg.sensitivity else None
    seconds.update(steps.seconds)
    resumed += steps.resumed
    step("report")
    t0 = time.perf_counter()
    report = combine_reports(reports, scores, (*BASELINES, PROMPTED), cfg.n_boot, cfg.seeds[0])
    report["sensitivity"] = sens
    report["per_seed_reports"] = paths
    report["software"] = software()
    report["config"] = json.loads(json.dumps(asdict(cfg), default=str))
    report["config_line"] = (f"data preset {cfg.data_preset}, model preset {cfg.model_preset}, "
                             f"{cfg.max_samples or 'all'} test contexts per seed")
    seconds["report"] = round(time.perf_counter() - t0, 1)
    report["seconds"] = seconds
    report["resumed"] = resumed
    report["wall_seconds"] = round(sum(seconds.values()), 1)
    path = write_reproduce_report(report, cfg.out / "report")
    return {"report": path, "report_dict": report, "seconds": seconds, "resumed": resumed}
