"""Loading a student checkpoint once per process: local safetensors only, never remote code."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.activations import GELUTanh, NewGELUActivation

from core.checkpoint import CheckpointError, CheckpointInfo, inspect_checkpoint
from core.scores import StudentIdentity
from workers.scoring.attention import PACKED_ATTENTION

Precision = Literal["float32", "bfloat16", "float16"]
DeviceName = Literal["auto", "cpu", "cuda"]

# Output heads that post-process logits (soft-capping, scaling) would make the chunked head inexact.
_UNSUPPORTED_LOGIT_KEYS = ("final_logit_softcapping", "logit_scale", "output_multiplier_scale")


@dataclass(frozen=True, slots=True)
class Student:
    """A loaded student: model in eval mode, its tokenizer, and where it came from."""

    identity: StudentIdentity
    model: PreTrainedModel
    tokenizer: Any
    device: torch.device
    precision: Precision
    start_id: int

    @property
    def d_model(self) -> int:
        """Hidden size, used by the batch planner's cost model."""
        size = getattr(self.model.config, "hidden_size", None) or getattr(self.model.config, "n_embd", None)
        return int(size) if size else 1024


_cache: dict[tuple[str, str, str, str], Student] = {}
_cache_lock = threading.Lock()


def resolve_device(device: str) -> torch.device:
    """`auto` is CUDA when present, else CPU; an explicit CUDA request without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckpointError(f"device {device!r} requested but CUDA is not available on this machine")
    if device not in {"cpu"} and not device.startswith("cuda"):
        raise CheckpointError(f"unknown device {device!r}: expected 'auto', 'cpu' or 'cuda'")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> Precision:
    """`auto` is bfloat16 autocast on CUDA with bf16 support, float32 elsewhere."""
    if precision == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return "bfloat16"
        return "float32"
    if precision not in {"float32", "bfloat16", "float16"}:
        raise CheckpointError(f"unknown precision {precision!r}: expected auto, float32, bfloat16 or float16")
    return precision  # type: ignore[return-value]


def get_student(path: str | Path, *, device: str = "auto", precision: str = "auto") -> Student:
    """The student at `path`, loaded on first use in this process and reused while its files are unchanged."""
    info = inspect_checkpoint(path)
    torch_device = resolve_device(device)
    resolved_precision = resolve_precision(precision, torch_device)
    key = (info.path, info.fingerprint, str(torch_device), resolved_precision)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is None:
            # A changed checkpoint under the same path gets a new fingerprint: drop the stale model.
            for stale in [k for k in _cache if k[0] == info.path]:
                del _cache[stale]
            cached = _cache[key] = load_student(info, torch_device, resolved_precision)
        return cached


def load_student(info: CheckpointInfo, device: torch.device, precision: Precision) -> Student:
    """Load an inspected checkpoint; prefer `get_student`, which caches."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(info.path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"student checkpoint {info.path!r}: the tokenizer cannot be loaded: {exc}") from exc
    if not getattr(tokenizer, "is_fast", False):
        raise CheckpointError(f"student checkpoint {info.path!r}: a fast tokenizer (tokenizer.json) is required")
    start_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if start_id is None:
        raise CheckpointError(f"student checkpoint {info.path!r}: the tokenizer has neither a BOS nor an EOS token")
    try:
        model = _load_model(info.path)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"student checkpoint {info.path!r}: the model cannot be loaded: {exc}") from exc
    for key in _UNSUPPORTED_LOGIT_KEYS:
        if getattr(model.config, key, None) not in (None, 1.0):
            raise CheckpointError(
                f"student checkpoint {info.path!r}: {model.config.model_type} post-processes logits ({key}), "
                "which the scoring engine does not support"
            )
    if model.get_output_embeddings() is None:
        raise CheckpointError(f"student checkpoint {info.path!r} has no language-model head")
    _fuse_activations(model)
    model.to(device)
    model.eval()
    identity = StudentIdentity(
        path=info.path, fingerprint=info.fingerprint, model_type=info.model_type, max_length=info.max_length
    )
    return Student(
        identity=identity,
        model=model,
        tokenizer=tokenizer,
        device=device,
        precision=precision,
        start_id=int(start_id),
    )


def _load_model(path: str) -> PreTrainedModel:
    model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(
        path,
        local_files_only=True,
        trust_remote_code=False,
        use_safetensors=True,
        # Weights stay float32: reduced precision comes from autocast, which keeps norms and softmax in fp32.
        dtype=torch.float32,
        # Attention runs tree by tree over the engine's packed batches (attention.py); plain causal SDPA otherwise.
        attn_implementation=PACKED_ATTENTION,
    )
    return model


def _fuse_activations(model: torch.nn.Module) -> None:
    """Swap GPT-2's tanh-GELU, written as five elementwise ops, for torch's fused kernel of the same formula.

    Same function, one pass over memory instead of five: about a tenth of CPU time on GPT-2-shaped students.
    The benchmark checks the swapped model against a freshly loaded, unswapped reference.
    """
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, NewGELUActivation):
                setattr(parent, name, GELUTanh())
