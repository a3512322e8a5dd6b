"""The ``homepilot`` command line: thin typer wrappers that parse options and call ``main(config)``
of the package that does the work (sim, training, agent, app).
"""

from __future__ import annotations

from enum import Enum

import typer


# Options with fixed choices: typer lists them in --help and rejects others naming the option
# ("Invalid value for '--preset': 'huge' is not one of ..."). tests/app/test_cli.py checks that
# each enum matches the constants of the package that owns the choice.
class DataPreset(str, Enum):
    tiny = "tiny"
    quickstart = "quickstart"
    paper = "paper"


class ModelPreset(str, Enum):
    tiny = "tiny"
    small = "small"
    base = "base"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class Order(str, Enum):
    action_first = "action-first"
    text_first = "text-first"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class ReplayMode(str, Enum):
    replay = "replay"
    live = "live"


class ReportFormat(str, Enum):
    report = "report"
    ha = "ha"


class Split(str, Enum):
    test = "test"
    test_unseen = "test_unseen"
    train = "train"


app = typer.Typer(
    name="homepilot",
    help="HomePilot: smart-home operation recommendation on a simulated home (after DevPiolt, 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

@app.command()
def generate(
    out: str = typer.Option(..., help="dataset directory (README.md + data/<config>/<split>-*.parquet)"),
    preset: DataPreset = typer.Option(DataPreset.tiny, help="dataset size preset"),
    seed: int = typer.Option(0, help="global seed"),
    homes: int | None = typer.Option(None, help="number of homes (default: the preset's)"),
    days: int | None = typer.Option(None, help="simulated days per home (default: the preset's)"),
    workers: int = typer.Option(2, help="worker processes / ray CPUs (the output does not depend on it)"),
    engine: Engine = typer.Option(Engine.local, help="local (process pool) | ray"),
    overwrite: bool = typer.Option(False, help="replace a dataset generated with another config (deletes only "
                                               "the files HomePilot wrote there)"),
    json_out: bool = typer.Option(False, "--json", help="print the summary as one JSON object instead of a table"),
) -> None:
    """Generate a synthetic dataset (homes, events, operations, pretrain, sft, dpo, feedback)."""
    import sys
    import time

    from rich.console import Console
    from rich.table import Table

    from app.progress import StageProgress
    from sim.dataset.build import DatasetConfig, build

    try:
        cfg = DatasetConfig(out=out, preset=preset.value, seed=seed, homes=homes, days=days, workers=workers,
                            engine=engine.value, overwrite=overwrite)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    t0 = time.perf_counter()
    try:
        # a bar on a terminal, plain lines on stderr otherwise (stdout keeps the summary or the --json object)
        with StageProgress("generate", out=sys.stderr) as progress:
            shards = {"done": 0, "total": 0}

            def on_plan(total: int, todo: int) -> None:
                shards.update(total=total, done=total - todo)
                progress("shards", shards["done"], total)

            def on_done(*_args) -> None:
                shards["done"] += 1
                progress("shards", shards["done"], shards["total"])

            result = build(cfg, on_done=on_done, on_plan=on_plan)
    except ValueError as e:  # sim.outdir.OutDirError, another config in --out
        typer.echo(f"error: {e}", err=True)  # plain echo: rich would wrap and elide the path
        raise typer.Exit(code=1) from None
    seconds = time.perf_counter() - t0
    if json_out:
        import json

        typer.echo(json.dumps({"out": str(result.out), "seconds": round(seconds, 2), "shards_run": len(result.ran),
                               "shards_resumed": len(result.skipped), "rows": result.rows}, sort_keys=True))
        return
    # one plain line (never wrapped by rich: paths stay copyable), then the row counts
    typer.echo(f"{result.out} ({seconds:.1f} s; {len(result.ran)} shards run, {len(result.skipped)} resumed)")
    table = Table()
    table.add_column("config")
    splits = ("train", "test", "test_unseen")
    for s in splits:
        table.add_column(s, justify="right")
    for c in ("homes", "events", "operations", "pretrain", "sft", "dpo", "feedback"):
        table.add_row(c, *[str(result.rows.get(f"{c}/{s}", "-")) for s in splits])
    Console().print(table)


@app.command()
def train(
    data: str = typer.Option(..., help="dataset directory (made by `homepilot generate`)"),
    out: str = typer.Option(..., help="run directory (config.json, metrics.jsonl, <stage>/, model/ with its README.md card)"),
    preset: ModelPreset = typer.Option(ModelPreset.tiny, help="tiny (~1M, CPU) | small (~5M, CPU) | base (~30M, GPU)"),
    stages: str = typer.Option("pretrain,sft,dpo", help="comma-separated subset of pretrain,sft,dpo"),
    order: Order = typer.Option(Order.action_first, help="SFT completion order"),
    refs: bool = typer.Option(True, help="targets name which of the prompt's usual operations they are "
                                         "(<act> [k] ACTIONS; --no-refs: the actions alone)"),
    base_model: str | None = typer.Option(None, help="local Hugging Face causal LM folder (+ its tokenizer)"),
    resume: bool = typer.Option(False, help="continue a run: skip finished stages, resume the last checkpoint "
                                            "(options that change results must be the run's)"),
    replace_model: bool = typer.Option(False, help="with --resume: let --stages that end earlier than the run's "
                                                   "final model replace RUN/model"),
    full_finetune: bool | None = typer.Option(None, "--full-finetune/--lora",
                                              help="SFT trains every weight, or LoRA (default: the preset's: "
                                                   "tiny and base full fine-tune, small LoRA)"),
    seed: int = typer.Option(0, help="model init, data order and dropout seed"),
    device: Device = typer.Option(Device.auto, help="where to train"),
    general_text: str | None = typer.Option(None, help="local UTF-8 text file mixed into pre-training"),
    general_ratio: float = typer.Option(1.0, help="general-domain characters per domain character (paper 1:1)"),
    dpo_beta: float | None = typer.Option(None, help="DPO beta (default: the preset's: tiny and small 1.0, base 0.1)"),
    dpo_loss: str | None = typer.Option(None, help="preference loss: sigmoid (the paper's DPO on the dpo config's "
                                                   "pairs) | listwise (softmax DPO over each decision's plausible "
                                                   "sets; default: the preset's: tiny and small listwise, base sigmoid)"),
    sft_epochs: float | None = typer.Option(None, help="SFT epochs (default: the preset's)"),
    sft_lr: float | None = typer.Option(None, help="SFT learning rate (default: the preset's)"),
    save_steps: int = typer.Option(50, help="optimizer steps between checkpoints"),
    calibrate: bool = typer.Option(True, help="after training, fit the confidence temperature on the held-out "
                                              "validation prompts and check the answers for collapse"),
) -> None:
    """Train a recommender: pre-training, LoRA SFT and DPO, then calibration on held-out prompts."""
    from pathlib import Path

    from app.progress import StageProgress
    from training.data import DatasetError
    from training.pipeline import TrainConfig, main

    try:
        cfg = TrainConfig(data=data, out=out, preset=preset.value, stages=stages, order=order.value, refs=refs,
                          base_model=base_model, resume=resume, replace_model=replace_model, full_finetune=full_finetune, seed=seed,
                          device=device.value,
                          general_text=general_text, general_ratio=general_ratio, dpo_beta=dpo_beta, dpo_loss=dpo_loss,
                          sft_epochs=sft_epochs, sft_lr=sft_lr, save_steps=save_steps)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    with StageProgress("train", metrics=Path(out) / "metrics.jsonl") as progress:
        try:
            info = main(cfg, progress)
        except (DatasetError, FileExistsError, FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)  # plain echo: rich would wrap and elide the path
            raise typer.Exit(code=1) from None
        if calibrate:
            from agent.calibrate import calibrate_run

            fits = calibrate_run(cfg.out, cfg.data, progress=progress.note)
            for name, fit in fits.items():
                for line in calibration_lines(name, fit):
                    typer.echo(line)
                if fit.get("collapse_warning"):
                    typer.echo(f"warning: {name}: {fit['collapse_warning']}", err=True)
    for stage in info["stages_run"]:
        s = info["stages"][stage]
        typer.echo(f"{stage}: {s.get('steps', 0)} steps, loss {s.get('first_loss', float('nan')):.3f} -> "
                   f"{s.get('last_loss', float('nan')):.3f}, {s.get('median_tokens_per_s', 0):.0f} tokens/s, "
                   f"{s.get('seconds', 0):.0f} s")
    typer.echo(f"model: {cfg.out / 'model'} ({info['n_parameters']:,} parameters); card: {cfg.out / 'model' / 'README.md'}")


def calibration_lines(name: str, fit: dict) -> list[str]:
    """What ``homepilot train`` prints of one model's calibration (``agent.calibrate.calibrate_model``'s
    figures): held-out accuracy and diversity, the candidate pool chosen, the gate's operating point."""
    lines = [f"{name}: held-out EM-Acc {fit['em_acc']:.3f}, confidence temperature {fit['temperature']:.2f}, "
             f"{fit['distinct_per_100']:.0f} distinct answers per 100, top answer share {fit['top_answer_share']:.2f}"]
    if fit.get("pool_em"):
        em = ", ".join(f"{p} {v:.3f}" for p, v in fit["pool_em"].items())
        lines.append(f"{name}: candidate pool {fit['pool']} (held-out answers exactly right: {em})")
    g = fit.get("gate")
    if g:
        lines.append(f"{name}: gate threshold {g['threshold']:.3f} (held-out: shows {g['exposure']:.0%}, "
                     f"accepted {g['lift']:.2f}x the average; 0.7 shows {fit.get('exposure_at_0_7', 0):.0%})")
    elif "gate" in fit or "answered" in fit:
        from agent.confidence import GATE_MIN_ANSWERS

        why = (f"{fit['answered']} held-out answers, fewer than the {GATE_MIN_ANSWERS} it is fitted on"
               if fit.get("answered", GATE_MIN_ANSWERS) < GATE_MIN_ANSWERS
               else "no top share of the held-out answers is accepted 1.2x the average")
        lines.append(f"{name}: no gate operating point ({why}): the gate stays at 0.7")
    return lines


def _print_whole(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.report import fmt

    table = Table(title="Whole test set")
    for col in ("method", "EM-Acc", "LM-F1", "Rule", "95% CI (EM-Acc)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, m in report["whole"].items():
        ci = m.get("ci95", {}).get("em_acc")
        table.add_row(name, fmt(m["em_acc"]), fmt(m["lm_f1"]), fmt(m["rule"]),
                      f"[{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "–")
    Console().print(table)
    g = report.get("gate_at_0_7")
    if g:  # NaN (null in report.json) where the gate showed nothing
        Console().print(f"gate at 0.7: exposure {fmt(g['exposure_rate'])}, acceptance {fmt(g['acceptance_rate'])} "
                        f"(ungated {fmt(g['ungated_acceptance_rate'])})")
    c = report.get("gate")
    if c and g and c.get("threshold") != g.get("threshold"):
        Console().print(f"gate at {fmt(c['threshold'])} (the model's threshold): exposure {fmt(c['exposure_rate'])}, "
                        f"acceptance {fmt(c['acceptance_rate'])} (ungated {fmt(c['ungated_acceptance_rate'])})")


@app.command()
def evaluate(
    data: str = typer.Option(..., help="dataset directory"),
    runs: list[str] = typer.Option([], "--runs", help="training run directory (repeat for several)"),
    out: str = typer.Option(..., help="report directory (report.md, report.json, PNG plots)"),
    max_samples: int = typer.Option(600, help="test contexts evaluated (seeded subsample; 0 = all)"),
    threshold: float | None = typer.Option(None, help="exposure gate threshold for every model (default: the run's operating point fitted on validation (the widest top share of its answers accepted >= 1.2x the average; recommender.json), 0.7 without one); "
                                                     "gate_at_0_7 is reported whatever it is"),
    seed: int = typer.Option(0, help="subsample, bootstrap and baseline seed"),
    splits: str | None = typer.Option(None, help="comma-separated sft splits to evaluate (default: those of "
                                                 "test,test_unseen the dataset has; an import has only test)"),
    format: ReportFormat = typer.Option(ReportFormat.report, "--format",
                                        help="report | ha: also predictions.jsonl, each decision's recommendation as "
                                             "Home Assistant service calls"),
    prompted_model: str | None = typer.Option(None, help="local Hugging Face causal LM folder scored zero-shot as the "
                                                         "'Prompted LM' baseline (instruction + the same prompts, "
                                                         "the same legal candidate scoring)"),
) -> None:
    """Evaluate runs and baselines; write the paper-shaped report. Without a simulator manifest (an
    imported log) the oracle and the simulated users' acceptance are left out, and the report says so."""
    from rich.console import Console

    from agent.evaluate import EvaluateConfig
    from agent.evaluate import evaluate as run_evaluate
    from agent.report import write_report

    console = Console(stderr=True)
    try:
        cfg = EvaluateConfig(data=data, runs=list(runs), out=out, max_samples=max_samples or None,
                             threshold=threshold, seed=seed, splits=splits, format=format.value,
                             prompted_model=prompted_model)
        with console.status("evaluating") as status:
            report = run_evaluate(cfg, lambda m: status.update(f"evaluate: {m}"))
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"homepilot evaluate: {e}", err=True)  # one unwrapped line: paths stay copyable
        raise typer.Exit(code=1) from None
    path = write_report(report, cfg.out)
    _print_whole(report)
    if report["simulator"]["note"]:
        typer.echo(report["simulator"]["note"])
    if cfg.format == "ha":
        typer.echo(f"predictions with Home Assistant service calls: {cfg.out / 'predictions.jsonl'}")
    typer.echo(f"report: {path}")


@app.command()
def replay(
    data: str = typer.Option(..., help="dataset directory with a feedback config"),
    out: str = typer.Option(..., help="output directory for replay.json and replay.md"),
    model: str = typer.Option("baseline", help="a run directory, or 'baseline' (time-of-day frequency)"),
    threshold: float | None = typer.Option(None, help="exposure gate: show when confidence >= threshold "
                                                     "(default: the run's operating point fitted on validation (the widest top share of its answers accepted >= 1.2x the average; recommender.json), 0.7 without one)"),
    mode: ReplayMode = typer.Option(ReplayMode.replay, help="replay (truth = p_accept on the logged contexts) | live (HomeLive-v0)"),
    splits: str | None = typer.Option(None, help="comma-separated splits replayed together (default: those of "
                                                 "test,test_unseen the dataset has; --mode live: test)"),
    split: Split | None = typer.Option(None, hidden=True, help="one split (older spelling of --splits)"),
    n_boot: int = typer.Option(1000, help="bootstrap replicates per interval (0: no intervals; else >= 40 at 95%)"),
    seed: int = typer.Option(0, help="bootstrap and live-env seed"),
    format: ReportFormat = typer.Option(ReportFormat.report, "--format",
                                        help="report | ha: also predictions.jsonl, each decision's recommendation as "
                                             "Home Assistant service calls"),
) -> None:
    """Offline acceptance-rate evaluation from logged feedback, with off-policy estimates. An imported log
    (no feedback, no simulator) is replayed on its sft decision points, judged by what the user did."""
    from agent.replay_eval import ReplayEvalConfig
    from agent.replay_eval import main as replay_main

    try:
        if split is not None and splits is not None:
            raise ValueError("give --splits (or the older --split), not both")
        cfg = ReplayEvalConfig(data=data, out=out, model=model, threshold=threshold, mode=mode.value,
                               splits=split.value if split is not None else splits, n_boot=n_boot, seed=seed,
                               format=format.value)
        report = replay_main(cfg)
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"homepilot replay: {e}", err=True)
        raise typer.Exit(code=1) from None

    def est(e: dict) -> str:  # value [lo, hi]; no interval with --n-boot 0
        return f"{e['value']:.3f}" + (f" [{e['lo']:.3f}, {e['hi']:.3f}]" if n_boot else "")

    if "snips" in report:
        typer.echo(f"wrote {out}/replay.json and replay.md: live {report['live_acceptance']:.3f}, "
                   f"SNIPS {est(report['snips'])}, DR {est(report['dr'])}" + ("" if n_boot else " (no intervals: --n-boot 0)"))
    else:
        typer.echo(f"wrote {out}/replay.json and replay.md: acceptance judged by the label {report['acceptance_rate']:.3f}, "
                   f"exposure {report['exposure_rate']:.3f} ({report['n_decisions']} decision points)")
    if report.get("predictions") is not None:
        typer.echo(f"wrote {out}/predictions.jsonl: each decision's recommendation as Home Assistant calls")
    for note in report.get("notes", []):
        typer.echo(note)


class Format(str, Enum):
    text = "text"
    json = "json"
    ha = "ha"
    ha_script = "ha-script"


@app.command()
def recommend(
    data: str = typer.Option(..., help="dataset directory (generated or imported)"),
    run: str = typer.Option(..., help="a training run directory, or a baseline: frequency (alias baseline), usual, "
                                      "gbdt, cgc, random (gbdt and cgc are trained on the dataset's sft train split first)"),
    at: str = typer.Option(..., help="decision time, the home's wall clock: 2026-01-20T07:30; only what happened "
                                     "strictly before it is used"),
    home: str = typer.Option(..., help="home id (the dataset's homes config; an import's: its --home-id)"),
    format: Format = typer.Option(Format.text, "--format", help="text | json | ha (Home Assistant service calls, "
                                                                "JSON) | ha-script (a YAML script: block)"),
    threshold: float | None = typer.Option(None, help="exposure gate: shown when confidence >= threshold "
                                                     "(default: the run's operating point fitted on validation (the widest top share of its answers accepted >= 1.2x the average; recommender.json), 0.7 without one)"),
    seed: int = typer.Option(0, help="random baseline and GBDT/CGC training seed"),
) -> None:
    """Recommend for one home at one time, from the dataset's history before it; print it (or as HA calls)."""
    from app.recommend import RecommendConfig, gate_note, render
    from app.recommend import recommend as run_recommend
    from sim.catalog import CatalogError

    try:
        cfg = RecommendConfig(data=data, run=run, at=at, home=home, format=format.value, threshold=threshold,
                              seed=seed)
        decision = run_recommend(cfg)
        text = render(decision, cfg.format)
    except (ValueError, FileNotFoundError, CatalogError) as e:  # DatasetError is a ValueError
        typer.echo(f"homepilot recommend: {e}", err=True)
        raise typer.Exit(code=1) from None
    if cfg.format in ("ha", "ha-script") and gate_note(decision):
        typer.echo(f"homepilot recommend: {gate_note(decision)}", err=True)
    typer.echo(text)


@app.command()
def quickstart(
    out: str = typer.Option("quickstart_out", help="folder for the dataset, runs and report"),
    data_preset: DataPreset = typer.Option(DataPreset.quickstart, help="dataset preset"),
    model_preset: ModelPreset = typer.Option(ModelPreset.tiny, help="model preset"),
    seed: int = typer.Option(0, help="dataset, model and evaluation seed"),
    max_samples: int = typer.Option(600, help="test contexts evaluated (0 = all)"),
    ablations: bool = typer.Option(False, "--ablations/--no-ablations",
                                   help="also train FT only and text-first (Table 3's FT row, Table 4): ~2x the time"),
) -> None:
    """End to end on 2 CPU cores: generate -> pre-train -> SFT -> DPO -> evaluate -> report."""
    from app.progress import StageProgress
    from app.quickstart import QuickstartConfig, run

    cfg = QuickstartConfig(out=out, data_preset=data_preset.value, model_preset=model_preset.value, seed=seed,
                           max_samples=max_samples or None, ablations=ablations)
    try:
        with StageProgress("quickstart") as progress:
            result = run(cfg, progress.note, progress)
    except (FileExistsError, FileNotFoundError, ValueError) as e:  # ValueError: DatasetError, OutDirError
        typer.echo(f"homepilot quickstart: {e}", err=True)  # one unwrapped line: paths stay copyable
        raise typer.Exit(code=1) from None
    _print_whole(result["report_dict"])
    secs = ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds"].items())
    typer.echo(f"quickstart done in {sum(result['seconds'].values()):.0f} s ({secs})")
    typer.echo(f"report: {result['report']}")


@app.command()
def reproduce(
    out: str = typer.Option("reproduce_out", help="folder for every seed's quickstart, the sensitivity runs and the "
                                                  "combined report"),
    seeds: str = typer.Option("0,1,2", help="comma-separated seeds: one dataset, training and evaluation each"),
    data_preset: DataPreset = typer.Option(DataPreset.quickstart, help="dataset preset of every seed"),
    model_preset: ModelPreset = typer.Option(ModelPreset.tiny, help="model preset of every seed's runs"),
    max_samples: int = typer.Option(600, help="test contexts evaluated per seed (0 = all)"),
    sensitivity: bool = typer.Option(True, "--sensitivity/--no-sensitivity",
                                     help="the Fig. 7b-d studies on the first seed (model size, training context, "
                                          "history length at test)"),
    prompted_model: str | None = typer.Option(None, help="local Hugging Face causal LM folder scored zero-shot as the "
                                                         "'Prompted LM' baseline of every seed"),
    workers: int = typer.Option(2, help="dataset generation processes"),
) -> None:
    """The paper's reproduction: every seed end to end, sensitivity studies, one report over seeds."""
    from rich.console import Console
    from rich.table import Table

    from agent.report import fmt, goal_text
    from app.progress import StageProgress
    from app.reproduce import ReproduceConfig, run

    try:
        cfg = ReproduceConfig(out=out, seeds=seeds, data_preset=data_preset.value, model_preset=model_preset.value,
                              max_samples=max_samples or None, sensitivity=sensitivity, prompted_model=prompted_model,
                              workers=workers)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    try:
        with StageProgress("reproduce") as progress:
            result = run(cfg, progress.note, progress)
    except (FileExistsError, FileNotFoundError, ValueError) as e:  # ValueError: DatasetError, OutDirError, bad model
        typer.echo(f"homepilot reproduce: {e}", err=True)  # one unwrapped line: paths stay copyable
        raise typer.Exit(code=1) from None
    r = result["report_dict"]
    table = Table(title=f"Whole test set, mean ± std over seeds {', '.join(map(str, r['seeds']))}")
    for col in ("method", "EM-Acc", "LM-F1", "Rule"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, m in r["whole"].items():
        table.add_row(name, fmt(m["em_acc"]), fmt(m["lm_f1"]), fmt(m["rule"]))
    Console().print(table)
    typer.echo(goal_text(r))
    typer.echo(f"reproduce done in {r['wall_seconds']:.0f} s ({len(result['resumed'])} steps resumed)")
    typer.echo(f"report: {result['report']}")


@app.command()
def demo(
    model: str | None = typer.Option(None, help="trained run directory (default: the frequency baseline)"),
    data: str | None = typer.Option(None, help="dataset directory to browse (default: a tiny one in a cache folder)"),
    report: str | None = typer.Option(None, help="evaluation report directory for the report page"),
    port: int = typer.Option(8501, help="local port"),
    address: str = typer.Option("localhost", help="interface to bind (0.0.0.0 serves the network)"),
    headless: bool = typer.Option(False, help="do not open a browser window"),
    advisor: str = typer.Option("auto", help="who recommends when the live page opens: auto (the --model run, "
                                "else the frequency baseline), gbdt, usual or frequency"),
) -> None:
    """Start the Streamlit live-home app."""
    from app.demo import DemoConfig
    from app.demo import main as demo_main

    try:
        cfg = DemoConfig(model=model, data=data, report=report, port=port, address=address, headless=headless,
                         advisor=advisor)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    raise typer.Exit(code=demo_main(cfg))


@app.command("sim-report")
def sim_report(
    homes: int = typer.Option(50, help="homes to simulate (1..100000)"),
    days: int = typer.Option(14, help="training days per home (1..365); a held-out week follows"),
    seed: int = typer.Option(0, help="global seed"),
    out: str = typer.Option("sim_report", help="output directory for sim_report.md/.json and plots"),
    test_days: int = typer.Option(7, help="held-out days after the training days (1..60)"),
    workers: int = typer.Option(1, help="worker processes (results do not depend on it)"),
    start: str = typer.Option("2026-01-05", help="first simulated day, YYYY-MM-DD (season matters)"),
) -> None:
    """Simulate homes and report calibration figures (ops per day, oracle and frequency accuracy)."""
    import datetime as _dt

    from app.progress import StageProgress
    from app.sim_report import SimReportConfig
    from app.sim_report import main as report_main

    try:
        try:
            first = _dt.date.fromisoformat(start)
        except ValueError:
            raise ValueError(f"--start must be a date YYYY-MM-DD, got {start!r}") from None
        cfg = SimReportConfig(homes=homes, days=days, seed=seed, out=out, test_days=test_days, workers=workers,
                              sim={"start": first})
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    try:
        with StageProgress("sim-report") as progress:
            done = [0]

            def on_homes(n: int) -> None:
                done[0] += n
                progress("simulating homes", done[0], homes)
                if done[0] == homes:
                    progress.note("learnability probe: training the GBDT reranker with and without the readings")

            r = report_main(cfg, progress=on_homes)
    except ValueError as e:  # sim.outdir.OutDirError
        typer.echo(f"homepilot sim-report: {e}", err=True)
        raise typer.Exit(code=1) from None
    met = sum(r["targets"].values())
    typer.echo(f"wrote {out}/sim_report.md, sim_report.json and plots: {r['ops_per_home_day']:.2f} ops/home-day, "
               f"oracle EM-Acc {r['oracle_em_acc']:.3f}, frequency {r['frequency_em_acc']:.3f}, "
               f"{met}/{len(r['targets'])} targets met")


@app.command()
def validate(directory: str = typer.Argument(..., help="dataset directory")) -> None:
    """Check a dataset directory's schema and invariants; exit 1 naming the first bad file and row."""
    from sim.dataset.validate import ValidationError, validate_dir

    try:
        report = validate_dir(directory)
    except (ValidationError, OSError) as e:
        typer.echo(f"invalid: {e}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"ok: {report.files} files, {report.rows} rows")


@app.command("import-log")
def import_log(
    events: str = typer.Argument(..., help="events CSV: timestamp, room, device, device_type, field, value[, source]"),
    out: str = typer.Option(..., help="dataset directory to write (new, empty, or an earlier import with --overwrite)"),
    sensors: str | None = typer.Option(None, help="sensors CSV: timestamp, room, indicator, value"),
    home_id: str = typer.Option("", help="home id (default: the events file name)"),
    burst_s: int = typer.Option(60, help="rows of one source within this many seconds form one operation"),
    test_days: int = typer.Option(1, help="the last N days that have operations form the test split (days with "
                                          "none, e.g. away or a recorder gap, are not counted)"),
    timezone: str = typer.Option("UTC", help="the home's IANA time zone; times with a UTC offset are converted to it"),
    max_rows: int = typer.Option(10_000_000, help="rows per CSV file at most"),
    overwrite: bool = typer.Option(False, help="replace an earlier import in --out (deletes only the files "
                                               "HomePilot wrote there)"),
) -> None:
    """Turn a generic CSV event log into the dataset configs."""
    from sim.dataset.importer import ImportConfig, LogFormatError
    from sim.dataset.importer import main as run_import

    def run(progress):
        cfg = ImportConfig(events=events, out=out, sensors=sensors, home_id=home_id, burst_s=burst_s,
                           test_days=test_days, timezone=timezone, max_rows=max_rows)
        return run_import(cfg, progress)

    try:
        counts = _import_into(out, overwrite, "import-log", run)
    except (LogFormatError, ValueError, OSError) as e:
        typer.echo(f"error: {e}", err=True)  # one plain line: file, line, column and what is allowed
        raise typer.Exit(code=1) from None
    typer.echo(", ".join(f"{k}: {n}" for k, n in counts.items()))


def _import_into(out: str, overwrite: bool, command: str, run):
    """Run an importer into ``out`` (``sim.outdir``): a new or empty folder, or an earlier import
    with ``overwrite`` (only the files HomePilot wrote there are replaced). A folder this command
    made keeps no trace of a failed import. Returns what ``run(progress)`` returns."""
    import shutil
    from pathlib import Path

    from app.progress import StageProgress
    from sim import outdir
    from sim.dataset.card import CARD_FILES
    from sim.dataset.schema import CONFIGS
    from sim.dataset.shards import MARKERS_DIR

    owned = [*(f"data/{c}" for c in CONFIGS), MARKERS_DIR, *CARD_FILES]  # an import makes its config folders whole
    outdir.check(out, "imported-dataset")
    if outdir.manifest(out) is not None:
        if not overwrite:
            raise ValueError(f"--out {out} holds an earlier import; pass --overwrite to replace it")
        outdir.remove_owned(out)
    fresh = not Path(out).exists()
    outdir.claim(out, "imported-dataset", owned)
    try:
        with StageProgress(command) as progress:
            return run(progress)
    except BaseException:
        if fresh:
            outdir.remove_owned(out)
            if all(p.name == outdir.MANIFEST for p in Path(out).iterdir()):
                shutil.rmtree(out)
        raise


@app.command("import-ha")
def import_ha(
    db: str = typer.Argument(..., help="Home Assistant recorder SQLite database (home-assistant_v2.db), schema 41+"),
    out: str = typer.Option(..., help="dataset directory to write (new, empty, or an earlier import with --overwrite)"),
    entities: list[str] = typer.Option([], "--entities", help="glob of entity ids to import (repeat; default: all)"),
    rooms: str | None = typer.Option(None, help="YAML/JSON map entity_id -> room (or -> {room, device, type})"),
    home_id: str = typer.Option("", help="home id (default: the database file name)"),
    burst_s: int = typer.Option(60, help="changes of one source within this many seconds form one operation"),
    test_days: int = typer.Option(1, help="the last N days that have operations form the test split (days with "
                                          "none, e.g. away or a recorder gap, are not counted)"),
    timezone: str = typer.Option("UTC", help="the home's IANA time zone (the recorder stores UTC)"),
    overwrite: bool = typer.Option(False, help="replace an earlier import in --out (deletes only the files "
                                               "HomePilot wrote there)"),
) -> None:
    """Turn a Home Assistant recorder database into the dataset configs."""
    from sim.dataset.ha import HAConfig, HAFormatError
    from sim.dataset.ha import main as run_import

    def run(progress):
        cfg = HAConfig(db=db, out=out, entities=tuple(entities), rooms=rooms, home_id=home_id, burst_s=burst_s,
                       test_days=test_days, timezone=timezone)
        return run_import(cfg, progress)

    try:
        counts, got = _import_into(out, overwrite, "import-ha", run)
    except (HAFormatError, ValueError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(code=1) from None
    if got.unsupported_line():
        typer.echo(got.unsupported_line())
    if got.skipped_values:
        typer.echo("skipped values outside the catalogue: "
                   + ", ".join(f"{k}: {n}" for k, n in sorted(got.skipped_values.items())))
    typer.echo(", ".join(f"{k}: {n}" for k, n in counts.items()))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
