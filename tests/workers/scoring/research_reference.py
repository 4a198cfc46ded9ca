"""Independent batch-1 re-implementations of the three research repositories' scoring scripts.

Each function follows its script step by step, on a separately loaded model with full logits, one text per
forward pass, transformers' own `labels` loss, and `tokenizer.encode(..., truncation=True, max_length=...)`:
- cherry: tianyi-lab/Cherry_LLM cherry_seletion/data_analysis.py (--mod cherry --prompt alpaca) then
  put_ifd_score.py, which turns its per-token loss lists into `ifd_score` (the loss ratio) or NaN;
- reflection: tianyi-lab/Reflection_Tuning selection_code/data_analysis.py (defaults: --prompt vicuna) then
  put_analysis_to_data.py (ifd_ppl, rifd_ppl, ifd_loss);
- superfiltering: tianyi-lab/Superfiltering code_ifd/data_analysis.py (--prompt none) then
  put_analysis_to_data.py (ifd_ppl).
It shares no code with workers/scoring; the prompt strings are typed again from the scripts. A result is
None wherever the script writes NaN, skips the sample or hits its `except` (0 in place of a number). On top
of the scripts' numbers it records the token counts, whether a text was cut, and the L(A|Q) tokens' ranks
from the full logits (1 + the count of strictly greater logits, clipped) for the Rank-Surprisal Ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

ALPACA_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)
VICUNA_INPUT = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: {instruction}\nInput:\n{input} ASSISTANT:"
)
VICUNA_NO_INPUT = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions. USER: {instruction} ASSISTANT:"
)
NONE_INPUT = "{instruction}\n{input}\n"
NONE_NO_INPUT = "{instruction}\n"

Result = dict[str, Any]


class SkippedError(Exception):
    """The script gives NaN, skips the sample, or returns its (0, 0) from `except`."""


def _encode(tokenizer: Any, text: str, max_length: int | None = None) -> list[int]:
    if max_length is None:
        return list(tokenizer.encode(text))
    return list(tokenizer.encode(text, truncation=True, max_length=max_length))


class Run:
    """One forward pass over one text: the script's loss and ppl, plus ranks and NLLs of the scored tokens."""

    def __init__(self, model: Any, ids: list[int], start_token: int, clip: int) -> None:
        if not ids:
            raise SkippedError("empty input: the model call raises")  # their `except: return 0, 0`
        input_ids = torch.tensor([ids])
        labels = input_ids.clone()
        labels[0, :start_token] = -100
        with torch.no_grad():
            outputs = model(input_ids, labels=labels)
        self.loss = outputs.loss.item()
        self.ppl = torch.exp(outputs.loss).item()
        if math.isnan(self.loss):
            raise SkippedError("mean over no tokens")
        logits = outputs.logits[0]
        log_probs = torch.log_softmax(logits.double(), dim=-1)
        targets = torch.tensor(ids[1:])
        # Their per-token list (Cherry LLM): the loss of token i, predicted at i - 1, for i = 1 .. len - 1.
        self.token_losses = (-log_probs[:-1].gather(1, targets[:, None])).squeeze(1).tolist()
        self.positions = list(range(max(start_token, 1), len(ids)))
        rows = logits[[p - 1 for p in self.positions]]
        own = rows.gather(1, torch.tensor([ids[p] for p in self.positions])[:, None])
        ranks = ((rows > own).sum(dim=1) + 1).clamp(max=clip)
        nlls = [self.token_losses[p - 1] for p in self.positions]
        self.rank_mean = float(ranks.double().mean())
        self.rsr = float(ranks.double().sum()) / sum(nlls)


def _whole(model: Any, tokenizer: Any, text: str, max_length: int, clip: int) -> tuple[Run, bool]:
    """`get_perplexity_and_embedding_whole_text`: labels = input_ids."""
    ids = _encode(tokenizer, text, max_length)
    return Run(model, ids, 0, clip), len(ids) < len(_encode(tokenizer, text))


