"""Work-arounds for the CPU-only stack.

PyPI's torchvision 0.28 is a CUDA build: with CPU torch its compiled ops do not load and ``import torchvision``
fails on ``operator torchvision::nms does not exist``, taking open_clip, timm, qwen-vl-utils and the
Qwen2.5-VL processor with it. Declaring the two op schemas it registers meta kernels for lets its pure-Python
parts import; where a matching torchvision is installed (GPU images) this is a no-op.
"""

from __future__ import annotations

import sys

_LIBRARY = None


def make_torchvision_importable() -> None:
    global _LIBRARY
    if "torchvision" in sys.modules or _LIBRARY is not None:
        return
    import torch

    try:
        if torch.ops.torchvision.nms.default is not None:  # present when torchvision's compiled ops load
            return
    except (AttributeError, RuntimeError):
        pass
    _LIBRARY = torch.library.Library("torchvision", "DEF")  # kept alive: dropping it unregisters the ops
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
