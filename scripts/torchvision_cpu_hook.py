"""Make PyPI's CUDA torchvision importable next to a CPU torch, in every process of this environment.

Installed by ``scripts/setup.sh`` (as ``videorft_torchvision_cpu.py`` plus a ``.pth`` line that imports it) only
where ``import torchvision`` fails with ``operator torchvision::nms does not exist``: the CPU set-up pins
torch 2.13's CPU wheel, and the only torchvision 0.28 the package registries here offer is the CUDA build, whose
compiled ops do not load. The hook waits for the first ``import torchvision`` (so interpreters that never import
it pay nothing), then declares the two op schemas torchvision registers kernels for, so its pure-Python parts
(transforms, used by open_clip and the Qwen2-VL processors) import. Processes our code never runs in first,
such as ``accelerate launch`` importing torchvision itself, get it too. Where a matching torchvision is
installed (the GPU images) setup.sh does not install this.
"""

import importlib.abc
import sys

_LIBRARY = None  # kept alive: dropping it unregisters the declared ops


def _declare_torchvision_ops() -> None:
    global _LIBRARY
    import torch

    try:
        if torch.ops.torchvision.nms.default is not None:  # compiled ops loaded: nothing to do
            return
    except (AttributeError, RuntimeError):
        pass
    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "torchvision":
            sys.meta_path.remove(self)
            _declare_torchvision_ops()
        return None  # the normal finders import it


if not any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path):
    sys.meta_path.insert(0, _BeforeTorchvision())
