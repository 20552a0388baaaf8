"""The held-out fold never overlaps what the course trains on."""
from siampolar_lib.splits import HELDOUT_SEQUENCES, REAL_VAL_SEQUENCES, TRAIN_FOLD_SEQUENCES


def test_folds_partition_the_real_sequences():
    assert len(HELDOUT_SEQUENCES) == 5 and len(TRAIN_FOLD_SEQUENCES) == 10
    assert not set(HELDOUT_SEQUENCES) & set(TRAIN_FOLD_SEQUENCES)
    assert set(HELDOUT_SEQUENCES) | set(TRAIN_FOLD_SEQUENCES) == set(REAL_VAL_SEQUENCES)


def test_real_sequences_match_the_shared_folder(real_davis):
    listed = (real_davis / "ImageSets" / "2016" / "val.txt").read_text().split()
    assert sorted(listed) == list(REAL_VAL_SEQUENCES)
