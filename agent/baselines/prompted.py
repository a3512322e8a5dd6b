"""Prompted-LLM baseline (the paper's DeepSeek / GPT-4o rows): a general causal LM, zero-shot.

Any local Hugging Face causal LM (a folder written by ``save_pretrained``: ``config.json``,
safetensors weights, its tokenizer) reads ``INSTRUCTION`` followed by the very prompt text the
trained recommenders read (``sim.prompts``), and answers through the same recommender
(``agent.recommender``): candidate scoring over the prompt's plausible action sets
(``training.scoring``) by default, or legal-only greedy/beam decoding (``agent.decoding``). Its
answers are therefore legal and well-formed by construction, like every other LM row; what it
lacks is training on this grammar and these homes.

The model is read from a local path only (``local_files_only``: no model hub at run time); its
confidence is left uncalibrated (no held-out fit: it is a zero-shot row).
"""

from __future__ import annotations

from pathlib import Path

from agent.recommender import Recommender, RecommenderConfig

# The header before the prompt: what the bracketed text is and what answer it wants, in the
# grammar's own words (sim.records), so a general LM has a chance to read it.
INSTRUCTION = (
    "You are a smart-home assistant. The text below describes one home: its recent device operations "
    "(<hist>), the current time (<now>), sensor readings (<env>), its devices with their last known settings "
    "(<devices>) and operations the household usually does around this time (<usual>, most likely last). "
    "Recommend the operation the user is most likely to want now. Answer with <act> followed by one or more "
    "actions written [room][device][field][value], then <desc> and a short description.\n\n"
)
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


class PromptedModelError(ValueError):
    """A ``--prompted-model`` path that is not a local causal LM folder; the message says what is missing."""


def check_model_dir(path: str | Path) -> Path:
    """``path`` as a Path when it holds a ``save_pretrained`` causal LM and its tokenizer, else
    ``PromptedModelError`` naming what is missing. Never looks anything up on a model hub."""
    path = Path(path)
    what = f"--prompted-model {path}"
    if not path.exists():
        raise PromptedModelError(f"{what}: no such folder (a local model folder is needed; HomePilot never "
                                 "downloads models)")
    if not path.is_dir():
        raise PromptedModelError(f"{what}: a file, not a model folder")
    if not (path / "config.json").is_file():
        raise PromptedModelError(f"{what}: no config.json: not a Hugging Face model folder (save one with "
                                 "save_pretrained)")
    if not any((path / w).is_file() for w in WEIGHTS):
        raise PromptedModelError(f"{what}: no model.safetensors (HomePilot loads safetensors weights only)")
    if not any((path / t).is_file() for t in TOKENIZER_FILES):
        raise PromptedModelError(f"{what}: no tokenizer.json or tokenizer_config.json (save the tokenizer next "
                                 "to the model)")
    return path


def load_prompted(path: str | Path, config: RecommenderConfig | None = None) -> Recommender:
    """The recommender around the local causal LM at ``path``, reading ``INSTRUCTION`` + each prompt.

    ``config``: how it answers (default: candidate scoring, no cascade, any history); its
    ``instruction`` is replaced by ``INSTRUCTION``."""
    from dataclasses import replace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = check_model_dir(path)
    config = replace(config or RecommenderConfig(search="candidates", cascade=False, min_history=0),
                     instruction=INSTRUCTION)
    try:
        try:
            from training.tokenizer import load_tokenizer
        except ImportError:  # the agent without the training extra
            tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
        else:
            tokenizer = load_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(str(path), use_safetensors=True, trust_remote_code=False,
                                                     local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        raise PromptedModelError(f"--prompted-model {path}: transformers cannot load a causal LM and its tokenizer "
                                 f"from it ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e})") from None
    if tokenizer.eos_token_id is None:
        raise PromptedModelError(f"--prompted-model {path}: its tokenizer has no eos token (scoring and decoding "
                                 "need one)")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Recommender(model, tokenizer, config)
