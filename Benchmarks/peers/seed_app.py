"""The seed's inference stack, rebuilt for comparison: Surprise SVD trained on ml-100k, Flask,
and the seed's top-20 loop (`algo.predict` for every item the user has not rated).

Run under gunicorn with --preload so that the model is trained once before the workers fork:
    RATINGS=u.data gunicorn --preload -w 2 -b 127.0.0.1:PORT seed_app:app
"""
import os

from flask import Flask
from surprise import SVD, Dataset, Reader

data = Dataset.load_from_file(os.environ["RATINGS"], reader=Reader(line_format="user item rating timestamp", sep="\t"))
trainset = data.build_full_trainset()
algo = SVD(random_state=0)
algo.fit(trainset)
all_items = [trainset.to_raw_iid(inner) for inner in trainset.all_items()]

app = Flask(__name__)


def recommend(user_id, k=20):
    try:
        rated = {trainset.to_raw_iid(i) for i, _ in trainset.ur[trainset.to_inner_uid(user_id)]}
    except ValueError:
        rated = set()
    scores = [(algo.predict(user_id, item).est, item) for item in all_items if item not in rated]
    scores.sort(key=lambda pair: -pair[0])
    return [item for _, item in scores[:k]]


@app.route("/recommend/<user_id>")
def recommend_route(user_id):
    return ",".join(recommend(user_id))


@app.route("/health")
def health():
    return {"status": "ok"}
