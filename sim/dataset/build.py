"""Synthetic dataset generation: config and presets, splits, shard orchestration (local | ray).

``main(DatasetConfig(preset="tiny", out="D"))`` simulates homes with ``sim.world.simulate_home``,
cuts every home's log into rows (``sim.dataset.rows``), writes shards
``D/data/<config>/<split>-NNNNN-of-MMMMM.parquet`` (``sim.dataset.shards``) and the dataset card
``D/README.md`` (``sim.dataset.card``). Which homes are unseen, which shard a home belongs to and every
random draw depend only on (seed, home index), so 1 or N workers, local or ray, give identical
bytes; a re-run with the same config skips finished shards (resume).

Presets (sizes on a 2-core CPU box; see the README "Datasets" section):

========== ====== ==== ========== =========================================================
preset     homes  days test days  meant for
========== ====== ==== ========== =========================================================
tiny       6      4    1          tests, seconds
quickstart 40     21   4          CPU quickstart training of a ~1M-param model (~half a minute)
paper      219    98   8          the paper's sizes: ~58k pre-training ops/month x 3 months,
                                  ~15k SFT, ~9k DPO, ~4.9k test (bucket mix 970:1037:1650:1225)
========== ====== ==== ========== =========================================================
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sim import outdir
from sim.dataset.rows import RowSpec, home_rows
from sim.dataset.schema import CONFIGS
from sim.dataset.shards import (
    MARKERS_DIR,
    Shard,
    is_done,
    plan_shards,
    shard_counts,
    shard_path,
    write_shard,
    write_text_atomic,
)
from sim.log import HomeLog

GENERATOR_VERSION = "0.7.0"  # bump when the bytes of a generated dataset change for the same config

#: Splits each config has in each shard group.
SPLITS_BY_GROUP: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "seen": {"homes": ("train",), "events": ("train", "test"), "operations": ("train", "test"),
             "pretrain": ("train",), "sft": ("train", "test"), "dpo": ("train",), "feedback": ("train", "test")},
    "unseen": {"homes": ("test_unseen",), "events": ("test_unseen",), "operations": ("test_unseen",),
               "pretrain": (), "sft": ("test_unseen",), "dpo": (), "feedback": ("test_unseen",)},
}

PAPER_BUCKET_SHARES: Mapping[str, float] = {"1-5": 970, "6-10": 1037, "11-20": 1650, "20+": 1225}

# Preset values for every DatasetConfig field left at None. Sizes are calibrated on the
# simulator's operation rate (benchmarks/gen_speed.py measures the time).
PRESETS: Mapping[str, Mapping[str, Any]] = {
    "tiny": dict(homes=6, days=4, test_days=1, unseen_every=3, homes_per_shard=2, sft_rate=1.0, dpo_rate=1.0,
                 test_keep={}, sim_options={}),
    "quickstart": dict(homes=40, days=21, test_days=4, unseen_every=8, homes_per_shard=4, sft_rate=0.5,
                       dpo_rate=0.7, test_keep={}, sim_options={}),
    # 192 seen homes x 90 train days x ~10 logged ops/home-day ~ 173k pre-training ops (generator
    # 0.7.0); sft 8.7% of them ~ 15k; dpo 62% of sft ~ 9k; test_keep thins the ~17k test rows to ~4.9k in
    # the paper's bucket mix 970:1037:1650:1225 (keep = target / rows the simulator gives per bucket,
    # seed 0; recalibrated on generator 0.7.0, where the 0.5-era values gave 1034:1458:2105:1686)
    "paper": dict(homes=219, days=98, test_days=8, unseen_every=8, homes_per_shard=8, sft_rate=0.087,
                  dpo_rate=0.62, test_keep={"1-5": 0.718, "6-10": 0.397, "11-20": 0.2845, "20+": 0.1998},
                  sim_options={"app_opens_per_day": 1.0}),
}
ENGINES: tuple[str, ...] = ("local", "ray")


@dataclass
class DatasetConfig:
    """Everything that decides a generated dataset (``workers``/``engine`` decide only the speed)."""

    out: str = "data_out"  # dataset directory (README.md + data/)
    preset: str = "tiny"  # tiny | quickstart | paper: fills every size field left at None
    seed: int = 0  # global seed: the simulator's and the row sampler's draws derive from (seed, home index)
    homes: int | None = None  # number of simulated homes (indices 0..homes-1)
    days: int | None = None  # simulated days per home (train days + test days)
    test_days: int | None = None  # last days of the period that form the test split (seen homes)
    start: date = date(2026, 1, 5)  # first simulated day (a Monday)
    unseen_every: int | None = None  # home i is unseen (test_unseen) when i % unseen_every == unseen_every - 1
    unseen_warmup_days: int = 14  # an unseen home simulates only this many days before the test period
    homes_per_shard: int | None = None  # homes per shard: the unit of parallel work and of resume
    sft_rate: float | None = None  # share of train-period logged operations that become sft rows
    dpo_rate: float | None = None  # share of sft train rows mined for a dpo pair
    test_keep: dict[str, float] | None = None  # bucket -> share of test rows kept (paper's bucket mix)
    feedback_horizon_s: int = 1800  # feedback label = the user's next operation within this many seconds
    workers: int = 2  # processes (local) or ray CPUs; does not change the output
    engine: str = "local"  # local (process pool) | ray (extra "distributed")
    overwrite: bool = False  # delete an existing dataset with a different config instead of failing
    simulator: str = "sim.world:simulate_home"  # module:function(SimConfig, index) -> HomeLog
    sim_options: dict[str, Any] | None = None  # extra sim.world.SimConfig fields (default: the preset's)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        for k, v in PRESETS[self.preset].items():
            if getattr(self, k) is None:
                setattr(self, k, dict(v) if isinstance(v, dict) else v)
        if isinstance(self.start, datetime):
            self.start = self.start.date()
        if self.homes < 1:
            raise ValueError(f"homes must be >= 1, got {self.homes}")
        if not 1 <= self.test_days < self.days:
            raise ValueError(f"need 1 <= test_days < days, got test_days={self.test_days}, days={self.days}")
        if self.unseen_every < 2:
            raise ValueError(f"unseen_every must be >= 2 (every k-th home is unseen), got {self.unseen_every}")
        if self.unseen_warmup_days < 1:
            raise ValueError(f"unseen_warmup_days must be >= 1, got {self.unseen_warmup_days}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if ":" not in self.simulator:
            raise ValueError(f"simulator must be 'module:function', got {self.simulator!r}")
        RowSpec(cutoff=datetime(2000, 1, 1), sft_rate=self.sft_rate, dpo_rate=self.dpo_rate, test_keep=self.test_keep)

    @property
    def cutoff(self) -> datetime:
        """First instant of the test period."""
        return datetime.combine(self.start, datetime.min.time()) + timedelta(days=self.days - self.test_days)

    def unseen(self, index: int) -> bool:
        return index % self.unseen_every == self.unseen_every - 1

    def shards(self) -> list[Shard]:
        idx = range(self.homes)
        return plan_shards([i for i in idx if not self.unseen(i)], [i for i in idx if self.unseen(i)],
                           self.homes_per_shard)

    def fingerprint(self) -> dict[str, Any]:
        """The fields that decide the output bytes (not out, workers, engine, overwrite)."""
        skip = {"out", "workers", "engine", "overwrite"}
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        d["start"] = self.start.isoformat()
        d["generator_version"] = GENERATOR_VERSION
        return json.loads(json.dumps(d, sort_keys=True, default=str))

    def command(self) -> str:
        """A ``homepilot generate`` command line that reproduces this dataset."""
        parts = ["homepilot generate", f"--preset {self.preset}", f"--seed {self.seed}", f"--homes {self.homes}",
                 f"--days {self.days}"]
        return " ".join(parts + ["--out DIR"])


# ---------------------------------------------------------------- one shard (runs in a worker)


def _simulator(path: str) -> Callable[..., HomeLog]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def sim_config(cfg: DatasetConfig, unseen: bool = False) -> Any:
    """The simulator's config; an unseen home simulates only its warm-up and test days."""
    from sim.world import SimConfig

    days, start = cfg.days, cfg.start
    if unseen:
        days = min(cfg.days, cfg.test_days + cfg.unseen_warmup_days)
        start = cfg.start + timedelta(days=cfg.days - days)
    return SimConfig(seed=cfg.seed, days=days, start=start, **cfg.sim_options)


