"""The base model and its tokenizer, loaded for training and evaluation, 4-bit or not (the base stage gets
the model: base_source.py, tiny_model.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from citetune.base_source import BASE_RECORD
from citetune.chat import CHAT_TEMPLATE, settle_template
from citetune.errors import StageError

log = logging.getLogger(__name__)

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


def is_encoder_decoder(path: str | Path) -> bool:
    """Whether the checkpoint in `path` is an encoder-decoder (T5, LED, BART) rather than a causal LM."""
    from transformers import AutoConfig

    return bool(getattr(AutoConfig.from_pretrained(path), "is_encoder_decoder", False))


def settle_base_template(base_dir: str | Path, override: str = "") -> bool:
    """Give the base in `base_dir` the chat template it is trained and asked with (base.chat_template, its
    own, or citetune's for a model without one), saved with its tokenizer; True when it changed.
    An encoder-decoder gets none: it reads its prompt as plain text (chat.encoder_prompt)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
    except (OSError, ValueError) as e:
        raise StageError(f"the base model in {base_dir} has no tokenizer transformers can load ({e}): a base "
                         "model needs its tokenizer files beside its weights") from e
    if is_encoder_decoder(base_dir):
        if override:
            log.warning("base.chat_template is not used: the base model in %s is an encoder-decoder", base_dir)
        return False
    changed = settle_template(tokenizer, override, where=f"the base model in {base_dir}")
    if changed:
        tokenizer.save_pretrained(base_dir)
    return changed


def quantization_config(quantization: str, device: str):
    """NF4 4-bit (QLoRA) config, computing in bfloat16 on CUDA and float32 on CPU; None for 'none'."""
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
    )


def base_reference(base_dir: str | Path) -> tuple[str, str | None]:
    """(name or path, revision) an adapter should name as its base so that it loads from anywhere: the
    hub id and commit of a hub base, the absolute path of a local checkpoint, else `base_dir` itself
    (the tiny model, relative to the project, which is where DVC runs the stages)."""
    path = Path(base_dir) / BASE_RECORD
    info = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    if info.get("source") == "hub":
        return info["hub_id"], info.get("commit") or info.get("revision")
    if info.get("source") == "local":
        return info["path"], None
    return str(base_dir), None


def adapter_card(base: str, revision: str | None, modes: list[str], auto_class: str = "AutoPeftModelForCausalLM"
                 ) -> str:
    """A model card for the adapter: what it is, its base, and how to load it outside citetune."""
    from huggingface_hub import ModelCard, ModelCardData

    pipeline = "text2text-generation" if "Seq2Seq" in auto_class else "text-generation"
    data = ModelCardData(base_model=base, library_name="peft", pipeline_tag=pipeline,
                         tags=["lora", "citetune", "citations"])
    revision_arg = f", revision={revision!r}" if revision else ""
    body = f"""# citetune adapter

A LoRA adapter that answers a scientific claim with the works that support it (title, year, DOI),
or says that no verified work does. Trained by citetune's train stage on modes: {", ".join(modes)}.

- base model: `{base}`{f" at revision `{revision}`" if revision else ""}
- the tokenizer saved here carries the chat template it was trained with; use it for prompts.

```python
from peft import {auto_class}
from transformers import AutoTokenizer

model = {auto_class}.from_pretrained("path/to/this/adapter")  # fetches {base!r}{revision_arg}
tokenizer = AutoTokenizer.from_pretrained("path/to/this/adapter")
```
"""
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def require_adapter(adapter_dir: str | Path) -> Path:
    """`adapter_dir` when it holds an adapter, or a fully fine-tuned model (train.peft: full)."""
    adapter_dir = Path(adapter_dir)
    if not any((adapter_dir / name).exists() for name in ("adapter_config.json", "config.json")):
        raise StageError(f"no adapter in {adapter_dir}: run the train stage first (dvc repro train)")
    return adapter_dir


def load_tuned(base_model, adapter_dir: str | Path, quantization: str = "none", device: str | None = None):
    """The tuned model: `base_model` with the adapter in `adapter_dir`, or the fully fine-tuned model there."""
    from peft import PeftModel

    if (Path(adapter_dir) / "adapter_config.json").exists():
        return PeftModel.from_pretrained(base_model, str(adapter_dir))
    return load_base(adapter_dir, quantization, device)


def require_base(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "config.json").exists():
        raise StageError(f"no base model in {path}: run the base stage first (dvc repro base)")
    return path


def load_base(path: str | Path, quantization: str = "none", device: str | None = None):
    """Load the base model from `path` (models/base), a causal LM or an encoder-decoder, quantized to 4-bit
    NF4 if asked."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    device = device or pick_device()
    path = require_base(path)
    kwargs = {"dtype": torch.bfloat16 if device == "cuda" else torch.float32}
    qconfig = quantization_config(quantization, device)
    if device == "cuda":  # under accelerate launch, each process on its own GPU
        from accelerate import PartialState

        device = f"cuda:{PartialState().local_process_index}"
    if qconfig is not None:
        kwargs.update(quantization_config=qconfig, device_map={"": device})
    try:
        auto = AutoModelForSeq2SeqLM if is_encoder_decoder(path) else AutoModelForCausalLM
        model = auto.from_pretrained(path, **kwargs)
    except (ImportError, RuntimeError, ValueError) as e:
        if qconfig is None:
            raise
        raise StageError(f"bitsandbytes could not load the model in 4-bit on {device}: {e}. "
                         "Set train.quantization: none to train LoRA on the full-precision model") from e
    if qconfig is None:
        return model.to(device)
    try:  # some builds load 4-bit weights but have no kernel to multiply them on this device
        with torch.no_grad():
            one = torch.tensor([[model.config.bos_token_id or 0]], device=device)
            model(input_ids=one, **({"decoder_input_ids": one} if model.config.is_encoder_decoder else {}))
    except (RuntimeError, NotImplementedError) as e:
        raise StageError(f"bitsandbytes cannot run 4-bit layers on {device}: {e}. "
                         "Set train.quantization: none to train LoRA on the full-precision model") from e
    return model
