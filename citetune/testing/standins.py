"""Local stand-ins of real checkpoint families: random weights, small sizes, and the tokenizer
conventions that matter to fine-tuning — special tokens, bos handling, pad (or none), generation eos
ids and the chat template's shape (no system role, end-of-turn tokens other than eos, no template).

They let the train → evaluate path be tested on what Qwen2.5, Llama 3, Gemma, Mistral and a plain
base model do differently, without the hub.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

QWEN_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if message['role'] != 'system' %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
LLAMA3_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
GEMMA_TEMPLATE = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)


@dataclass(frozen=True)
class Family:
    architecture: str            # the transformers config class, e.g. "Qwen2Config"
    bos: str | None
    eos: str
    pad: str | None
    template: str | None
    extra_special: tuple[str, ...] = ()
    generation_eos: tuple[str, ...] = ()   # generation_config.eos_token_id, as the checkpoints ship it
    adds_bos: bool = False       # the tokenizer puts bos in front of every encoded text
    config: dict = field(default_factory=dict)


FAMILIES = {
    "qwen2.5": Family("Qwen2Config", None, "<|im_end|>", "<|endoftext|>", QWEN_TEMPLATE,
                      ("<|im_start|>",), ("<|im_end|>", "<|endoftext|>")),
    "llama3": Family("LlamaConfig", "<|begin_of_text|>", "<|eot_id|>", None, LLAMA3_TEMPLATE,
                     ("<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>"),
                     ("<|end_of_text|>", "<|eot_id|>"), adds_bos=True),
    "gemma": Family("GemmaConfig", "<bos>", "<eos>", "<pad>", GEMMA_TEMPLATE,
                    ("<start_of_turn>", "<end_of_turn>"), ("<eos>", "<end_of_turn>"), adds_bos=True,
                    config={"head_dim": 16}),
    "mistral": Family("MistralConfig", "<s>", "</s>", None, MISTRAL_TEMPLATE, ("<unk>",), ("</s>",),
                      adds_bos=True),
    # A plain pretrained LM (Pythia, Llama 2 base and the like): no chat template, no pad token, bos = eos.
    "plain": Family("LlamaConfig", "<|endoftext|>", "<|endoftext|>", None, None),
}


def _tokenizer(family: Family, texts: list[str], vocab_size: int):
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    specials = list(dict.fromkeys(t for t in (family.pad, family.bos, family.eos, *family.extra_special) if t))
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if family.adds_bos:
        tok.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A", pair=f"{family.bos} $A {family.bos} $B",
            special_tokens=[(family.bos, tok.token_to_id(family.bos))])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=family.bos, eos_token=family.eos, pad_token=family.pad,
        additional_special_tokens=[t for t in family.extra_special if t not in (family.bos, family.eos, family.pad)],
        clean_up_tokenization_spaces=False)
    if family.template:
        wrapped.chat_template = family.template
    return wrapped


def build_standin(name: str, out_dir: str | Path, texts: list[str], vocab_size: int = 1200,
                  hidden_size: int = 64, layers: int = 2, seed: int = 0, initializer_range: float = 0.3) -> Path:
    """Save a randomly initialised stand-in of family `name` (see FAMILIES) with its tokenizer.

    The weights are wider than a fresh model's (initializer_range): a trained checkpoint's tied embeddings
    give confident logits, which a LoRA adapter on a 0.02-wide random one could never reach."""
    import transformers
    from transformers import AutoModelForCausalLM, GenerationConfig

    family = FAMILIES[name]
    tokenizer = _tokenizer(family, texts, vocab_size)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (family.bos, family.eos, family.pad) if t}
    config_class = getattr(transformers, family.architecture)
    sizes = {"hidden_size": hidden_size, "intermediate_size": hidden_size * 2, "num_hidden_layers": layers,
             "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 1024}
    config = config_class(vocab_size=len(tokenizer), bos_token_id=ids.get(family.bos),
                          eos_token_id=ids[family.eos], pad_token_id=ids.get(family.pad),
                          tie_word_embeddings=True, initializer_range=initializer_range, **sizes, **family.config)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    eos = [tokenizer.convert_tokens_to_ids(t) for t in family.generation_eos] or ids[family.eos]
    model.generation_config = GenerationConfig(bos_token_id=ids.get(family.bos), eos_token_id=eos,
                                               pad_token_id=ids.get(family.pad))
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


# Encoder-decoders: T5 (a SentencePiece-style unigram vocabulary, eos appended to every input, pad = the
# decoder's start) and LED (BART's byte-level BPE, <s> ... </s> around every input, decoder start = eos,
# and a summarisation generation config: beams, n-gram blocking, a forced first token).
SEQ2SEQ = ("t5", "led")


def _unigram_tokenizer(texts: list[str], vocab_size: int, line_breaks: bool = True):
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    # Unlike T5's own vocabulary this one writes line breaks (unless told not to, as T5's): an answer cites
    # one work per line.
    if not line_breaks:
        tok.normalizer = normalizers.Replace("\n", " ")
    tok.train_from_iterator(texts, trainer=trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>",
        initial_alphabet=["\n"] if line_breaks else [], show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", tok.token_to_id("</s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                   clean_up_tokenization_spaces=False)


def _bart_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import processors

    tokenizer = _tokenizer(Family("LEDConfig", "<s>", "</s>", "<pad>", None, ("<unk>",)), texts, vocab_size)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    return tokenizer


def build_seq2seq_standin(name: str, out_dir: str | Path, texts: list[str], vocab_size: int = 1200,
                          d_model: int = 64, layers: int = 2, seed: int = 0, init: float = 0.3,
                          line_breaks: bool = True) -> Path:
    """Save a randomly initialised encoder-decoder stand-in, 't5' or 'led' (see SEQ2SEQ), with its tokenizer;
    a T5 one without line_breaks has none in its vocabulary, as T5's own has none.

    As with build_standin, the weights start wider than a fresh model's (LED's init_std, T5's
    initializer_factor) so that a few LoRA steps can make the logits confident."""
    from transformers import (
        GenerationConfig,
        LEDConfig,
        LEDForConditionalGeneration,
        T5Config,
        T5ForConditionalGeneration,
    )

    torch.manual_seed(seed)
    if name == "t5":
        tokenizer = _unigram_tokenizer(texts, vocab_size, line_breaks)
        pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id
        config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_kv=d_model // 4, d_ff=d_model * 2,
                          num_layers=layers, num_decoder_layers=layers, num_heads=4, pad_token_id=pad,
                          eos_token_id=eos, decoder_start_token_id=pad, initializer_factor=init / 0.3)
        model = T5ForConditionalGeneration(config)
        generation = GenerationConfig(decoder_start_token_id=pad, eos_token_id=eos, pad_token_id=pad)
    elif name == "led":
        tokenizer = _bart_tokenizer(texts, vocab_size)
        bos, pad, eos = tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id
        config = LEDConfig(vocab_size=len(tokenizer), d_model=d_model, encoder_layers=layers, decoder_layers=layers,
                           encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=d_model * 2,
                           decoder_ffn_dim=d_model * 2, attention_window=[16] * layers,
                           max_encoder_position_embeddings=1024, max_decoder_position_embeddings=512,
                           pad_token_id=pad, bos_token_id=bos, eos_token_id=eos, decoder_start_token_id=eos,
                           init_std=init)
        model = LEDForConditionalGeneration(config)
        generation = GenerationConfig(decoder_start_token_id=eos, bos_token_id=bos, eos_token_id=eos,
                                      pad_token_id=pad, forced_bos_token_id=bos, num_beams=4,
                                      no_repeat_ngram_size=3, min_length=8, length_penalty=2.0,
                                      early_stopping=True)
    else:
        raise ValueError(f"no encoder-decoder stand-in {name!r}: one of {', '.join(SEQ2SEQ)}")
    model.generation_config = generation
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