def run_shard(cfg_dict: dict[str, Any], shard: Shard) -> dict[str, int]:
    """Simulate the shard's homes, cut their rows, write the shard's files; returns row counts."""
    cfg = DatasetConfig(**cfg_dict)
    simulate = _simulator(cfg.simulator)
    tables: dict[tuple[str, str], list] = {}
    for index in shard.homes:
        log = simulate(sim_config(cfg, cfg.unseen(index)), index)
        spec = RowSpec(cutoff=cfg.cutoff, unseen=cfg.unseen(index), seed=cfg.seed, sft_rate=cfg.sft_rate,
                       test_keep=cfg.test_keep, dpo_rate=cfg.dpo_rate, feedback_horizon_s=cfg.feedback_horizon_s)
        for key, table in home_rows(log, spec).items():
            tables.setdefault(key, []).append(table)
    return write_shard(Path(cfg.out), shard, tables, CONFIGS, SPLITS_BY_GROUP[shard.group])


def _config_dict(cfg: DatasetConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["test_keep"] = dict(cfg.test_keep)
    d["sim_options"] = dict(cfg.sim_options)
    return d


# ---------------------------------------------------------------- engines


def die_with_parent(parent: int) -> None:
    """Pool initializer: the worker dies when ``parent`` does (a ``kill -9`` of the CLI), instead of
    waiting forever on the task pipe. Linux: ``PR_SET_PDEATHSIG`` (SIGKILL on the parent's exit);
    elsewhere a daemon thread polls ``os.getppid()`` every second."""
    import os
    import signal
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _run_local(cfg: DatasetConfig, todo: list[Shard], on_done: Callable[[Shard, dict[str, int]], None]) -> None:
    d = _config_dict(cfg)
    if cfg.workers == 1:
        for s in todo:
            on_done(s, run_shard(d, s))
        return
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # fork: the calling thread forks the workers and outlives the pool (the with block), so their
    # PR_SET_PDEATHSIG fires only when this process dies
    with ProcessPoolExecutor(max_workers=cfg.workers, mp_context=mp.get_context("fork"),
                             initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(run_shard, d, s): s for s in todo}
        for f in as_completed(futures):
            on_done(futures[f], f.result())


def _run_ray(cfg: DatasetConfig, todo: list[Shard], on_done: Callable[[Shard, dict[str, int]], None]) -> None:
    try:
        import ray
    except ImportError:
        raise ImportError("engine 'ray' needs Ray: pip install 'homepilot[distributed]'") from None
    started = not ray.is_initialized()
    if started:
        import tempfile

        # Ray's sockets live under its temp dir and a Unix socket path may not pass 107 bytes:
        # under a long TMPDIR, use /tmp/ray instead of failing with "AF_UNIX path length"
        short = {"_temp_dir": "/tmp/ray"} if len(tempfile.gettempdir()) > 40 else {}
        ray.init(num_cpus=cfg.workers, include_dashboard=False, log_to_driver=False, **short)
    try:
        task = ray.remote(run_shard)
        d = _config_dict(cfg)
        refs = {task.remote(d, s): s for s in todo}
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            on_done(refs[ready[0]], ray.get(ready[0]))
    finally:
        if started:
            ray.shutdown()


# ---------------------------------------------------------------- the composite


@dataclass
class BuildResult:
    """What ``build`` did: shards run and skipped, rows per config/split, the output directory."""

    out: Path
    ran: list[str]
    skipped: list[str]
    rows: dict[str, int]


def owned_paths(cfg: DatasetConfig) -> list[str]:
    """What a generation writes under ``out`` (``sim.outdir``): every planned shard file, the markers
    folder and the card's files."""
    from sim.dataset.card import CARD_FILES

    files = [shard_path(Path(), c, split, s.index, s.count).as_posix() for s in cfg.shards()
             for c in CONFIGS for split in SPLITS_BY_GROUP[s.group][c]]
    return [*files, MARKERS_DIR, *CARD_FILES]


def _from_fingerprint(have: dict[str, Any], root: Path) -> DatasetConfig:
    """The config of an earlier generation, from its ``.shards/generation.json``."""
    keep = {f.name for f in fields(DatasetConfig)}
    try:
        d = {k: v for k, v in have.items() if k in keep}
        return DatasetConfig(**{**d, "start": date.fromisoformat(d["start"]), "out": str(root)})
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{root / MARKERS_DIR / 'generation.json'}: cannot tell which files that generation wrote "
                         f"({e}); remove them by hand or use another --out") from None


