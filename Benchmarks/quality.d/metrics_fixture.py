"""The fixture of RankingFixtureTests: Microsoft Recommenders' ranking metrics on a few hand-made
lists, computed by the `recommenders` package itself (run once; the numbers are committed in
Tests/RecEngineTests/RankingFixtureTests.swift).

Usage: metrics_fixture.py   (in the venv Benchmarks/quality makes)

k = 3. Test users 1, 2, 3, 5 get lists; user 4 is a test user with no list (a user the model does
not know); user 6 has a list but no test rating. User 1 has more relevant items than k, user 2
one, user 3 no hit, user 5 hits at ranks 2 and 3.
"""
import json

import pandas as pd
from recommenders.evaluation.python_evaluation import map, map_at_k, ndcg_at_k, precision_at_k, recall_at_k

truth = pd.DataFrame(
    [(1, 10), (1, 11), (1, 12), (1, 13), (2, 20), (3, 30), (3, 31), (4, 40), (4, 41), (5, 50), (5, 51), (5, 52)],
    columns=["userID", "itemID"],
)
truth["rating"] = 4.0
lists = {1: [10, 99, 12], 2: [21, 22, 20], 3: [33, 34, 35], 5: [59, 50, 51], 6: [60, 61, 62]}
predictions = pd.DataFrame(
    [(user, item, float(3 - rank)) for user, items in lists.items() for rank, item in enumerate(items)],
    columns=["userID", "itemID", "prediction"],
)
arguments = dict(col_user="userID", col_item="itemID", col_prediction="prediction", k=3)
print(json.dumps({
    "precision_at_k": precision_at_k(truth, predictions, **arguments),
    "recall_at_k": recall_at_k(truth, predictions, **arguments),
    "ndcg_at_k": ndcg_at_k(truth, predictions, col_rating="rating", **arguments),
    "map": map(truth, predictions, **arguments),
    "map_at_k": map_at_k(truth, predictions, **arguments),
}, indent=1))
