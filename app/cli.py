"""The ``homepilot`` command line: thin typer wrappers that parse options and call ``main(config)``
of the package that does the work (sim, training, agent, app).

A subcommand whose capability is not built yet exits with status 2 and one line saying so;
it never prints a fake result.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="homepilot",
    help="HomePilot: smart-home operation recommendation on a simulated home (after DevPiolt, 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STUB = {"allow_extra_args": True, "ignore_unknown_options": True}


def not_available(command: str) -> None:
    """Exit 2 with one line: the capability behind ``command`` is not built yet."""
    typer.echo(f"homepilot {command}: not available yet in this version", err=True)
    raise typer.Exit(code=2)


@app.command(context_settings=_STUB)
def generate(ctx: typer.Context) -> None:
    """Generate a synthetic dataset (homes, events, operations, pretrain, sft, dpo, feedback)."""
    not_available("generate")


@app.command(context_settings=_STUB)
def train(ctx: typer.Context) -> None:
    """Train a recommender: pre-training, LoRA SFT and DPO."""
    not_available("train")


@app.command(context_settings=_STUB)
def evaluate(ctx: typer.Context) -> None:
    """Evaluate runs and baselines; write the paper-shaped report."""
    not_available("evaluate")


@app.command()
def replay(
    data: str = typer.Option(..., help="dataset directory with a feedback config"),
    out: str = typer.Option(..., help="output directory for replay.json and replay.md"),
    model: str = typer.Option("baseline", help="a run directory, or 'baseline' (time-of-day frequency)"),
    threshold: float = typer.Option(0.7, help="exposure gate: show when confidence >= threshold"),
    mode: str = typer.Option("replay", help="replay (truth = p_accept on the logged contexts) | live (HomeLive-v0)"),
    split: str = typer.Option("test", help="feedback split: test | test_unseen | train"),
    n_boot: int = typer.Option(1000, help="bootstrap replicates per interval"),
    seed: int = typer.Option(0, help="bootstrap and live-env seed"),
) -> None:
    """Offline acceptance-rate evaluation from logged feedback, with off-policy estimates."""
    from agent.replay_eval import ReplayEvalConfig
    from agent.replay_eval import main as replay_main

    try:
        cfg = ReplayEvalConfig(data=data, out=out, model=model, threshold=threshold, mode=mode, split=split,
                               n_boot=n_boot, seed=seed)
        report = replay_main(cfg)
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"homepilot replay: {e}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"wrote {out}/replay.json and replay.md: live {report['live_acceptance']:.3f}, "
               f"SNIPS {report['snips']['value']:.3f} [{report['snips']['lo']:.3f}, {report['snips']['hi']:.3f}], "
               f"DR {report['dr']['value']:.3f} [{report['dr']['lo']:.3f}, {report['dr']['hi']:.3f}]")


@app.command(context_settings=_STUB)
def quickstart(ctx: typer.Context) -> None:
    """End to end on 2 CPU cores: generate -> pre-train -> SFT -> DPO -> evaluate -> report."""
    not_available("quickstart")


@app.command(context_settings=_STUB)
def demo(ctx: typer.Context) -> None:
    """Start the Streamlit live-home app."""
    not_available("demo")


@app.command("sim-report", context_settings=_STUB)
def sim_report(ctx: typer.Context) -> None:
    """Simulate homes and report calibration figures (ops per day, oracle and frequency accuracy)."""
    not_available("sim-report")


@app.command(context_settings=_STUB)
def validate(ctx: typer.Context) -> None:
    """Check a dataset directory's schema and invariants."""
    not_available("validate")


@app.command("import-log", context_settings=_STUB)
def import_log(ctx: typer.Context) -> None:
    """Turn a generic CSV event log into the dataset configs."""
    not_available("import-log")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
