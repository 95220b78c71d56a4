"""Surprise's SVD, 5-fold cross-validation with default parameters: the peer of `recengine cv`.

Prints one JSON object: per-fold rmse, mae and fit_seconds, and their means.
"""
import json
import sys
import time

from surprise import SVD, Dataset, Reader, accuracy
from surprise.model_selection import KFold

path, folds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
data = Dataset.load_from_file(path, reader=Reader(line_format="user item rating timestamp", sep="\t"))
results = []
for trainset, testset in KFold(n_splits=folds, random_state=0).split(data):
    algo = SVD(random_state=0)
    start = time.perf_counter()
    algo.fit(trainset)
    fit_seconds = time.perf_counter() - start
    predictions = algo.test(testset)
    results.append({
        "rmse": accuracy.rmse(predictions, verbose=False),
        "mae": accuracy.mae(predictions, verbose=False),
        "fit_seconds": fit_seconds,
    })
mean = {key: sum(fold[key] for fold in results) / len(results) for key in ("rmse", "mae", "fit_seconds")}
print(json.dumps({"folds": results, "mean": mean}))
