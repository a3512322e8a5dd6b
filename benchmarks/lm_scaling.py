"""Does a larger model, trained longer or on more data, learn what the prompt holds?

    python benchmarks/lm_scaling.py --data quickstart_out/data --out benchmarks/results \
        [--report quickstart_out/report/report.json] [--configs base-lora,base-full,small-lora,base-full-more-data]

Meant for a CUDA GPU (the ``base`` preset is 30M parameters; on 2 CPU cores a configuration takes
hours). Each configuration is trained with the one pipeline (``app.quickstart.train_and_calibrate``,
no calibration: the chosen answer does not depend on it) and scored by ``agent.evaluate.evaluate_model``
(candidate scoring, ungated) on the same ``--max-samples`` test contexts of ``--data`` as the
quickstart's report, so the baseline rows of ``--report`` (Frequency, Usual, CGC, GBDT and the
quickstart's own tiny PT+FT+DPO) compare like for like when its seed and sample size match.

Configurations (``CONFIGS``):
- ``base-lora``: the ``base`` model with the paper's SFT (LoRA r=16, 2 epochs at 4e-4);
- ``base-full``: the ``base`` preset as it stands (every weight fine-tuned, 4 SFT epochs at 1e-3);
- ``small-lora``: the ``small`` preset as it stands;
- ``base-full-more-data``: ``base``, every weight, one epoch at 1e-3 over up to 20,000 SFT rows of a
  larger dataset generated here with the same seed and preset, ``--more-homes`` homes and every
  train-period operation a row (``sft_rate`` 1.0); its first homes are ``--data``'s, so the test
  contexts are the same; pre-training and SFT only (PT+FT).

Writes ``lm_scaling.json`` (per configuration: EM-Acc, LM-F1, Rule with 95% intervals, answer
diversity, parameters, seconds, last logged loss of each stage; PT+FT beside PT+FT+DPO) and
``lm_scaling.md``. A configuration that fails is recorded with its error and the rest still run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from pathlib import Path

import torch

from sim.dataset.shards import write_text_atomic

METRICS = ("em_acc", "lm_f1", "rule", "n", "ci95", "distinct_per_100", "top_answer_share", "top_answer")
BASELINES = ("Frequency", "Usual", "CGC", "GBDT", "PT+FT+DPO")
# name -> (model preset, TrainConfig overrides, stages, trained on the larger dataset)
CONFIGS: dict[str, tuple[str, dict, tuple[str, ...], bool]] = {
    "base-lora": ("base", {"full_finetune": False, "sft_epochs": 2, "sft_lr": 4e-4}, ("pretrain", "sft", "dpo"), False),
    "base-full": ("base", {"full_finetune": True, "sft_epochs": 4, "sft_lr": 1e-3}, ("pretrain", "sft", "dpo"), False),
    "small-lora": ("small", {}, ("pretrain", "sft", "dpo"), False),
    "base-full-more-data": ("base", {"full_finetune": True, "sft_epochs": 1, "sft_lr": 1e-3, "sft_max_rows": 20000},
                            ("pretrain", "sft"), True),
}


def more_data(data: Path, out: Path, homes: int) -> Path:
    """The larger dataset: ``data``'s generator config with ``homes`` homes and every operation a row."""
    from dataclasses import fields
    from datetime import date

    from sim.dataset.build import DatasetConfig, build
    from sim.dataset.files import read_rows

    gen = data / ".shards" / "generation.json"
    if not gen.is_file():
        raise ValueError(f"{gen} is missing: --data must be a dataset written by homepilot generate")
    have = json.loads(gen.read_text())
    if homes < int(have["homes"]):
        raise ValueError(f"--more-homes {homes} is fewer than the {have['homes']} homes of {data}")
    keep = {f.name for f in fields(DatasetConfig)} - {"out", "homes", "sft_rate", "start"}
    cfg = DatasetConfig(out=out, homes=homes, sft_rate=1.0, start=date.fromisoformat(have["start"]),
                        **{k: v for k, v in have.items() if k in keep})
    build(cfg)  # resumes a finished generation of the same config
    mine = {r["prompt"] for r in read_rows(data, "sft", "test", columns=["prompt"])}
    theirs = {r["prompt"] for r in read_rows(out, "sft", "test", columns=["prompt"])}
    if not mine <= theirs:
        raise ValueError(f"the larger dataset in {out} does not hold {data}'s test contexts: "
                         f"{len(mine - theirs)} of {len(mine)} are missing (another generator version?)")
    return out


