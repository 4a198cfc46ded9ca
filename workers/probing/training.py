"""The optimiser loop every fine-tune of the product and its experiments runs: schedule, steps, token count.

AdamW, a linear warm-up then a cosine decay to a floor, gradients clipped to norm 1, bf16 autocast on CUDA
only. The probe engine, the example student's build (examples/student.py) and the experiment's students
(bench/experiment/student.py) all train here. torch is imported where it is used, so importers of `Schedule`
stay light.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel


@dataclass(frozen=True, slots=True)
class Schedule:
    """An optimiser recipe counted in steps, not wall time, so a run is reproducible."""

    steps: int
    batch_size: int
    peak_lr: float
    warmup_steps: int
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.01
    adam_beta2: float = 0.999


def lr_factor(step: int, schedule: Schedule) -> float:
    """The learning rate at `step` as a fraction of the peak: linear warm-up, then cosine decay to the floor."""
    if step < schedule.warmup_steps:
        return (step + 1) / schedule.warmup_steps
    progress = (step - schedule.warmup_steps) / max(1, schedule.steps - schedule.warmup_steps)
    floor = schedule.final_lr_fraction
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def name_causal_lm_loss(model: torch.nn.Module) -> None:
    """Name the causal-LM loss on every transformers model inside `model` that has none.

    transformers looks the loss up by class name, finds none for GPT2LMHeadModel, and warns before falling back
    to the causal-LM loss: naming that loss trains identically, without the warning. Walking the modules also
    reaches a model wrapped by peft, where setting the attribute on the wrapper would not.
    """
    from transformers import PreTrainedModel

    for module in model.modules():
        if isinstance(module, PreTrainedModel) and getattr(module, "loss_type", None) is None:
            module.loss_type = "ForCausalLM"


class Trainer:
    """One optimiser step per call, on the parameters that require gradients, counting the tokens fed.

    Stepping one batch at a time lets a caller measure between steps (the probe's learning curve) without a
    second loop; `train` is the plain loop over it.
    """

    def __init__(self, model: torch.nn.Module, schedule: Schedule) -> None:
        import torch

        name_causal_lm_loss(model)
        self.model = model
        self.schedule = schedule
        self.device = next(model.parameters()).device
        # Frozen base weights (a LoRA adapter's) take no optimiser state; in a full fine-tune this is every one.
        self._parameters = [parameter for parameter in model.parameters() if parameter.requires_grad]
        self._optimizer = torch.optim.AdamW(
            self._parameters,
            lr=schedule.peak_lr,
            betas=(0.9, schedule.adam_beta2),
            weight_decay=schedule.weight_decay,
        )
        self._scheduler = torch.optim.lr_scheduler.LambdaLR(self._optimizer, lambda step: lr_factor(step, schedule))
        self.steps = 0
        # Non-padding tokens fed so far (prompt and response alike): the compute a run cost.
        self.tokens = 0

    def step(self, batch: dict[str, torch.Tensor]) -> float:
        """Take one optimiser step on `batch` (model inputs, labels included); the batch's loss."""
        import torch

        if not self.model.training:
            self.model.train()
        mask = batch.get("attention_mask")
        self.tokens += int(mask.sum()) if mask is not None else int(batch["input_ids"].numel())
        inputs = {name: tensor.to(self.device) for name, tensor in batch.items()}
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss = self.model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self._parameters, 1.0)
        self._optimizer.step()
        self._scheduler.step()
        self._optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        return float(loss.item())


def train(
    model: PreTrainedModel,
    batches: Iterator[dict[str, torch.Tensor]],
    schedule: Schedule,
    on_step: Callable[[int, list[float]], None] | None = None,
) -> list[float]:
    """Take `schedule.steps` optimiser steps, one batch of model inputs (labels included) each; every step's loss.

    The model trains where it sits (under bf16 autocast if that is a GPU) and is left in eval mode.
    `on_step(step, losses)` runs after each step, for progress logs.
    """
    trainer = Trainer(model, schedule)
    losses: list[float] = []
    for step in range(schedule.steps):
        losses.append(trainer.step(next(batches)))
        if on_step is not None:
            on_step(step, losses)
    model.eval()
    return losses
