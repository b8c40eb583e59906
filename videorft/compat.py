"""Work-arounds for the CPU-only stack.

PyPI's torchvision 0.28 is a CUDA build: with CPU torch its compiled ops do not load and ``import torchvision``
fails on ``operator torchvision::nms does not exist``, taking open_clip, timm, qwen-vl-utils and the
Qwen2.5-VL processor with it. Declaring the two op schemas it registers meta kernels for lets its pure-Python
parts import; where a matching torchvision is installed (GPU images) this is a no-op.

The declaration waits for the first lookup of ``torchvision`` (an import, or transformers' availability probe):
importing torch costs seconds, and a process that only loads the Dagster definitions (every run worker, the
code server) never needs it. Our packages call ``make_torchvision_importable`` before they need torchvision;
``scripts/setup.sh`` also installs a copy of this module with a ``.pth`` line that calls it in every interpreter
of the venv, where plain ``import torchvision`` fails, so processes our code never runs in first (``accelerate
launch`` imports torchvision itself) get it too.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

_LIBRARY = None  # kept alive: dropping it unregisters the declared ops


def _declare_torchvision_ops() -> None:
    global _LIBRARY
    if _LIBRARY is not None:
        return
    import torch

    try:
        if torch.ops.torchvision.nms.default is not None:  # present when torchvision's compiled ops load
            return
    except (AttributeError, RuntimeError):
        pass
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "torchvision":
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            _declare_torchvision_ops()
        return None  # the normal finders import it


def make_torchvision_importable() -> None:
    """Arrange for torchvision's op schemas to exist before torchvision loads; cheap until then."""
    if "torchvision" in sys.modules or _LIBRARY is not None:
        return
    if any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _BeforeTorchvision())