def _part(model: Any, tokenizer: Any, text: str, target: str, max_length: int, clip: int) -> tuple[Run, bool]:
    """`get_perplexity_and_embedding_part_text`: labels before the target's first token are -100."""
    ids = _encode(tokenizer, text, max_length)
    start_index = text.rfind(target)
    start_token = len(_encode(tokenizer, text[:start_index]))
    return Run(model, ids, start_token, clip), len(ids) < len(_encode(tokenizer, text))


def _guarded(score: Callable[[], Result]) -> Result | None:
    try:
        result = score()
    except (SkippedError, ZeroDivisionError):
        return None
    numbers = [v for v in result.values() if isinstance(v, float)]
    return None if any(not math.isfinite(v) for v in numbers) else result


def _ranks(run: Run) -> Result:
    return {"rank_mean": run.rank_mean, "rsr": run.rsr}


def cherry(
    model: Any,
    tokenizer: Any,
    instruction: str,
    response: str,
    input_text: str,
    *,
    max_length: int = 512,
    clip: int = 100,
) -> Result | None:
    """Cherry LLM's ifd_score (loss ratio) and the losses behind it."""

    def score() -> Result:
        # data_analysis.py, --prompt alpaca --mod cherry
        direct_answer_text = "### Response:" + response
        if input_text == "":
            prompt = ALPACA_NO_INPUT.format_map({"instruction": instruction})
        else:
            prompt = ALPACA_INPUT.format_map({"instruction": instruction, "input": input_text})
        whole_text = prompt + response
        instruct_len = len(_encode(tokenizer, prompt, max_length))
        analysis_limit = max_length - instruct_len - 2
        if analysis_limit < 1:
            raise SkippedError("their tokenizer call gets max_length < 1")
        alone, _ = _part(model, tokenizer, direct_answer_text, response, analysis_limit, clip)
        condition, condition_cut = _part(model, tokenizer, whole_text, response, max_length, clip)

        # put_ifd_score.py (same --max_length): re-encodes the bare instruction
        instruct_len_put = len(_encode(tokenizer, instruction, max_length))

        def get_loss_part_text(text: str, limit: int, loss_list_: list[float]) -> tuple[int, np.ndarray]:
            input_ids = _encode(tokenizer, text, limit)
            start_token = len(_encode(tokenizer, text[: text.rfind(response)]))
            end_token_real = len(input_ids)
            return end_token_real - start_token, np.array(loss_list_[start_token - 1 : end_token_real - 1])

        if not max_length - instruct_len_put - 2 > 4:
            raise SkippedError("instruction too long")
        len_1, loss_list_1 = get_loss_part_text(
            direct_answer_text, max_length - instruct_len_put - 2, alone.token_losses
        )
        len_2, loss_list_2 = get_loss_part_text(whole_text, max_length, condition.token_losses)
        if len_1 == 0 or len_2 == 0:
            raise SkippedError("empty span")
        if instruct_len_put + len_1 > max_length:
            raise SkippedError("too long")
        if len(loss_list_1) == 0 or len(loss_list_2) == 0:
            raise SkippedError("mean of an empty slice: NaN")
        mean_1, mean_2 = float(loss_list_1.mean()), float(loss_list_2.mean())
        direct_tokens = len(_encode(tokenizer, direct_answer_text)) - len(_encode(tokenizer, "### Response:"))
        return {
            "nll_response_given_instruction": mean_2,
            "nll_response": mean_1,
            "ppl_response_given_instruction": condition.ppl,
            "ifd_loss_ratio": mean_2 / mean_1,  # ifd_score
            "ifd": condition.ppl / alone.ppl,  # the PPL ratio of data_analysis.py's own ppl values
            "n_response_tokens": len(loss_list_2),
            "n_response_tokens_backward": len(loss_list_1),
            "instruction_truncated": condition_cut or len(loss_list_1) < direct_tokens,
            **_ranks(condition),
        }

    return _guarded(score)


