"""Fixed splits: the 15 real DAVIS-2016 val sequences in ../shared/data/DAVIS and a validation fold of train.

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

# DAVIS-2016 train split (30 sequences: ../shared/data/davis_train_sample holds 6 at full frame rate,
# ../shared/data/davis_train_extra the other 24 at every second frame). Model selection and tracker tuning
# use a validation fold of train sequences, fixed before training by the same kind of rule: the six
# full-rate sample sequences sorted by name, every second one starting with the first. Reported scores come
# from all 15 val sequences (REAL_VAL_SEQUENCES), none of which is ever trained on.
TRAIN_SAMPLE_SEQUENCES: tuple[str, ...] = ("dog-agility", "motocross-bumps", "motorbike", "rollerblade", "surf", "tennis")
VALIDATION_FOLD_SEQUENCES: tuple[str, ...] = TRAIN_SAMPLE_SEQUENCES[0::2]
