"""CGC: the paper's feature-based multi-task baseline (DevPiolt Sec. 4.1), in torch.

Customized Gate Control (CGC) is the single-level form of PLE (Tang et al., RecSys 2020): a set
of *shared* experts plus *task-specific* experts; each task has a gate, a softmax over its own
experts and the shared ones, whose mixture feeds the task's tower. Here the tasks are the three
parts of an action: (1) which home-device to operate, (2) which of its fields, (3) which value.

Inputs (``agent.baselines.cgc_features``): user features (time, weekday, outdoor and indoor
readings) through an MLP; the last ``history_actions`` history actions, each embedded from its
room, device name, (type, field), value and time, encoded by a small Transformer with a CLS token;
per candidate home-device, its type, category, room and name embeddings, room readings and
history statistics through an MLP.

Tasks and candidates. About a third of the simulator's labels are multi-action, mostly several
fields of one device (``power on`` + ``mode heat``), sometimes a second device (plug + AC). So
the field task classifies the device's *field set* (which fields are operated together: every
single field, plus every multi-field set some training label used on one device of that type),
and the value task classifies, for each field of the set, its value given device, set and field.
The legal candidates of a home are devices x field sets x values, scored as
log p(device) + log p(set | device) + sum over the set's fields of log p(value | device, set,
field), each softmax masked to what is legal (the home's devices; the type's field sets; the
values the catalogue allows on that field). **Value vocabulary**: every enum value of the
catalogue, each numeric field's default and every numeric value seen in the training split
(labels and histories); numeric
grid points never seen in training are not predicted (a light's 100 brightness steps collapse to
the few people actually use). Training gives one example per home-device a label operates, so
p(device) learns the share of a label's devices.

Prediction: the argmax candidate, plus, for every other device with p(device) >=
``device_threshold``, its own best set and values (cross-device bundles). With
``tune_thresholds`` the threshold (or None = off) is chosen on a held-out share of the train rows
to maximise EM-Acc. Confidence = the argmax candidate's probability: p(device) x p(set | device)
x the product of its value probabilities (for a single action, the product of the three softmax
probabilities).

Training lives in ``agent.baselines.cgc_train`` (``train_cgc``), featurisation in
``agent.baselines.cgc_features``; this module holds the config, the torch module and the
``CGCModel`` wrapper.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from agent.baselines.cgc_features import (
    CATEGORIES,
    FIELD_KEYS,
    N_DEV,
    N_HIST,
    N_USER,
    TYPES,
    Features,
    Vocab,
    featurize,
)
from sim.candidates import Types
from sim.catalog import DEVICE_TYPES
from sim.records import Action, Prompt


@dataclass
class CGCConfig:
    """Hyper-parameters of the CGC baseline (model and training)."""

    seed: int = 0  # torch.manual_seed and the shuffling generator
    epochs: int = 12  # passes over the training examples (at least; see min_steps)
    min_steps: int = 120  # more epochs when the data is small, so that training takes >= this many steps
    batch_size: int = 256  # examples per optimiser step (large: per-step overhead dominates on CPU)
    lr: float = 8e-3  # AdamW peak learning rate (one-cycle schedule)
    weight_decay: float = 1e-4  # AdamW weight decay
    d_model: int = 64  # width of embeddings, history Transformer and encoders
    d_expert: int = 64  # output width of every expert
    n_shared_experts: int = 2  # experts every task's gate mixes in
    n_task_experts: int = 1  # experts owned by each of the three tasks
    n_heads: int = 4  # attention heads of the history Transformer
    n_layers: int = 1  # history Transformer layers
    history_actions: int = 16  # last K history actions encoded (ops flattened into actions)
    dropout: float = 0.05  # dropout in the history Transformer and the experts (not in the per-device
    # encoder/towers: sampling masks over (batch, devices, ...) cost a quarter of a CPU step)
    label_actions: str = "all"  # "all": one example per home-device a label operates; "first": the first only
    device_threshold: float | None = None  # extra devices at p(d) >= this; None = off
    tune_thresholds: bool = True  # choose device_threshold on held-out train rows (overrides the above)
    val_fraction: float = 0.1  # share of train rows held out (seeded) for tuning the threshold
    max_rows: int | None = None  # cap on training rows (first N, in file order); None = all
    num_threads: int = 1  # torch intra-op threads while training/predicting (restored after); the
    # matmuls are tiny, and on a busy 2-core box 2 spinning threads ran ~5x slower than 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "d_model", "d_expert", "n_shared_experts", "n_heads", "n_layers",
                     "history_actions", "num_threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"CGCConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.min_steps < 0:
            raise ValueError(f"CGCConfig.min_steps must be >= 0, got {self.min_steps}")
        if self.n_task_experts < 0:
            raise ValueError(f"CGCConfig.n_task_experts must be >= 0, got {self.n_task_experts}")
        if self.d_model % self.n_heads:
            raise ValueError(f"CGCConfig.d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CGCConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(f"CGCConfig needs lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.label_actions not in ("all", "first"):
            raise ValueError(f"CGCConfig.label_actions must be 'all' or 'first', got {self.label_actions!r}")
        if self.device_threshold is not None and not 0.0 < self.device_threshold <= 1.0:
            raise ValueError(f"CGCConfig.device_threshold must be in (0, 1] or None, got {self.device_threshold}")
        if not 0.0 <= self.val_fraction < 0.5:
            raise ValueError(f"CGCConfig.val_fraction must be in [0, 0.5), got {self.val_fraction}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ValueError(f"CGCConfig.max_rows must be >= 1 or None, got {self.max_rows}")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with ``n`` torch intra-op threads, restoring the previous count after.

    The count comes back, MKL's dynamic threading does not; training pins that state itself
    (``training.runtime.pin_threads``), so it does not depend on this having run."""
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------- the network


