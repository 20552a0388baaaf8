"""Evaluation under the DAVIS protocol.

- `metrics`: J, boundary F and their Mean/Recall/Decay statistics (numpy and OpenCV only)
- `folders`: score folders of mask PNGs against annotations (`siampolar-score`)
- `benchmark`: track DAVIS sequences with a model and baselines, then score them (`siampolar-evaluate`)
- `report`: the results table, results.json and the official davis2017-evaluation CSVs
"""
