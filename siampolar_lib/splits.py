"""Fixed splits: the 15 DAVIS-2016 val sequences of ../shared/data/DAVIS, and a validation fold of train.

The protocol (checkpoints/README.md): train on DAVIS-2016 *train* sequences and synthetic data, never on a val
sequence; select models and tune the tracker on VALIDATION_FOLD_SEQUENCES (train sequences kept out of training);
score the 15 val sequences of ../shared/data/DAVIS (15 of the 20; REAL_VAL_SEQUENCES) once per shipped candidate.
(A retired protocol trained on ten of those val sequences and held out the other five; checkpoints/README.md keeps
its history. No split of the val sequences is left: every one of them is held out of every training run.)
"""
from __future__ import annotations

REAL_VAL_SEQUENCES: tuple[str, ...] = (
    "blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "cows", "dog", "drift-chicane",
    "drift-straight", "goat", "horsejump-high", "motocross-jump", "paragliding-launch", "scooter-black", "soapbox",
)

# DAVIS-2016 train split (30 sequences: ../shared/data/davis_train_sample holds 6 at full frame rate,
# ../shared/data/davis_train_extra the other 24 at every second frame). Model selection and tracker tuning
# use a validation fold of train sequences, fixed before training by the same kind of rule: the six
# full-rate sample sequences sorted by name, every second one starting with the first. Reported scores come
# from the 15 val sequences of ../shared/data/DAVIS (REAL_VAL_SEQUENCES), none of which is ever trained on.
TRAIN_SAMPLE_SEQUENCES: tuple[str, ...] = ("dog-agility", "motocross-bumps", "motorbike", "rollerblade", "surf",
                                           "tennis")
VALIDATION_FOLD_SEQUENCES: tuple[str, ...] = TRAIN_SAMPLE_SEQUENCES[0::2]

# Cross-validation (issue 30): the whole DAVIS-2016 train split, sorted by name, the i-th sequence in fold i mod 5:
# five folds of six, fixed by this rule before any cross-validated run. A candidate is trained five times, each
# time without one fold, and scored on the fold it did not see (`evaluation.crossval`), so every one of the 30
# sequences is scored once per candidate instead of 3 sequences in all.
TRAIN_SEQUENCES: tuple[str, ...] = (
    "bear", "bmx-bumps", "boat", "breakdance-flare", "bus", "car-turn", "dance-jump", "dog-agility", "drift-turn",
    "elephant", "flamingo", "hike", "hockey", "horsejump-low", "kite-walk", "lucia", "mallard-fly", "mallard-water",
    "motocross-bumps", "motorbike", "paragliding", "rhino", "rollerblade", "scooter-gray", "soccerball", "stroller",
    "surf", "swing", "tennis", "train",
)
CV_FOLD_COUNT = 5
CV_FOLDS: tuple[tuple[str, ...], ...] = tuple(TRAIN_SEQUENCES[i::CV_FOLD_COUNT] for i in range(CV_FOLD_COUNT))
