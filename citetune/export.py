"""A merged model for deployment: the LoRA adapter folded into its base (PEFT's merge_and_unload), saved
as a plain transformers checkpoint that any server (vLLM, TGI, llama.cpp's converter) loads without PEFT.

The base is loaded in full precision even when the adapter was trained on a 4-bit one (QLoRA): merging
into NF4 weights would round the update away. The merged checkpoint's generation config lists every
end token, so that a server stops where citetune's own generation stops.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

from citetune.answers import ADAPTER_FORMAT
from citetune.errors import StageError
from citetune.generation import end_token_ids
from citetune.io import atomic_dir
from citetune.models import load_base, load_tokenizer, require_adapter
from citetune.training import TRAINED_MODES

log = logging.getLogger(__name__)


def _saved_dtype(model) -> torch.dtype:
    """The dtype the base checkpoint was published in (float32 when it does not say)."""
    dtype = getattr(model.config, "dtype", None) or getattr(model.config, "torch_dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype, None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> dict:
    """Fold the adapter into the base and save model, tokenizer and generation config to out_dir."""
    from peft import PeftModel

    adapter_dir = require_adapter(adapter_dir)
    if not (adapter_dir / "adapter_config.json").exists():
        raise StageError(f"{adapter_dir} holds a fully fine-tuned model (train.peft: full), not an adapter: it is "
                         "already a whole model to deploy; there is nothing to merge")
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    model = load_base(base_dir, "none", "cpu")
    dtype = _saved_dtype(model)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    tokenizer = load_tokenizer(adapter_dir)  # the one it was trained with, chat template included
    merged.generation_config.eos_token_id = end_token_ids(merged, tokenizer)
    merged.generation_config.pad_token_id = tokenizer.pad_token_id
    auto_class = "AutoModelForSeq2SeqLM" if merged.config.is_encoder_decoder else "AutoModelForCausalLM"
    with atomic_dir(out_dir) as tmp:
        merged.to(dtype).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name in (TRAINED_MODES, ADAPTER_FORMAT):
            if (adapter_dir / name).exists():
                shutil.copy2(adapter_dir / name, tmp / name)
        (tmp / "README.md").write_text(
            f"# citetune model (merged)\n\nThe citetune LoRA adapter merged into its base "
            f"`{config.get('base_model_name_or_path')}`"
            f"{' at revision ' + repr(config['revision']) if config.get('revision') else ''} with PEFT's "
            f"merge_and_unload. Load it with `{auto_class}.from_pretrained`"
            f"{'' if merged.config.is_encoder_decoder else ' and prompt it with the chat template of the tokenizer saved here'}"
            ".\n", encoding="utf-8")
    info = {"base": config.get("base_model_name_or_path"), "dtype": str(dtype).removeprefix("torch."),
            "parameters": sum(p.numel() for p in merged.parameters()),
            "end_token_ids": merged.generation_config.eos_token_id}
    log.info("merged %s parameters (%s) -> %s", f"{info['parameters']:,}", info["dtype"], out_dir)
    return info
