"""The base model and its tokenizer, loaded for training and evaluation, 4-bit or not (the base stage gets
the model: base_source.py, tiny_model.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from citetune.errors import StageError

log = logging.getLogger(__name__)

# ChatML: every message ends with the eos token, so a trained model stops after its answer, and the
# prompt rendered with add_generation_prompt is a prefix of the full conversation (TRL needs that
# for completion-only loss).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

def pick_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


# --- loading for training and evaluation ---------------------------------------------------

def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def quantization_config(quantization: str, device: str):
    """NF4 4-bit (QLoRA) config, computing in bfloat16 on CUDA and float32 on CPU; None for 'none'."""
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
    )


def require_adapter(adapter_dir: str | Path) -> Path:
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise StageError(f"no adapter in {adapter_dir}: run the train stage first (dvc repro train)")
    return adapter_dir


def load_base(path: str | Path, quantization: str = "none", device: str | None = None):
    """Load the base causal LM from `path` (models/base), quantized to 4-bit NF4 if asked."""
    from transformers import AutoModelForCausalLM

    device = device or pick_device()
    path = Path(path)
    if not (path / "config.json").exists():
        raise StageError(f"no base model in {path}: run the base stage first (dvc repro base)")
    kwargs = {"dtype": torch.bfloat16 if device == "cuda" else torch.float32}
    qconfig = quantization_config(quantization, device)
    if qconfig is not None:
        kwargs.update(quantization_config=qconfig, device_map={"": device})
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (ImportError, RuntimeError, ValueError) as e:
        if qconfig is None:
            raise
        raise StageError(f"bitsandbytes could not load the model in 4-bit on {device}: {e}. "
                         "Set train.quantization: none to train LoRA on the full-precision model") from e
    if qconfig is None:
        return model.to(device)
    try:  # some builds load 4-bit weights but have no kernel to multiply them on this device
        with torch.no_grad():
            model(input_ids=torch.tensor([[model.config.bos_token_id or 0]], device=device))
    except (RuntimeError, NotImplementedError) as e:
        raise StageError(f"bitsandbytes cannot run 4-bit layers on {device}: {e}. "
                         "Set train.quantization: none to train LoRA on the full-precision model") from e
    return model