def last_losses(run: Path) -> dict[str, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return {r["stage"]: round(r["loss"], 3) for r in rows}  # the last line of each stage wins


def run_config(name: str, data: Path, work: Path, seed: int, max_samples: int, homes: int) -> dict:
    from agent.evaluate import evaluate_model
    from app.quickstart import train_and_calibrate

    preset, overrides, stages, bigger = CONFIGS[name]
    train_data = more_data(data, work / "more_data", homes) if bigger else data
    run = work / name
    t0 = time.perf_counter()
    info = train_and_calibrate(train_data, run, preset, seed, overrides, None, calibrate=False, stages=stages)
    row: dict = {"preset": preset, "overrides": overrides, "stages": list(stages), "n_parameters": info["n_parameters"],
                 "train_rows_from": str(train_data), "train_seconds": round(time.perf_counter() - t0, 1),
                 "last_loss": last_losses(run)}
    for label, stage in (("PT+FT+DPO", "dpo"), ("PT+FT", "sft")):
        if (run / stage / "final").is_dir():
            m = evaluate_model(data, run / stage / "final", max_samples=max_samples, seed=seed)
            row[label] = {k: m[k] for k in METRICS}
    return row


def baselines(report: Path | None, seed: int, max_samples: int) -> dict:
    if report is None:
        return {}
    r = json.loads(report.read_text())
    seeds = r.get("seeds") or {}
    if r.get("n_samples") != max_samples or seeds.get("evaluation") != seed or seeds.get("dataset") != seed:
        raise ValueError(f"{report} scored {r.get('n_samples')} contexts of seed(s) {r.get('seeds')}; "
                         f"this run scores {max_samples} of seed {seed}: the rows would not compare")
    return {k: {m: r["whole"][k][m] for m in ("em_acc", "lm_f1", "rule")} for k in BASELINES if k in r["whole"]}


def write_md(res: dict, path: Path) -> None:
    lines = ["# LM scaling", "", f"Device: {res['device']}; dataset {res['data']}; seed {res['seed']}; "
             f"{res['max_samples']} test contexts, candidate scoring, ungated.", "",
             "| method | params | EM-Acc [95%] | LM-F1 | Rule | distinct / 100 | top answer | train s |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in res["configs"].items():
        if "error" in row:
            lines.append(f"| {name} | – | failed: {row['error'].strip().splitlines()[-1]} | | | | | |")
            continue
        for label in ("PT+FT+DPO", "PT+FT"):
            if label in row:
                m = row[label]
                ci = m.get("ci95", {}).get("em_acc")
                em = f"{m['em_acc']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
                lines.append(f"| {name} {label} | {row['n_parameters'] / 1e6:.1f}M | {em} | "
                             f"{m['lm_f1']:.3f} | {m['rule']:.3f} | {m['distinct_per_100']:.1f} | "
                             f"{m['top_answer_share']:.2f} | {row['train_seconds']:.0f} |")
    for name, m in res["baselines"].items():
        name = "the quickstart's tiny PT+FT+DPO" if name == "PT+FT+DPO" else name
        lines.append(f"| {name} (from the report) | | {m['em_acc']:.3f} | {m['lm_f1']:.3f} | {m['rule']:.3f} | | | |")
    write_text_atomic("\n".join(lines) + "\n", path)


def main(args: argparse.Namespace) -> dict:
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        raise SystemExit(f"unknown configuration(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    res = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.processor()})",
           "data": str(args.data), "seed": args.seed, "max_samples": args.max_samples,
           "baselines": baselines(args.report, args.seed, args.max_samples), "configs": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for name in names:
        print(f"lm_scaling: {name} ...", flush=True)
        try:
            res["configs"][name] = run_config(name, args.data, args.work, args.seed, args.max_samples, args.more_homes)
        except Exception:  # one failed configuration must not lose the others
            res["configs"][name] = {"error": traceback.format_exc()[-2000:]}
        print(f"lm_scaling: {name}: {json.dumps(res['configs'][name])[:300]}", flush=True)
        write_text_atomic(json.dumps(res, indent=2), args.out / "lm_scaling.json")
        write_md(res, args.out / "lm_scaling.md")
    return res


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a generated dataset (its test contexts are scored)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--work", type=Path, default=Path("lm_scaling_work"), help="runs and the larger dataset")
    p.add_argument("--report", type=Path, default=None, help="the quickstart's report.json: its baseline rows")
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-samples", type=int, default=600)
    p.add_argument("--more-homes", type=int, default=160)
    return p.parse_args(argv)


if __name__ == "__main__":
    main(parse())
