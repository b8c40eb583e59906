"""Pretraining of the embedded profile's models: the stage library that builds what ``videorft/models/`` ships.

The paper starts from a model that already perceives (Qwen2.5-VL-7B); the miniature does too. This library
renders a pretraining world no training set or fixture shares (``data``), pretrains a tiny SigLIP contrastively
on its (frames, caption) pairs (``siglip``) and a tiny Qwen2.5-VL base on its captions and direct-answer
questions (``base``), measures both on held-out data (``measure``) and installs them with model cards
(``card``). ``python -m pretraining`` (``make pretrain``) runs it all. It sits above the other stage libraries:
it builds with training's model factory and collator and measures with evaluation's harness.
"""
