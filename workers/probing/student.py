"""A fresh, trainable copy of a student checkpoint: fully trainable when small, a LoRA adapter (peft) when large.

The checkpoint passes the scoring engine's own checks first (core.checkpoint: local safetensors only, never
remote code). Every probe loads its own copy from disk, so no run sees another's updates.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.pytorch_utils import Conv1D

from core.checkpoint import CheckpointError, CheckpointInfo, inspect_checkpoint
from workers.probing.training import name_causal_lm_loss
from workers.scoring.student import resolve_device

Method = Literal["full", "lora"]

# Above this many parameters a probe trains a LoRA adapter rather than the whole student. A full fine-tune
# holds the weights, their gradients and AdamW's two moments in float32, 16 bytes a parameter: at 400M that
# is about 6.4 GB before activations, comfortable on one GPU, while a 7B student would need over 110 GB.
LORA_ABOVE_PARAMS = 400_000_000
# Rank 16 with alpha 32 (a scale of 2) is a common instruction-tuning setting: enough capacity for a short
# probe to move the answers, at a fraction of a percent of the weights. Every condition of a probe gets the
# same adapter, so what the comparison needs is that the choice is fixed, not that it is optimal.
LORA_RANK = 16
LORA_ALPHA = 32
# A mixture-of-experts router is a Linear too, but adapting it changes which experts run rather than what
# they compute; probes adapt the attention and MLP projections only.
_NOT_ADAPTED = frozenset({"gate", "router"})


@dataclass(frozen=True, slots=True)
class TrainableStudent:
    """A loaded copy of a student, ready to train: its model, tokenizer, and how it trains."""

    model: Any
    tokenizer: Any
    device: torch.device
    max_length: int
    method: Method
    # The student's own parameters, and those the optimiser updates (all of them, or the adapter's).
    parameters: int
    trainable_parameters: int


# The peak learning rate of a short full fine-tune of a model 64 wide (the experiment's students), scaled by
# 64 / width for wider ones: Adam's best learning rate falls about inversely with width (muP, Yang et al. 2022,
# arXiv 2203.03466), so GPT-2 small (768) gets 2.5e-4. A LoRA adapter trains at 2e-4, QLoRA's rate for 7B-65B
# models (Dettmers et al. 2023, arXiv 2305.14314).
FULL_LR_AT_WIDTH_64 = 3e-3
LORA_LR = 2e-4


def probe_learning_rate(model: Any, method: Method) -> float:
    """The peak learning rate a probe uses when its budget names none: by method, and by width for full tunes."""
    if method == "lora":
        return LORA_LR
    config = getattr(model, "config", None)
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None) or 64
    return FULL_LR_AT_WIDTH_64 * min(1.0, 64 / int(width))


def checkpoint_parameters(info: CheckpointInfo) -> int:
    """The parameter count stored in a checkpoint's safetensors files, read from their headers only."""
    from safetensors import safe_open

    total = 0
    for name in info.weight_files:
        with safe_open(str(Path(info.path) / name), framework="pt") as weights:
            for key in weights.keys():  # noqa: SIM118 (a safetensors handle is not a mapping)
                total += math.prod(weights.get_slice(key).get_shape())
    return total


def lora_target_modules(model: torch.nn.Module) -> list[str]:
    """Names of the projection layers a LoRA adapter wraps: every Linear / Conv1D but the output head and routers.

    Read from the model rather than listed per architecture, so any causal LM transformers loads is covered
    (q_proj ... down_proj for Llama-like students, c_attn / c_proj / c_fc for GPT-2).
    """
    head = model.get_output_embeddings() if isinstance(model, PreTrainedModel) else None
    names: set[str] = set()
    for qualified, module in model.named_modules():
        if module is head or not isinstance(module, torch.nn.Linear | Conv1D):
            continue
        leaf = qualified.rsplit(".", 1)[-1]
        if leaf not in _NOT_ADAPTED:
            names.add(leaf)
    return sorted(names)


def load_trainable_student(
    student_dir: str | Path, *, device: str = "auto", lora_above_params: int | None = LORA_ABOVE_PARAMS
) -> TrainableStudent:
    """A fresh copy of the student on `device`; a LoRA adapter when it has over `lora_above_params` parameters.

    `lora_above_params=None` always fine-tunes fully. The adapter's random half is drawn from torch's global
    generator: seed it first.
    """
    info = inspect_checkpoint(student_dir)
    target = resolve_device(device)
    lora = lora_above_params is not None and checkpoint_parameters(info) > lora_above_params
    # A full fine-tune keeps float32 weights (AdamW updates would vanish in bf16 rounding); frozen base weights
    # under an adapter can sit in bf16 on a GPU, halving their memory, while the adapter trains in float32.
    bf16_base = lora and target.type == "cuda" and torch.cuda.is_bf16_supported()
    try:
        tokenizer = AutoTokenizer.from_pretrained(info.path, local_files_only=True, trust_remote_code=False)
        model: Any = AutoModelForCausalLM.from_pretrained(
            info.path,
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            dtype=torch.bfloat16 if bf16_base else torch.float32,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"student checkpoint {info.path!r} cannot be loaded for training: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(f"student checkpoint {info.path!r}: a fast tokenizer (tokenizer.json) is required")
    name_causal_lm_loss(model)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    if lora:
        model = _with_adapter(model)
    model.to(target)
    trainable = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    return TrainableStudent(
        model=model,
        tokenizer=tokenizer,
        device=target,
        max_length=info.max_length,
        method="lora" if lora else "full",
        parameters=parameters,
        trainable_parameters=trainable,
    )


def _with_adapter(model: PreTrainedModel) -> Any:
    """`model` frozen under a fresh LoRA adapter on its projection layers."""
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(model)
    if not targets:
        raise CheckpointError(f"{type(model).__name__} has no Linear projection a LoRA adapter could wrap")
    config = LoraConfig(
        r=LORA_RANK,
        lora_alpha=LORA_ALPHA,
        # No dropout: a probe is a few hundred steps, too short to overfit, and it keeps runs comparable.
        lora_dropout=0.0,
        target_modules=targets,
        # GPT-2's Conv1D stores its weight transposed.
        fan_in_fan_out=any(isinstance(module, Conv1D) for module in model.modules()),
        bias="none",
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():
        # peft asks transformers a question it has renamed; the answer is unchanged and the warning is noise.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return get_peft_model(model, config)
