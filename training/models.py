"""Model presets (``LlamaConfig``) and loading: from scratch for the domain tokenizer, or any
local Hugging Face causal LM (``--base-model PATH``) with its own tokenizer.

Parameter counts below are with the domain tokenizer (~2.5k tokens) and tied embeddings:

| preset | hidden | layers | heads | mlp  | params | meant for                   |
|--------|--------|--------|-------|------|--------|-----------------------------|
| tiny   | 128    | 4      | 4     | 352  | ~1M    | tests, quickstart (2 CPUs)  |
| small  | 256    | 6      | 8     | 704  | ~5M    | a longer CPU run            |
| base   | 512    | 9      | 8     | 1408 | ~30M   | a GPU                       |

Loading never unpickles: weights are read from safetensors only (``use_safetensors=True``) and
``trust_remote_code`` is always off.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class ModelPreset:
    """Shape of a from-scratch Llama."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 1024


PRESETS: dict[str, ModelPreset] = {
    "tiny": ModelPreset(128, 4, 4, 352),
    "small": ModelPreset(256, 6, 8, 704),
    "base": ModelPreset(512, 9, 8, 1408),
}


def preset(name: str) -> ModelPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; allowed: {', '.join(PRESETS)}") from None


def llama_config(name: str, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """The ``LlamaConfig`` of preset ``name`` sized to ``tokenizer``'s vocabulary."""
    p = preset(name)
    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=p.hidden_size, num_hidden_layers=p.num_hidden_layers,
        num_attention_heads=p.num_attention_heads, num_key_value_heads=p.num_attention_heads,
        intermediate_size=p.intermediate_size, max_position_embeddings=p.max_position_embeddings,
        rms_norm_eps=1e-5, tie_word_embeddings=True, attention_dropout=0.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )


def build_model(name: str, tokenizer: PreTrainedTokenizerBase, seed: int) -> LlamaForCausalLM:
    """A randomly initialised Llama of preset ``name``; the weights depend only on ``seed``."""
    cfg = llama_config(name, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def load_model(path: str | Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """A causal LM saved with ``save_pretrained`` (safetensors only, no remote code)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"no model in {path}: expected config.json and model.safetensors")
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, use_safetensors=True, trust_remote_code=False)


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
