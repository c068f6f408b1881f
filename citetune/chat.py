"""Chat templates as the model families write them: the fallback for a base model without one, the
checks that a template can teach a model to stop, and prompts for templates without a system role.

What fine-tuning needs from a template: the prompt rendered with `add_generation_prompt` is a prefix
of the whole conversation (TRL computes the loss on what follows it), and the assistant's turn ends
with a special token the model can learn to write and generation can stop on.
"""

from __future__ import annotations

from citetune.errors import StageError

# ChatML-style turns that end with the tokenizer's own eos: a base model with no template of its own
# learns to end its answer with the token generation stops on. (The tiny model's eos is <|im_end|>,
# so for it this is exactly ChatML.)
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SENTINEL = "\x00answer\x00"
_SYSTEM_PROBE = "\x00system\x00"


def _special_ids(tokenizer) -> set[int]:
    return set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}) or {})


def template_end_token(tokenizer) -> int | None:
    """The special token the chat template writes right after an assistant's message, if any."""
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": _SENTINEL}], tokenize=False)
    except Exception:  # a template that refuses this conversation: no end-of-turn token to learn
        return None
    suffix = text.split(_SENTINEL, 1)[-1] if _SENTINEL in text else ""
    ids = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix.strip() else []
    return ids[0] if ids and ids[0] in _special_ids(tokenizer) else None


_TAKES_SYSTEM: dict[str, bool] = {}  # by template text: rendering it is all the answer depends on


def _takes_system(tokenizer) -> bool:
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": _SYSTEM_PROBE}, {"role": "user", "content": "q"}], tokenize=False)
    except Exception:  # Gemma's and early Mistral's templates raise on a system message
        return False
    return _SYSTEM_PROBE in text  # some templates drop it without a word


def takes_system(tokenizer) -> bool:
    """Whether the tokenizer's chat template renders a system message."""
    template = tokenizer.chat_template or ""
    if template not in _TAKES_SYSTEM:
        _TAKES_SYSTEM[template] = _takes_system(tokenizer)
    return _TAKES_SYSTEM[template]


def fit_messages(tokenizer, messages: list[dict]) -> list[dict]:
    """`messages` as the template can render them: a system message its template has no place for is
    put at the head of the first user message, as these families' own docs advise."""
    if not messages or messages[0].get("role") != "system" or takes_system(tokenizer):
        return messages
    system, rest = messages[0]["content"], list(messages[1:])
    first_user = next((i for i, m in enumerate(rest) if m.get("role") == "user"), None)
    if first_user is None:
        return [{"role": "user", "content": system}] + rest
    rest[first_user] = {**rest[first_user], "content": f"{system}\n\n{rest[first_user]['content']}"}
    return rest


def render_prompt(tokenizer, messages: list[dict]) -> str:
    """The prompt text a model answers: the conversation so far and the assistant's turn opened."""
    return tokenizer.apply_chat_template(fit_messages(tokenizer, messages), tokenize=False,
                                         add_generation_prompt=True)


def encoder_prompt(messages: list[dict]) -> str:
    """The text an encoder-decoder reads (it has no chat template): the prompt's turns, the system prompt
    first, as plain text."""
    return "\n\n".join(m["content"].strip() for m in messages if m.get("content"))


def check_template(tokenizer, where: str = "the base model") -> None:
    """Raise a StageError when the template cannot teach the model to stop, saying what to set."""
    conversation = fit_messages(tokenizer, [
        {"role": "system", "content": "s"}, {"role": "user", "content": "q"},
        {"role": "assistant", "content": _SENTINEL}])
    try:
        prompt = tokenizer.apply_chat_template(conversation[:-1], tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(conversation, tokenize=False)
    except Exception as e:
        raise StageError(f"the chat template of {where} cannot render a system/user/assistant conversation "
                         f"({type(e).__name__}: {e}): set base.chat_template to a template that can") from e
    if not full.startswith(prompt):
        raise StageError(f"the chat template of {where} renders a prompt that is not the start of the whole "
                         "conversation, so the loss cannot be put on the answer alone: set base.chat_template")
    if template_end_token(tokenizer) is None:
        raise StageError(f"the chat template of {where} ends the assistant's turn with no special token, so "
                         "the model would never learn to stop: set base.chat_template to one whose assistant "
                         "turn ends with an end token of the tokenizer (its eos, for instance)")


def settle_template(tokenizer, override: str = "", where: str = "the base model") -> bool:
    """Give `tokenizer` the chat template it will be trained with; True when it was changed.

    `override` (base.chat_template) wins; otherwise the model's own; a model without one gets
    CHAT_TEMPLATE, which needs an eos token to end the assistant's turn."""
    before = tokenizer.chat_template
    if override:
        tokenizer.chat_template = override
    elif not tokenizer.chat_template:
        if tokenizer.eos_token is None:
            raise StageError(f"{where} has neither a chat template nor an eos token, so no answer could teach "
                             "it to stop: set base.chat_template to a Jinja chat template whose assistant "
                             "turn ends with a special token of its tokenizer")
        tokenizer.chat_template = CHAT_TEMPLATE
    check_template(tokenizer, where)
    return tokenizer.chat_template != before