def _mlp(d_in: int, d_hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    drop = [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.ReLU(), *drop, nn.Linear(d_hidden, d_out))


class CGCLayer(nn.Module):
    """Customized Gate Control (Tang et al. 2020, Eq. 1-3): per task k,
    t_k = sum_j g_k(x)_j E_j(x) over task-k experts and shared experts, g_k = softmax(W_k x)."""

    def __init__(self, d_in: int, d_expert: int, n_tasks: int, n_shared: int, n_task: int, dropout: float) -> None:
        super().__init__()
        self.n_tasks, self.n_task = n_tasks, n_task
        self.shared = nn.ModuleList(_mlp(d_in, d_expert, d_expert, dropout) for _ in range(n_shared))
        self.task = nn.ModuleList(_mlp(d_in, d_expert, d_expert, dropout) for _ in range(n_tasks * n_task))
        self.gates = nn.ModuleList(nn.Linear(d_in, n_task + n_shared) for _ in range(n_tasks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # x (B, d_in) -> n_tasks x (B, d_expert)
        shared = [e(x) for e in self.shared]
        out = []
        for k, gate in enumerate(self.gates):
            experts = [self.task[k * self.n_task + j](x) for j in range(self.n_task)] + shared
            stack = torch.stack(experts, dim=1)  # (B, n_task + n_shared, d_expert)
            g = torch.softmax(gate(x), dim=-1).unsqueeze(-1)  # (B, n_task + n_shared, 1)
            out.append((g * stack).sum(dim=1))
        return out


class CGCNet(nn.Module):
    """User MLP + history Transformer -> CGC -> device / field / value towers over device features."""

    def __init__(self, cfg: CGCConfig, n_rooms: int, n_names: int, n_values: int, value_mask: np.ndarray,
                 set_slots: np.ndarray) -> None:
        super().__init__()
        d, e, p = cfg.d_model, cfg.d_expert, cfg.dropout
        self.room = nn.Embedding(n_rooms, d, padding_idx=0)
        self.name = nn.Embedding(n_names, d, padding_idx=0)
        self.fkey = nn.Embedding(len(FIELD_KEYS), d, padding_idx=0)
        self.value = nn.Embedding(n_values, d, padding_idx=0)
        self.dtype_ = nn.Embedding(len(TYPES), d, padding_idx=0)
        self.category = nn.Embedding(len(CATEGORIES), d, padding_idx=0)
        self.fset = nn.Embedding(len(set_slots), d, padding_idx=0)
        self.hist_time = nn.Linear(N_HIST, d)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        layer = nn.TransformerEncoderLayer(d, cfg.n_heads, 2 * d, p, batch_first=True)
        self.history = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.user = _mlp(N_USER, d, d, p)
        self.cgc = CGCLayer(2 * d, e, 3, cfg.n_shared_experts, cfg.n_task_experts, p)
        self.device_enc = _mlp(N_DEV + d, d, e, 0.0)
        self.device_tower = _mlp(2 * e, e, 1, 0.0)
        self.field_tower = _mlp(2 * e + d, e, 1, 0.0)
        self.value_tower = _mlp(2 * e + 2 * d, e, n_values, 0.0)
        self.register_buffer("value_mask", torch.from_numpy(value_mask), persistent=False)
        self.register_buffer("set_slots", torch.from_numpy(set_slots), persistent=False)

    def encode(self, b: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Task representations 3 x (B, e) and device encodings (B, D, e)."""
        hi = b["hist_ix"]
        tok = self.room(hi[..., 0]) + self.name(hi[..., 1]) + self.fkey(hi[..., 2]) + self.value(hi[..., 3])
        tok = tok + self.hist_time(b["hist_x"])  # (B, H, d)
        cls = self.cls.expand(tok.shape[0], 1, -1)
        seq = torch.cat([cls, tok], dim=1)  # (B, 1 + H, d)
        pad = torch.cat([torch.zeros_like(b["hist_mask"][:, :1]), ~b["hist_mask"]], dim=1)
        hist = self.history(seq, src_key_padding_mask=pad)[:, 0]  # (B, d) CLS output
        tasks = self.cgc(torch.cat([self.user(b["user"]), hist], dim=-1))
        di = b["dev_ix"]
        emb = (self.room(di[..., 0]) + self.name(di[..., 1]) + self.dtype_(di[..., 2]) + self.category(di[..., 3])
               + self.fkey(di[..., 4]) + self.value(di[..., 5]))  # (B, D, d)
        dev = self.device_enc(torch.cat([b["dev_x"], emb], dim=-1))  # (B, D, e)
        return tasks, dev

    def device_logp(self, t: torch.Tensor, dev: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, D) log p(device), masked to the home's devices."""
        x = torch.cat([t.unsqueeze(1).expand(-1, dev.shape[1], -1), dev], dim=-1)
        logits = self.device_tower(x).squeeze(-1).masked_fill(~mask, -1e9)
        return torch.log_softmax(logits, dim=-1)

    def field_logp(self, t: torch.Tensor, dev: torch.Tensor, sets: torch.Tensor) -> torch.Tensor:
        """(..., M) log p(field set | device); dev (..., e), sets (..., M) set ids, t broadcast to dev."""
        x = torch.cat([t.expand(*dev.shape[:-1], -1).unsqueeze(-2).expand(*sets.shape, -1),
                       dev.unsqueeze(-2).expand(*sets.shape, -1), self.fset(sets)], dim=-1)
        logits = self.field_tower(x).squeeze(-1).masked_fill(sets == 0, -1e9)
        return torch.log_softmax(logits, dim=-1)

    def value_logp(self, t: torch.Tensor, dev: torch.Tensor, fk: torch.Tensor, fset: torch.Tensor) -> torch.Tensor:
        """(..., V) log p(value | device, field set, field); dev (..., e), fk/fset (...) ids, t broadcast."""
        x = torch.cat([t.expand(*dev.shape[:-1], -1), dev, self.fkey(fk), self.fset(fset)], dim=-1)
        logits = self.value_tower(x).masked_fill(~self.value_mask[fk], -1e9)
        return torch.log_softmax(logits, dim=-1)

    def loss(self, b: dict[str, torch.Tensor], dev_y: torch.Tensor, set_y: torch.Tensor,
             value_y: torch.Tensor) -> torch.Tensor:
        """Sum of the three tasks' cross-entropies, teacher-forced on the label's device and field set.

        dev_y (B,) device index; set_y (B,) position among the device's field sets; value_y (B, S)
        value index per field slot, -100 on slots outside the set."""
        (t_d, t_f, t_v), dev = self.encode(b)
        nll_d = -self.device_logp(t_d, dev, b["dev_mask"]).gather(1, dev_y[:, None]).squeeze(1)
        rows = torch.arange(dev.shape[0])
        dev_true = dev[rows, dev_y]  # (B, e)
        sets = b["dev_sets"][rows, dev_y]  # (B, M)
        nll_f = -self.field_logp(t_f, dev_true, sets).gather(1, set_y[:, None]).squeeze(1)
        s = value_y.shape[1]
        set_id = sets.gather(1, set_y[:, None]).expand(-1, s)  # (B, S)
        dev_s = dev_true.unsqueeze(1).expand(-1, s, -1)  # (B, S, e)
        lp_v = self.value_logp(t_v.unsqueeze(1), dev_s, b["slot_fk"][rows, dev_y], set_id)  # (B, S, V)
        nll_v = nn.functional.nll_loss(lp_v.flatten(0, 1), value_y.flatten(), ignore_index=-100,
                                       reduction="none").view(-1, s).sum(1)
        return (nll_d + nll_f + nll_v).mean()

    def task_logp(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(device) (B, D), log p(field set | device) (B, D, M), log p(value | device, set, field)
        (B, D, M, S, V)."""
        (t_d, t_f, t_v), dev = self.encode(b)
        lp_d = self.device_logp(t_d, dev, b["dev_mask"])
        lp_f = self.field_logp(t_f.unsqueeze(1), dev, b["dev_sets"])
        s = b["slot_fk"].shape[-1]
        shape = (*b["dev_sets"].shape, s)  # (B, D, M, S)
        dev_ms = dev[:, :, None, None, :].expand(*shape, -1)
        fk = b["slot_fk"].unsqueeze(2).expand(shape)
        fset = b["dev_sets"].unsqueeze(-1).expand(shape)
        lp_v = self.value_logp(t_v[:, None, None, None, :], dev_ms, fk, fset)
        return lp_d, lp_f, lp_v


# ---------------------------------------------------------------- the recommender


@dataclass(frozen=True)
class CGCPrediction:
    """The recommended actions and their confidence (module docstring: product of softmax probabilities)."""

    actions: tuple[Action, ...]
    confidence: float


@dataclass(frozen=True)
class TaskProbs:
    """One context's task probabilities over its D candidate devices, M field sets and S field slots."""

    devices: tuple[tuple[str, str], ...]  # (D,) candidate (room, device), prompt order
    p_device: np.ndarray  # (D,) p(device)
    p_set: np.ndarray  # (D, M) p(field set | device), 0 on padding
    set_ids: np.ndarray  # (D, M) field-set ids (vocab), 0 = padding
    value: np.ndarray  # (D, M, S) argmax value index per (device, set, slot)
    p_value: np.ndarray  # (D, M, S) its probability


def decode(tp: TaskProbs, types: Types, vocab: Vocab, set_slots: np.ndarray,
           device_threshold: float | None) -> CGCPrediction:
    """Actions and confidence from task probabilities (module docstring, Prediction)."""
    in_set = set_slots[tp.set_ids]  # (D, M, S) bool
    p_vals = np.where(in_set, tp.p_value, 1.0).prod(axis=-1)  # (D, M) product over the set's fields
    joint = tp.p_device[:, None] * tp.p_set * p_vals  # (D, M)
    d1, m1 = np.unravel_index(int(np.argmax(joint)), joint.shape)
    chosen = [(int(d1), int(m1))]
    if device_threshold is not None:
        chosen += [(int(d), int(np.argmax(joint[d]))) for d in np.argsort(-tp.p_device, kind="stable")
                   if d != d1 and tp.p_device[d] >= device_threshold]
    actions: list[Action] = []
    for d, m in chosen:
        room, device = tp.devices[d]
        names = list(DEVICE_TYPES[types[(room, device)]].fields)
        for slot in np.flatnonzero(in_set[d, m]):  # catalogue field order: power before its settings
            actions.append(Action(room, device, names[slot], vocab.values[int(tp.value[d, m, slot])]))
    return CGCPrediction(tuple(actions), float(min(joint[d1, m1], 1.0)))


WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE = "model.safetensors", "config.json", "vocab.json"


class CGCModel:
    """A trained CGC baseline: ``predict(prompt, types)`` -> ``CGCPrediction``; ``save``/``load``
    write and read ``model.safetensors`` + ``config.json`` + ``vocab.json`` (no pickle)."""

    name = "cgc"

    def __init__(self, config: CGCConfig, vocab: Vocab, net: CGCNet | None = None, stats: dict | None = None) -> None:
        self.config, self.vocab = config, vocab
        self.set_slots = vocab.set_slots()
        self.net = net if net is not None else CGCNet(config, len(vocab.rooms), len(vocab.names), len(vocab.values),
                                                      vocab.value_mask(), self.set_slots)
        self.stats = dict(stats or {})

    def featurize(self, contexts: Sequence[tuple[Prompt, Types]]) -> Features:
        return featurize(contexts, self.vocab, self.config.history_actions)

    def task_probs(self, contexts: Sequence[tuple[Prompt, Types]], batch_size: int = 32) -> list[TaskProbs]:
        """Per-context task probabilities (eval mode, no grad; batches bound the (B, D, M, S, V) tensor)."""
        out: list[TaskProbs] = []
        with torch_threads(self.config.num_threads), torch.no_grad():
            self.net.eval()
            for start in range(0, len(contexts), batch_size):
                feats = self.featurize(contexts[start:start + batch_size])
                lp_d, lp_f, lp_v = self.net.task_logp(feats.tensors())
                p_d, p_f = lp_d.exp().numpy(), lp_f.exp().numpy()
                best_lp, best = lp_v.max(dim=-1)  # (B, D, M, S)
                p_v, best = best_lp.exp().numpy(), best.numpy()
                for i, devs in enumerate(feats.devices):
                    n = len(devs)
                    out.append(TaskProbs(devs, p_d[i, :n], p_f[i, :n], feats.dev_sets[i, :n], best[i, :n], p_v[i, :n]))
        return out

    def predict_batch(self, contexts: Sequence[tuple[Prompt, Types]], batch_size: int = 32) -> list[CGCPrediction]:
        """Recommended actions and confidence per (prompt, types) context."""
        return [decode(tp, types, self.vocab, self.set_slots, self.config.device_threshold)
                for tp, (_, types) in zip(self.task_probs(contexts, batch_size), contexts, strict=True)]

    def predict(self, prompt: Prompt, types: Types) -> CGCPrediction:
        return self.predict_batch([(prompt, types)])[0]

    def save(self, out_dir: str | Path) -> Path:
        from safetensors.torch import save_file

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: t.contiguous() for k, t in self.net.state_dict().items()}, str(out / WEIGHTS_FILE))
        (out / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        (out / VOCAB_FILE).write_text(json.dumps({**self.vocab.to_json(), "stats": self.stats}, indent=2) + "\n")
        return out

    @classmethod
    def load(cls, model_dir: str | Path) -> CGCModel:
        from safetensors.torch import load_file

        d = Path(model_dir)
        for name in (WEIGHTS_FILE, CONFIG_FILE, VOCAB_FILE):
            if not (d / name).is_file():
                raise FileNotFoundError(f"CGC model file missing: {d / name}")
        config = CGCConfig(**json.loads((d / CONFIG_FILE).read_text()))
        raw = json.loads((d / VOCAB_FILE).read_text())
        if raw.get("field_keys") != list(FIELD_KEYS):
            raise ValueError(f"{d / VOCAB_FILE}: field keys differ from the current catalogue; retrain the model")
        model = cls(config, Vocab(raw["rooms"], raw["names"], raw["values"], raw["field_sets"]),
                    stats=raw.get("stats"))
        model.net.load_state_dict(load_file(str(d / WEIGHTS_FILE)))
        model.net.eval()
        return model
