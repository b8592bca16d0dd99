"""Training at scale, the arithmetic of the chapter "Scaling out": adapter size, memory, communication.

Standard library only.

>>> round(training_memory(7e9, "qlora", trainable_params=lora_trainable_params(4096, 11008, 32))["gib"], 1)
4.0
"""

from __future__ import annotations

from .._fields import require

__all__ = ["BASE_BYTES_PER_PARAM", "ADAPTER_BYTES_PER_PARAM", "lora_trainable_params", "training_memory",
           "allreduce_seconds"]

#: Bytes of GPU memory per *base-model* parameter, activations excluded. Full fine-tuning with AdamW in
#: mixed precision keeps bf16 weights (2) and gradients (2), fp32 master weights (4) and two fp32 Adam
#: moments (8): 16. LoRA keeps the frozen base in bf16 (2). QLoRA stores it in 4-bit NF4 (0.5) plus
#: double-quantised block constants (about 0.127 bit, Dettmers et al. 2023): 0.516.
BASE_BYTES_PER_PARAM = {"full": 16.0, "lora": 2.0, "qlora": 0.5 + 0.127 / 8}
#: Bytes per *trainable* adapter parameter (bf16 weight + grad, fp32 master + two Adam moments).
ADAPTER_BYTES_PER_PARAM = 16.0


def lora_trainable_params(hidden: int, intermediate: int, layers: int, r: int = 16, *,
                          kv_hidden: int | None = None) -> int:
    """Adapter parameters of LoRA rank ``r`` on every linear layer of a Llama-style decoder.

    Each adapted ``d_in x d_out`` matrix gains ``r x (d_in + d_out)`` parameters; per layer: q, o
    (hidden -> hidden), k, v (hidden -> ``kv_hidden``, smaller with grouped-query attention), gate,
    up (hidden -> intermediate) and down (intermediate -> hidden).

    >>> lora_trainable_params(4096, 11008, 32, r=16)  # Llama-2-7B: 0.6 % of its 6.7 B parameters
    39976960
    """
    hidden, intermediate, layers, r = (require(n, v, "int", min=1) for n, v in
                                       (("hidden", hidden), ("intermediate", intermediate), ("layers", layers), ("r", r)))
    kv = hidden if kv_hidden is None else require("kv_hidden", kv_hidden, "int", min=1)
    per_layer = r * (2 * (hidden + hidden) + 2 * (hidden + kv) + 3 * (hidden + intermediate))
    return int(layers * per_layer)


def training_memory(params: float, method: str = "lora", *, trainable_params: float = 0.0,
                    devices: int = 1, shard: bool = False) -> dict[str, float]:
    """GPU memory for weights, gradients and optimizer state per device (activations excluded).

    ``method`` is ``"full"``, ``"lora"`` or ``"qlora"`` (see :data:`~ragft_lib.finetune.sizing.BASE_BYTES_PER_PARAM`);
    ``trainable_params`` the adapter size (:func:`lora_trainable_params`). Plain DDP copies
    everything to every device, so ``devices`` changes nothing per device; ``shard=True`` (ZeRO-3 /
    FSDP) divides it by ``devices``.

    >>> round(training_memory(7e9, "full")["gib"])  # 7 B parameters x 16 bytes
    104
    """
    require("method", method, "choice", choices=tuple(BASE_BYTES_PER_PARAM))
    params = require("params", params, "float", min=0, min_exclusive=True)
    trainable_params = require("trainable_params", trainable_params, "float", min=0)
    devices = require("devices", devices, "int", min=1)
    total = params * BASE_BYTES_PER_PARAM[method] + (trainable_params * ADAPTER_BYTES_PER_PARAM if method != "full" else 0.0)
    per_device = total / devices if shard else total
    return {"bytes_per_param": total / params, "bytes": per_device, "gib": per_device / 2**30}


def allreduce_seconds(grad_bytes: float, devices: int, bandwidth_gb_s: float) -> float:
    """Time of one ring all-reduce of the gradients (what DDP adds to every step).

    Each device sends and receives ``2 (devices - 1) / devices`` times the gradient size;
    ``bandwidth_gb_s`` is the per-device bus bandwidth in GB/s (NVLink ~ 450 within an H100 node,
    400 Gb/s InfiniBand ~ 50 between nodes). DDP overlaps it with the backward pass.

    >>> round(allreduce_seconds(14e9, 8, 450), 3)  # bf16 gradients of 7 B parameters on 8 GPUs
    0.054
    """
    grad_bytes = require("grad_bytes", grad_bytes, "float", min=0)
    devices = require("devices", devices, "int", min=1)
    bandwidth_gb_s = require("bandwidth_gb_s", bandwidth_gb_s, "float", min=0, min_exclusive=True)
    if devices == 1:
        return 0.0
    return 2 * (devices - 1) / devices * grad_bytes / (bandwidth_gb_s * 1e9)
