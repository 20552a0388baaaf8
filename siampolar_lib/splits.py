"""The fixed split of the 15 real DAVIS-2016 val sequences in ../shared/data/DAVIS.

Rule, chosen before any training and never tuned: sorted by name, every third sequence starting with the
first is held out (5 sequences); the other 10 form the train fold. Scores reported by the course come from
HELDOUT_SEQUENCES only. The real DAVIS-2016 *train* sample (../shared/data/davis_train_sample) and the
synthetic set are also training data; none of them overlaps the held-out fold.
"""
from __future__ import annotations

REAL_VAL_SEQUENCES: tuple[str, ...] = (
    "blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "cows", "dog", "drift-chicane",
    "drift-straight", "goat", "horsejump-high", "motocross-jump", "paragliding-launch", "scooter-black", "soapbox",
)
HELDOUT_SEQUENCES: tuple[str, ...] = REAL_VAL_SEQUENCES[0::3]
TRAIN_FOLD_SEQUENCES: tuple[str, ...] = tuple(s for s in REAL_VAL_SEQUENCES if s not in HELDOUT_SEQUENCES)