def prepare_dir(cfg: DatasetConfig) -> Path:
    """Claim ``out`` as a dataset (``sim.outdir``: an empty or new folder, or an earlier generation);
    an earlier generation must have the same config (resume) unless ``overwrite`` removes its files.
    Deletes the temp files of killed writers, only next to the files a generation writes."""
    root = Path(cfg.out)
    outdir.check(root, "dataset")
    generation = root / MARKERS_DIR / "generation.json"
    want = cfg.fingerprint()
    if generation.exists():
        have = json.loads(generation.read_text())
        if have != want:
            if not cfg.overwrite:
                diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
                raise ValueError(f"{root} holds a dataset generated with a different config (fields {diff}); "
                                 "use another --out or --overwrite")
            if outdir.manifest(root) is None:  # written before manifests: list what its config wrote
                outdir.claim(root, "dataset", owned_paths(_from_fingerprint(have, root)))
            outdir.remove_owned(root)
    outdir.claim(root, "dataset", owned_paths(cfg))
    outdir.remove_temp(root)
    write_text_atomic(json.dumps(want, sort_keys=True, indent=1), generation)
    return root


def build(cfg: DatasetConfig, on_done: Callable[[Shard, dict[str, int]], None] | None = None,
          on_plan: Callable[[int, int], None] | None = None) -> BuildResult:
    """Generate every unfinished shard, then the card. ``on_plan(total, todo)``, ``on_done(shard, rows)``
    are progress hooks (the CLI's progress bar)."""
    root = prepare_dir(cfg)
    shards = cfg.shards()
    todo = [s for s in shards if not is_done(root, s, CONFIGS)]
    skipped = [s.key for s in shards if s not in todo]
    if on_plan is not None:
        on_plan(len(shards), len(todo))
    ran: list[str] = []

    def done(s: Shard, counts: dict[str, int]) -> None:
        ran.append(s.key)
        if on_done is not None:
            on_done(s, counts)

    (_run_ray if cfg.engine == "ray" else _run_local)(cfg, todo, done)
    rows: dict[str, int] = {}
    for s in shards:
        for k, n in shard_counts(root, s).items():
            rows[k] = rows.get(k, 0) + n
    from sim.dataset.card import write_card

    write_card(root, cfg)
    return BuildResult(root, sorted(ran), skipped, dict(sorted(rows.items())))


def main(cfg: DatasetConfig) -> BuildResult:
    return build(cfg)
