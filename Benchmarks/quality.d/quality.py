"""The Python half of Benchmarks/quality: Microsoft Recommenders' split and metric functions, and
the peers (Surprise SVD through Recommenders' own code, `implicit`'s ALS and BPR, the most-popular
list), all on the same files RecEngine reads.

    quality.py split-microsoft RATINGS OUT_DIR     u.data -> train.csv, test.csv (their split)
    quality.py peers TRAIN TEST OUT_JSON           every peer row's metrics and fit seconds
    quality.py score TRAIN TEST LISTS              Recommenders' metrics of a lists CSV
                                                   (user_id,movie_id,rank), as JSON
    quality.py implicit-als TRAIN TEST THREADS LISTS   implicit's ALS with RecEngine's defaults:
                                                   fit seconds as JSON, the top-10 lists as CSV

Files are RecEngine's ratings CSV (user_id,movie_id,rating,timestamp). Metrics are Recommenders'
`python_evaluation` functions as their `examples/06_benchmarks/benchmark_utils.py` calls them:
`map`, `ndcg_at_k`, `precision_at_k`, `recall_at_k`, k = 10, every test rating relevant.
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
from recommenders.datasets.python_splitters import python_stratified_split
from recommenders.evaluation.python_evaluation import map as map_metric
from recommenders.evaluation.python_evaluation import ndcg_at_k, precision_at_k, recall_at_k, rmse, mae
from recommenders.utils.constants import SEED

K = 10
COLUMNS = dict(col_user="userID", col_item="itemID", col_rating="rating", col_prediction="prediction")


def read_udata(path):
    """MovieLens u.data as `recommenders.datasets.movielens.load_pandas_df` returns it."""
    df = pd.read_csv(path, sep="\t", names=["userID", "itemID", "rating", "timestamp"])
    df["rating"] = df["rating"].astype(float)
    return df


def read_csv(path):
    df = pd.read_csv(path).rename(columns={"user_id": "userID", "movie_id": "itemID"})
    df["rating"] = df["rating"].astype(float)
    return df


def write_csv(df, path):
    out = df.rename(columns={"userID": "user_id", "itemID": "movie_id"})[["user_id", "movie_id", "rating", "timestamp"]].copy()
    out["rating"] = out["rating"].astype(int)
    out.to_csv(path + ".partial", index=False)
    os.replace(path + ".partial", path)


def split(df, out_dir):
    # Their benchmark notebook's call, with the splitter's default seed (42, recommenders' SEED).
    train, test = python_stratified_split(
        df, ratio=0.75, min_rating=1, filter_by="item", col_user="userID", col_item="itemID", seed=SEED)
    os.makedirs(out_dir, exist_ok=True)
    write_csv(train, os.path.join(out_dir, "train.csv"))
    write_csv(test, os.path.join(out_dir, "test.csv"))
    print(json.dumps({"train": len(train), "test": len(test), "test_users": int(test["userID"].nunique())}))


def ranking_metrics(test, predictions):
    return {
        "map": map_metric(test, predictions, k=K, **COLUMNS),
        "ndcg_at_k": ndcg_at_k(test, predictions, k=K, **COLUMNS),
        "precision_at_k": precision_at_k(test, predictions, k=K, **COLUMNS),
        "recall_at_k": recall_at_k(test, predictions, k=K, **COLUMNS),
    }


def lists_frame(users, items_per_user):
    """Top-k lists as a prediction frame whose scores fall with the rank (no ties to break)."""
    rows = [(u, i, float(K - r)) for u, items in zip(users, items_per_user) for r, i in enumerate(items[:K])]
    return pd.DataFrame(rows, columns=["userID", "itemID", "prediction"])


def surprise_svd(train, test):
    """Their `prepare_training_svd`, `train_svd`, `predict_svd` and `recommend_k_svd` with their
    parameters for MovieLens 100k."""
    import surprise
    from recommenders.models.surprise.surprise_utils import compute_ranking_predictions, predict

    data = surprise.Dataset.load_from_df(train.drop("timestamp", axis=1), reader=surprise.Reader("ml-100k", rating_scale=(1, 5)))
    trainset = data.build_full_trainset()
    model = surprise.SVD(n_factors=150, n_epochs=15, lr_all=0.005, reg_all=0.02, random_state=SEED, verbose=False)
    start = time.perf_counter()
    model.fit(trainset)
    fit = time.perf_counter() - start
    predictions = predict(model, test, usercol="userID", itemcol="itemID", predcol="prediction")
    top = compute_ranking_predictions(model, train, usercol="userID", itemcol="itemID", predcol="prediction", remove_seen=True)
    result = ranking_metrics(test, top)
    result.update(fit_seconds=fit, rmse=rmse(test, predictions, **COLUMNS), mae=mae(test, predictions, **COLUMNS))
    return result


def user_items(train):
    """The CSR user-item matrix of `train` (each pair once) and the id maps."""
    from scipy.sparse import csr_matrix

    users = {u: n for n, u in enumerate(train["userID"].unique())}
    items = {i: n for n, i in enumerate(train["itemID"].unique())}
    pairs = train[["userID", "itemID"]].drop_duplicates()
    rows = pairs["userID"].map(users).to_numpy()
    columns = pairs["itemID"].map(items).to_numpy()
    matrix = csr_matrix((np.ones(len(pairs), dtype=np.float32), (rows, columns)), shape=(len(users), len(items)))
    return matrix, users, items


def implicit_lists(model, matrix, users, items, test):
    item_ids = np.array(list(items))
    known = [u for u in test["userID"].unique() if u in users]
    rows = np.array([users[u] for u in known])
    ids, _ = model.recommend(rows, matrix[rows], N=K, filter_already_liked_items=True)
    return lists_frame(known, [[item_ids[i] for i in row if i >= 0] for row in ids])


def fit_implicit_als(train, threads=1, factors=64, iterations=15, regularization=0.05, alpha=10.0):
    """implicit's conjugate-gradient ALS (3 steps, as RecEngine) with RecEngine's defaults: a pair
    with n events has the confidence `1 + alpha ln(1 + n)` in both (implicit's confidence is the
    matrix value, with its own alpha left at 1)."""
    from implicit.als import AlternatingLeastSquares

    matrix, users, items = user_items(train)
    confidence = matrix.copy()
    confidence.data = (1 + alpha * np.log1p(confidence.data)).astype(np.float32)
    model = AlternatingLeastSquares(
        factors=factors, iterations=iterations, regularization=regularization, alpha=1.0, use_cg=True, num_threads=threads,
        random_state=SEED, calculate_training_loss=False)
    start = time.perf_counter()
    model.fit(confidence, show_progress=False)
    return model, matrix, users, items, time.perf_counter() - start


def implicit_als(train, test):
    model, matrix, users, items, fit = fit_implicit_als(train)
    result = ranking_metrics(test, implicit_lists(model, matrix, users, items, test))
    result["fit_seconds"] = fit
    return result


def implicit_bpr(train, test):
    """implicit's BPR with the parameters Recommenders' benchmark gives cornac's BPR (200 factors,
    200 iterations, learning rate 0.01, λ 0.001)."""
    from implicit.bpr import BayesianPersonalizedRanking

    matrix, users, items = user_items(train)
    model = BayesianPersonalizedRanking(
        factors=200, iterations=200, learning_rate=0.01, regularization=0.001, num_threads=1, random_state=SEED)
    start = time.perf_counter()
    model.fit(matrix, show_progress=False)
    fit = time.perf_counter() - start
    result = ranking_metrics(test, implicit_lists(model, matrix, users, items, test))
    result["fit_seconds"] = fit
    return result


def most_popular(train, test):
    """The items most users interacted with in training, leaving out what each user saw; ties by
    first appearance in the training file (RecEngine's item order)."""
    counts = train[["userID", "itemID"]].drop_duplicates()["itemID"].value_counts(sort=False)
    order = list(train["itemID"].unique())
    ranked = sorted(order, key=lambda i: (-counts[i], order.index(i)))
    seen = train.groupby("userID")["itemID"].apply(set).to_dict()
    known = [u for u in test["userID"].unique() if u in seen]
    lists = []
    for u in known:
        top = []
        for i in ranked:
            if i not in seen[u]:
                top.append(i)
                if len(top) == K:
                    break
        lists.append(top)
    result = ranking_metrics(test, lists_frame(known, lists))
    result["fit_seconds"] = 0.0
    return result


def main():
    command = sys.argv[1]
    if command == "split-microsoft":
        split(read_udata(sys.argv[2]), sys.argv[3])
    elif command == "peers":
        train, test = read_csv(sys.argv[2]), read_csv(sys.argv[3])
        rows = {}
        for name, run in [("surprise_svd", surprise_svd), ("implicit_als", implicit_als), ("implicit_bpr", implicit_bpr), ("popular", most_popular)]:
            print(f"peer {name}", file=sys.stderr)
            rows[name] = run(train, test)
        with open(sys.argv[4], "w") as out:
            json.dump(rows, out, indent=1)
    elif command == "implicit-als":
        train, test = read_csv(sys.argv[2]), read_csv(sys.argv[3])
        model, matrix, users, items, fit = fit_implicit_als(train, threads=int(sys.argv[4]))
        frame = implicit_lists(model, matrix, users, items, test)
        frame["rank"] = (K + 1 - frame["prediction"]).astype(int)
        frame.rename(columns={"userID": "user_id", "itemID": "movie_id"})[["user_id", "movie_id", "rank"]].to_csv(sys.argv[5], index=False)
        print(json.dumps({"fit_seconds": fit}))
    elif command == "score":
        test = read_csv(sys.argv[3])
        lists = pd.read_csv(sys.argv[4]).rename(columns={"user_id": "userID", "movie_id": "itemID"})
        lists["prediction"] = (K + 1 - lists["rank"]).astype(float)
        print(json.dumps(ranking_metrics(test, lists[["userID", "itemID", "prediction"]])))
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
