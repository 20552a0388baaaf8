"""Evaluation under the DAVIS protocol.

- `metrics`: J, boundary F and their Mean/Recall/Decay statistics (numpy and OpenCV only; a registry of measures)
- `report`: the results table, results.json and the official davis2017-evaluation CSVs
- `folders`: score folders of mask PNGs against annotations (`siampolar-score`)
- `sequence`: track one sequence from frame 0's box and score it
- `evaluate`: track DAVIS sequences with a model and baselines, then score them (`siampolar-evaluate`)
- `selection`: model selection and tracker tuning on the validation fold (the one guard against val sequences)
- `error_split`: where the error comes from, the rays or the tracking (`siampolar-error-split`)
"""