def reflection(
    model: Any,
    tokenizer: Any,
    instruction: str,
    response: str,
    input_text: str,
    *,
    max_length: int = 2048,
    clip: int = 100,
) -> Result | None:
    """Selective Reflection-Tuning's four losses, ifd_ppl, rifd_ppl and ifd_loss."""

    def score() -> Result:
        # selection_code/data_analysis.py, --prompt vicuna (the default)
        if input_text == "":
            prompt = VICUNA_NO_INPUT.format_map({"instruction": instruction})
        else:
            prompt = VICUNA_INPUT.format_map({"instruction": instruction, "input": input_text})
        whole_text = prompt + response
        instruct_len = len(_encode(tokenizer, prompt, max_length))
        instruct_reverse = (
            "Below is the response to an instruction, please guess the corresponding instruction for the given "
            "response.\n" + response + "\nGenerate the instruction for the above response."
        )
        prompt_reverse = VICUNA_NO_INPUT.format_map({"instruction": instruct_reverse})
        whole_text_reverse = prompt_reverse + instruction + input_text
        instruct_reverse_len = len(_encode(tokenizer, prompt_reverse, max_length))
        if response == "":
            raise SkippedError("empty output")
        ins_alone, c1 = _whole(model, tokenizer, instruction + input_text, max_length - instruct_reverse_len + 1, clip)
        out_alone, c2 = _whole(model, tokenizer, response, max_length - instruct_len + 1, clip)
        ins_condition, c3 = _part(model, tokenizer, whole_text_reverse, instruction, max_length, clip)
        out_condition, c4 = _part(model, tokenizer, whole_text, response, max_length, clip)
        # put_analysis_to_data.py
        return {
            "nll_instruction": ins_alone.loss,
            "nll_response_given_instruction": out_condition.loss,
            "nll_response": out_alone.loss,
            "nll_instruction_given_response": ins_condition.loss,
            "ppl_response_given_instruction": out_condition.ppl,
            "ifd": out_condition.ppl / out_alone.ppl,  # ifd_ppl
            "ifd_loss_ratio": out_condition.loss / out_alone.loss,  # ifd_loss
            "rifd": ins_condition.ppl / ins_alone.ppl,  # rifd_ppl
            "n_instruction_tokens": len(ins_alone.positions),
            "n_response_tokens": len(out_condition.positions),
            "n_response_tokens_backward": len(out_alone.positions),
            "n_instruction_tokens_backward": len(ins_condition.positions),
            "instruction_truncated": c1 or c2 or c3 or c4,
            **_ranks(out_condition),
        }

    return _guarded(score)


def superfiltering(
    model: Any,
    tokenizer: Any,
    instruction: str,
    response: str,
    input_text: str,
    *,
    max_length: int = 1024,
    clip: int = 100,
) -> Result | None:
    """Superfiltering's ifd_ppl and the two losses behind it."""

    def score() -> Result:
        # code_ifd/data_analysis.py, --prompt none
        if input_text == "":
            prompt = NONE_NO_INPUT.format_map({"instruction": instruction})
        else:
            prompt = NONE_INPUT.format_map({"instruction": instruction, "input": input_text})
        whole_text = prompt + response
        instruct_len = len(_encode(tokenizer, prompt, max_length))
        if response == "":
            raise SkippedError("empty output")
        out_alone, c1 = _whole(model, tokenizer, response, max_length - instruct_len + 1, clip)
        out_condition, c2 = _part(model, tokenizer, whole_text, response, max_length, clip)
        # put_analysis_to_data.py
        return {
            "nll_response_given_instruction": out_condition.loss,
            "nll_response": out_alone.loss,
            "ppl_response_given_instruction": out_condition.ppl,
            "ifd": out_condition.ppl / out_alone.ppl,  # ifd_ppl
            "ifd_loss_ratio": out_condition.loss / out_alone.loss,
            "n_response_tokens": len(out_condition.positions),
            "n_response_tokens_backward": len(out_alone.positions),
            "instruction_truncated": c1 or c2,
            **_ranks(out_condition),
        }

    return _guarded(score)


RULES = {"cherry": cherry, "reflection": reflection, "superfiltering": superfiltering}
