"""The dataset card: ``README.md`` with Hugging Face YAML metadata, plus PNG statistics plots.

``write_card(root, cfg)`` reads the shards under ``root/data`` (so the card always describes the
files that exist, after a resume too) and writes ``README.md`` and ``stats/*.png``. The text
is deterministic: no dates, no paths of the machine, counts sorted by key.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from huggingface_hub import DatasetCardData

from sim.catalog import DEVICE_BUCKETS
from sim.dataset.files import read_file, split_files
from sim.dataset.schema import CONFIGS, SPLITS
from sim.dataset.shards import write_text_atomic
from sim.prompts import HISTORY_K, USUAL_N

#: The config ``datasets.load_dataset(root)`` loads when no config is named.
DEFAULT_CONFIG = "sft"
#: The card's files under the dataset directory (``sim.outdir`` lists them as HomePilot's).
CARD_FILES = ("README.md", "stats/ops_per_hour.png", "stats/sft_buckets.png")

COLUMNS: Mapping[str, Mapping[str, str]] = {
    "homes": {
        "home_id": "home id (`h00012`)", "index": "home index (the simulator's seed stream)",
        "split": "`train` (seen home) or `test_unseen` (never in train)", "n_devices": "number of devices",
        "bucket": "device-count bucket of the paper's Table 2: 1-5, 6-10, 11-20, 20+",
        "climate_zone": "climate zone of the simulated weather", "rooms": "room ids",
        "residents": "persona id of each resident", "devices": "list of {room, device, type}: every device",
        "entities": "list of {room, device, entity_id}: a device's real Home Assistant entities (imported from a "
                    "recorder database; empty for synthetic homes, whose ids are derived: `<domain>.<room>_<device>`)",
    },
    "events": {
        "home_id": "home id", "time": "timestamp (naive local time, seconds)",
        "kind": "`sensor` (room reading), `weather` (outdoor) or `action` (device change)",
        "room": "room id (`outdoor` for weather)", "device": "device name in its room; empty for readings",
        "field": "device field, or the indicator of a reading", "value": "value as text",
        "source": "app | voice | physical | automation for actions, empty otherwise",
        "user": "resident who acted, empty otherwise", "logged": "false for physical operations the app never saw",
    },
    "operations": {
        "home_id": "home id", "user": "resident id", "time": "operation time (minute resolution)",
        "source": "app | voice | physical | automation", "logged": "false: a history gap the recommender cannot see",
        "actions": "ordered actions `[room][device][field][value] ...`", "description": "natural-language description",
        "n_actions": "number of actions", "categories": "catalogue categories of the operated devices",
        "text": "the whole record in the canonical grammar (`<op> ... </op>`)",
    },
    "pretrain": {
        "home_id": "home id",
        "text": "one home-day of logged operations: `<hist> <op> TIME <env> ... <act> ... <desc> ... </op> ... </hist>`",
    },
    "sft": {
        "home_id": "home id", "user": "resident who performed the target operation", "time": "decision time",
        "prompt": f"last {HISTORY_K} logged operations, decision time, readings known before it (temperature, "
                  "humidity, illuminance, occupancy of up to 3 rooms: the one last entered, the last operation's, "
                  "the usual operations'; outdoor temperature, illuminance, weather), candidate devices ranked by use around this time of day, each with "
                  "its last known state (`[room][device][field][value]...`), the "
                  f"home's {USUAL_N} usual operations around this time of day (`<usual>`, most likely last); "
                  "ends on `<rec>`",
        "completion": "action-first target `<act> ACTIONS <desc> TEXT`",
        "completion_text_first": "text-first target `<desc> TEXT <act> ACTIONS`", "actions": "target actions",
        "description": "target description", "bucket": "sub-dataset key: device-count bucket of the home",
        "categories": "sub-dataset key: categories of the operated devices", "devices": "the home's devices",
    },
    "dpo": {
        "home_id": "home id", "time": "decision time", "prompt": "as in sft",
        "chosen": "the real operation's action-first completion",
        "rejected": "a mined negative's action-first completion (template description)",
        "negative_kind": "`time`: never done by this user within +-1 h of this time of day; "
                         "`conflict`: the inverse of an action on that device within the last 10 min (2 for lights/switches)",
    },
    "feedback": {
        "home_id": "home id", "user": "user who opened the app", "time": "exposure time",
        "prompt": "the context at the exposure, as in sft", "shown": "actions the logging policy showed",
        "description": "shown description", "propensity": "logging policy's probability of showing exactly this",
        "accepted": "the user's answer", "p_accept": "the acceptance model's true probability (simulator only)",
        "label": "actions of the user's next logged operation within 30 min; empty if none",
        "bucket": "sub-dataset key", "categories": "sub-dataset key: categories of the label (of `shown` when no label)",
        "devices": "the home's devices",
    },
}


def _files(root: Path) -> dict[str, dict[str, list[Path]]]:
    out: dict[str, dict[str, list[Path]]] = {}
    for config in CONFIGS:
        for split in SPLITS:
            found = split_files(root, config, split, required=False)
            if found:
                out.setdefault(config, {})[split] = found
    return out


def _read(paths: list[Path], columns: list[str]) -> dict[str, list]:
    cols: dict[str, list] = {c: [] for c in columns}
    for p in paths:
        t = read_file(p, columns)
        for c in columns:
            cols[c].extend(t.column(c).to_pylist())
    return cols


def size_category(n: int) -> str:
    for bound, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < bound:
            return label
    return "10M<n<100M"


def statistics(root: Path) -> dict[str, Any]:
    """Counts per config/split, per sub-dataset (bucket, category), per dpo kind; ops per hour."""
    files = _files(root)
    rows = {c: {s: sum(pq.read_metadata(p).num_rows for p in ps) for s, ps in sp.items()} for c, sp in files.items()}
    sub: dict[str, dict[str, dict[str, int]]] = {}
    for config in ("sft", "feedback"):
        for split, paths in files.get(config, {}).items():
            d = _read(paths, ["bucket", "categories"])
            b = Counter(d["bucket"])
            c = Counter(x for cats in d["categories"] for x in cats)
            sub[f"{config}/{split}"] = {"bucket": {k: b.get(k, 0) for k in DEVICE_BUCKETS},
                                        "category": dict(sorted(c.items()))}
    kinds = {}
    for split, paths in files.get("dpo", {}).items():
        kinds[split] = dict(sorted(Counter(_read(paths, ["negative_kind"])["negative_kind"]).items()))
    hours: dict[str, list[int]] = {}
    for split, paths in files.get("operations", {}).items():
        d = _read(paths, ["time", "logged"])
        h = [0] * 24
        for t, logged in zip(d["time"], d["logged"], strict=True):
            if logged:
                h[t.hour] += 1
        hours[split] = h
    return {"rows": rows, "subsets": sub, "dpo_kinds": kinds, "ops_per_hour": hours}


def _plot(stats: dict[str, Any], root: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    if stats["ops_per_hour"]:
        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
        for split, h in sorted(stats["ops_per_hour"].items()):
            total = max(sum(h), 1)
            ax.plot(range(24), [x / total for x in h], marker="o", ms=3, label=split)
        ax.set(xlabel="hour of day", ylabel="share of logged operations", title="Operations per hour", xticks=range(0, 24, 2))
        ax.legend()
        fig.tight_layout()
        made.append(_save(fig, root / CARD_FILES[1]))
        plt.close(fig)
    subs = {k: v for k, v in stats["subsets"].items() if k.startswith("sft/")}
    if subs:
        fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
        width = 0.8 / len(subs)
        for i, (k, v) in enumerate(sorted(subs.items())):
            ax.bar([j + i * width for j in range(len(DEVICE_BUCKETS))], [v["bucket"][b] for b in DEVICE_BUCKETS],
                   width=width, label=k)
        ax.set(xticks=[j + 0.4 - width / 2 for j in range(len(DEVICE_BUCKETS))], xticklabels=DEVICE_BUCKETS,
               xlabel="devices in the home", ylabel="sft rows", title="SFT rows per device-count bucket")
        ax.legend()
        fig.tight_layout()
        made.append(_save(fig, root / CARD_FILES[2]))
        plt.close(fig)
    return made


def _save(fig: Any, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})  # no version string: stable bytes
    write_text_atomic(buf.getvalue(), path)
    return f"stats/{path.name}"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    """A markdown table; ``|`` inside a cell is escaped (``\\|``) so it cannot split the cell."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |" for r in rows]
    return "\n".join(lines)


