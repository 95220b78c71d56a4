"""MovieLens-shaped ratings, generated: user_id,movie_id,rating,timestamp.

Usage: generate.py RATINGS USERS ITEMS OUT [SEED]

Item popularity follows a Zipf-like law (exponent 1.0, as MovieLens' long tail), user activity a
log-normal (a few heavy raters, many with twenty-odd ratings); each (user, item) pair appears once.
Ratings come from a rank-8 taste model plus biases and noise, rounded to 1..5, so they carry a
signal an SVD can learn; timestamps increase through the file.
"""
import os
import sys

import numpy as np

count, users, items, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 1)

item_weight = 1.0 / np.arange(1, items + 1) ** 1.0
item_weight /= item_weight.sum()
item_order = rng.permutation(items)  # popular items are not the low ids
user_weight = rng.lognormal(0.0, 1.0, users)
user_weight /= user_weight.sum()

pairs = np.empty(0, dtype=np.int64)
while pairs.size < count:
    need = int((count - pairs.size) * 1.3) + 1000
    u = rng.choice(users, size=need, p=user_weight)
    i = item_order[rng.choice(items, size=need, p=item_weight)]
    pairs = np.unique(np.concatenate([pairs, u.astype(np.int64) * items + i]))
pairs = rng.permutation(pairs)[:count]
u, i = pairs // items, pairs % items

rank = 8
p = rng.normal(0, 0.35, (users, rank)).astype(np.float32)
q = rng.normal(0, 0.35, (items, rank)).astype(np.float32)
bu = rng.normal(0, 0.35, users).astype(np.float32)
bi = rng.normal(0, 0.45, items).astype(np.float32)
score = 3.55 + bu[u] + bi[i] + np.einsum("nk,nk->n", p[u], q[i]) + rng.normal(0, 0.6, count).astype(np.float32)
rating = np.clip(np.rint(score), 1, 5).astype(np.int64)
timestamp = 880_000_000 + np.arange(count, dtype=np.int64) * 3

with open(out + ".partial", "w") as f:
    f.write("user_id,movie_id,rating,timestamp\n")
    chunk = 1_000_000
    for start in range(0, count, chunk):
        end = min(count, start + chunk)
        block = np.stack([u[start:end] + 1, i[start:end] + 1, rating[start:end], timestamp[start:end]], axis=1)
        np.savetxt(f, block, fmt="%d", delimiter=",")
os.replace(out + ".partial", out)  # a run stopped part way leaves no file that looks whole
print(f"wrote {count} ratings, {np.unique(u).size} users, {np.unique(i).size} items to {out}", file=sys.stderr)
