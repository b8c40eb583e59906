"""A model's control table on the tiny profile's held-out fixtures (natural mix, ``lenient`` protocol): per
template accuracy with its 95% interval over videos, uniform chance, the text-only baseline and blank frames
(``pretraining.measure.fixture_controls``, what the base's card reports).

    .venv/bin/python bench/experiments/sft_on_base/controls.py MODEL WORK_DIR [generate|choice]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import training  # noqa: F401  (CPU torchvision work-around)
from pretraining.measure import fixture_controls
from videorft.profile import load_profile

COLUMNS = ("questions", "chance", "text_only", "accuracy", "ci95_low", "ci95_high", "minus_text_only",
           "minus_text_only_ci95_low", "minus_text_only_ci95_high", "blank")


def main(model: str, work: str, mode: str = "generate") -> None:
    folder = Path(work)
    profile = load_profile("tiny", env={"VIDEORFT_STORAGE_ROOT": str(folder / "storage"),
                                        "VIDEORFT_MEDIA_CACHE": str(folder / "media")})
    table = fixture_controls(model, profile, folder / "eval", iterations=1000, answer_mode=mode).set_index("group")
    print(table[[c for c in COLUMNS if c in table.columns]].round(2).to_string())
    table.to_csv(folder / f"controls_{mode}.csv")


if __name__ == "__main__":
    main(*sys.argv[1:4])