def render(stats: dict[str, Any], info: Mapping[str, Any], plots: list[str], files: dict[str, dict[str, list[Path]]]) -> str:
    """The README.md text: YAML front matter (``huggingface_hub.DatasetCardData``; ``DEFAULT_CONFIG`` marked
    ``default``) + sections."""
    configs = [{"config_name": config, **({"default": True} if config == DEFAULT_CONFIG else {}),
                "data_files": [{"split": s, "path": f"data/{config}/{s}-*.parquet"} for s in SPLITS if s in files[config]]}
               for config in CONFIGS if config in files]
    data = DatasetCardData(
        license=str(info.get("license", "cc-by-4.0")), language=["en"], pretty_name=str(info["title"]),
        task_categories=["text-generation", "text-classification"],
        size_categories=[size_category(max((sum(v.values()) for v in stats["rows"].values()), default=0))],
        tags=list(info.get("tags", SYNTHETIC_TAGS)), configs=configs)
    out = [f"---\n{data.to_yaml()}\n---", "", f"# {info['title']}", "", info["summary"], "",
           "## Generation", "", _table(["field", "value"], [[k, f"`{v}`"] for k, v in info["settings"].items()]), "",
           "## Configs and columns", ""]
    for config in CONFIGS:
        if config in files:
            out += [f"### `{config}`", "", _table(["column", "description"], [[f"`{c}`", d] for c, d in COLUMNS[config].items()]), ""]
    out += ["## Statistics", "", "Rows per config and split:", ""]
    out.append(_table(["config", *SPLITS], [[c, *[stats["rows"][c].get(s, "-") for s in SPLITS]] for c in stats["rows"]]))
    for key, v in sorted(stats["subsets"].items()):
        out += ["", f"`{key}` by device-count bucket: " + ", ".join(f"{b}: {n}" for b, n in v["bucket"].items()),
                "", f"`{key}` by category: " + (", ".join(f"{c}: {n}" for c, n in v["category"].items()) or "-")]
    for split, kinds in stats["dpo_kinds"].items():
        out += ["", f"`dpo/{split}` by negative kind: " + ", ".join(f"{k}: {n}" for k, n in kinds.items())]
    out.append("")
    out += [f"![{p}]({p})" for p in plots]
    out += ["", "## How it was generated", "", info["how"], "", "## Known limits", "", info["limits"], ""]
    if info.get("license_note"):
        out += ["## License", "", str(info["license_note"]), ""]
    return "\n".join(out)


