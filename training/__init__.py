"""Stage library: SFT and GRPO on Qwen2.5-VL with the VideoRFT reward (TRL), the model factory, the rewards.

Importing it makes PyPI's CUDA-only torchvision importable on CPU torch (``videorft.compat``), which
transformers' processors and TRL need.
"""

from videorft.compat import make_torchvision_importable

make_torchvision_importable()
