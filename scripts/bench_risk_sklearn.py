#!/usr/bin/env python3
"""The churn-risk benchmark's other side: scikit-learn on the rows Tenure trained on.

Reads the CSV written by `cargo bench -p tenure --bench risk` (set, churned, features; an
empty cell is undefined), fits HistGradientBoostingClassifier (200 trees of depth 3,
learning rate 0.05, min 5 samples per leaf: Tenure's settings) and an L2 LogisticRegression
(C = 1 on standardised features, missing values at the mean) as Tenure does: each on the fit
rows (Tenure judges that one on validation), then on fit + validation (evaluated on the
holdout). Prints the time of both fits of each learner and the holdout AUC.

Usage: bench_risk_sklearn.py ROWS.csv
"""

import sys
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

path = sys.argv[1]
with open(path) as f:
    header = f.readline().strip().split(",")
    sets, labels, rows = [], [], []
    for line in f:
        cells = line.rstrip("\n").split(",")
        sets.append(cells[0])
        labels.append(int(cells[1]))
        rows.append([float(c) if c else np.nan for c in cells[2:]])
x = np.array(rows)
y = np.array(labels)
sets = np.array(sets)
train = sets != "holdout"
hold = sets == "holdout"

fit_only = sets == "fit"


def trees_on(rows):
    return HistGradientBoostingClassifier(max_iter=200, max_depth=3, learning_rate=0.05,
                                          min_samples_leaf=5, early_stopping=False,
                                          random_state=7).fit(x[rows], y[rows])


t = time.perf_counter()
trees_on(fit_only)
trees = trees_on(train)
trees_s = time.perf_counter() - t
trees_auc = roc_auc_score(y[hold], trees.predict_proba(x[hold])[:, 1])

t = time.perf_counter()
mean = np.nanmean(x[train], axis=0)
sd = np.nanstd(x[train], axis=0)
sd[~(sd > 0)] = 1.0
z = np.nan_to_num((x - mean) / sd, nan=0.0)
LogisticRegression(C=1.0, max_iter=1000).fit(z[fit_only], y[fit_only])
logistic = LogisticRegression(C=1.0, max_iter=1000).fit(z[train], y[train])
logistic_s = time.perf_counter() - t
logistic_auc = roc_auc_score(y[hold], logistic.predict_proba(z[hold])[:, 1])

import sklearn  # noqa: E402

print(f"scikit-learn {sklearn.__version__} on the same rows ({train.sum()} training, {hold.sum()} holdout), two fits per learner:")
print(f"  scikit-learn gradient-boosted trees   fits {trees_s:.2f} s  holdout AUC {trees_auc:.4f}")
print(f"  scikit-learn logistic regression      fits {logistic_s:.2f} s  holdout AUC {logistic_auc:.4f}")