#: The card's tags of a generated dataset; an imported log's card passes its own (``info["tags"]``).
SYNTHETIC_TAGS = ("smart-home", "iot", "recommendation", "synthetic", "dpo", "devpiolt")

SYNTHETIC_HOW = """Each home is a SimPy simulation (`sim.world.simulate_home`): rooms and devices, outdoor weather
and first-order room physics, residents with persona schedules who move between rooms (occupancy is a
sensor stream), routines as ordered chains of habits whose conditions read the room's own sensors
(illuminance, temperature) against each resident's thresholds, day modes drawn per day that switch
schedules and habits (work from home, out all day, guests, sick, rainy weekend), children's-room
operations only while the child is home, lights switched on entering dark rooms and off leaving them,
comfort reactions, conflicting toggles, and unplanned operations (mostly one-step adjustments of a
device in use, a few random); physical operations may go unlogged. At app-open decision points (fewer
in homes of under 12 devices) a randomised logging policy shows a recommendation with a known propensity
and the simulated user accepts or rejects it (`feedback`). Operations are cut into rows by `sim.dataset.rows`: prompts come from
`sim.prompts` (the last logged operations strictly before the decision time, the sensor readings known
before it for the room last entered, the last logged operation's and the usual operations' rooms (at
most 3) and outdoors -- never the predicted operation's own
readings, which would reveal its room -- the home's devices, ranked by use around this time of day, with
the state the logged operations left them in, and its usual operations around this time of day, counted
over every earlier logged operation, most likely last), completions
from the canonical grammar of `sim.records`. DPO negatives follow the paper (Wang et al., 2025, Sec. 3.3):
*time* = an action of the home that this user never performed within +-1 h of this time of day in their
earlier history; *conflict* = the inverse of an action performed on that device within the last 10 min
(2 min for high-frequency devices). Splits: seen homes' last days form `test` (non-overlapping in time
with `train`); every k-th home is held out as `test_unseen`.
Every random draw derives from (seed, home index): the bytes do not depend on the worker count or engine."""

SYNTHETIC_LIMITS = f"""- Synthetic: the people, habits and acceptance model are hand-written, not fitted to real logs; models
  trained here learn the simulator's regularities, which are simpler than real households.
- Descriptions come from a small set of templates; DPO rejected descriptions are template text.
- One prompt format (compact history of the last {HISTORY_K} logged operations, about a day, plus the usual operations
  around this time of day); the paper's window is longer.
- `p_accept` exists only because the data is simulated; real logs have no such column."""


def write_card(root: Path, cfg: Any, info: Mapping[str, Any] | None = None) -> Path:
    """Write ``root/README.md`` (and ``root/stats/*.png``) for the shards that exist under ``root``."""
    from sim.dataset.build import GENERATOR_VERSION

    if info is None:
        settings = {"generator": f"homepilot dataset generator {GENERATOR_VERSION}", "preset": cfg.preset, "seed": cfg.seed,
                    "homes": cfg.homes, "days": cfg.days, "test days": cfg.test_days, "start": cfg.start.isoformat(),
                    "unseen home": f"index % {cfg.unseen_every} == {cfg.unseen_every - 1}",
                    "homes per shard": cfg.homes_per_shard, "sft rate": cfg.sft_rate, "dpo rate": cfg.dpo_rate,
                    "test keep": dict(sorted(cfg.test_keep.items())), "unseen warm-up days": cfg.unseen_warmup_days,
                    "simulator options": dict(sorted(cfg.sim_options.items())), "command": cfg.command()}
        info = {"title": f"HomePilot synthetic smart-home operations ({cfg.preset})",
                "summary": "Synthetic smart-home operation logs and training sets for operation recommendation, "
                           "after *DevPiolt: Operation Recommendation for IoT Devices at Xiaomi Home* "
                           "(Wang et al., 2025). Generated by HomePilot's SimPy household simulator.",
                "settings": settings, "how": SYNTHETIC_HOW, "limits": SYNTHETIC_LIMITS}
    files = _files(root)
    stats = statistics(root)
    plots = _plot(stats, root)
    path = root / CARD_FILES[0]
    write_text_atomic(render(stats, info, plots, files), path)
    return path
