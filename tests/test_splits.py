"""The held-out sequences (the validation fold, the val sequences) never overlap what the course trains on."""
from siampolar_lib.splits import REAL_VAL_SEQUENCES, TRAIN_SAMPLE_SEQUENCES, VALIDATION_FOLD_SEQUENCES


def test_validation_fold_is_every_second_sample_sequence_and_no_val_sequence():
    assert VALIDATION_FOLD_SEQUENCES == ("dog-agility", "motorbike", "surf")
    assert list(VALIDATION_FOLD_SEQUENCES) == sorted(TRAIN_SAMPLE_SEQUENCES)[0::2]
    assert len(REAL_VAL_SEQUENCES) == 15 and not set(VALIDATION_FOLD_SEQUENCES) & set(REAL_VAL_SEQUENCES)


def test_real_sequences_match_the_shared_folder(real_davis):
    listed = (real_davis / "ImageSets" / "2016" / "val.txt").read_text().split()
    assert sorted(listed) == list(REAL_VAL_SEQUENCES)


def test_cv_folds_partition_the_train_split_by_the_stated_rule():
    from siampolar_lib.splits import CV_FOLDS, TRAIN_SAMPLE_SEQUENCES, TRAIN_SEQUENCES

    assert len(TRAIN_SEQUENCES) == 30 and list(TRAIN_SEQUENCES) == sorted(set(TRAIN_SEQUENCES))
    assert [len(f) for f in CV_FOLDS] == [6] * 5
    assert sorted(n for f in CV_FOLDS for n in f) == list(TRAIN_SEQUENCES)
    assert all(TRAIN_SEQUENCES.index(n) % 5 == k for k, f in enumerate(CV_FOLDS) for n in f)
    assert not set(TRAIN_SEQUENCES) & set(REAL_VAL_SEQUENCES) and set(TRAIN_SAMPLE_SEQUENCES) <= set(TRAIN_SEQUENCES)


def test_cv_folds_name_the_shared_train_split(real_davis_train):
    from siampolar_lib.data.davis import folder_sequences
    from siampolar_lib.splits import TRAIN_SEQUENCES

    extra = real_davis_train.parent / "davis_train_extra"
    assert sorted(folder_sequences(real_davis_train) + folder_sequences(extra)) == list(TRAIN_SEQUENCES)
