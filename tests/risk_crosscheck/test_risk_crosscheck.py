#!/usr/bin/env python3
"""Cross-check: the churn-risk model's evaluation report against SQL in DuckDB.

Generates the demo business into DATABASE_URL with the `tenure` binary, trains the risk model
(`tenure risk train --json --holdout-csv`), then recomputes from the holdout rows alone (one
per current customer at the holdout cut-off: the kept model's probability, the outcome and
the days since last activity), in SQL with no shared code: the row and churner counts, AUC
(Mann-Whitney with tied ranks averaged), Brier score, log loss, the top-decile lift and
capture, the reliability table, and the recency baseline's AUC and top decile. Each must
equal the report's.

Usage: test_risk_crosscheck.py TENURE_BINARY DATABASE_URL
"""

import csv
import json
import math
import subprocess
import sys
import tempfile

import duckdb

END = "2026-12-01T00:00:00Z"


def run(binary, database, *args):
    out = subprocess.run(
        [binary, "--database", database, *args],
        check=True, capture_output=True, text=True,
    )
    return out.stdout


def evaluation(con, score, probabilities):
    """The report's `Evaluation` of `score` (a column of `holdout`), in SQL."""
    auc = con.execute(f"""
        WITH ranked AS (
            SELECT churned,
                   rank() OVER (ORDER BY {score}) AS low,
                   count(*) OVER (PARTITION BY {score}) AS tied
            FROM holdout
        ), counts AS (
            SELECT count(*) FILTER (WHERE churned = 1) AS p, count(*) FILTER (WHERE churned = 0) AS n
            FROM holdout
        )
        SELECT (sum(low + (tied - 1) / 2.0) FILTER (WHERE churned = 1) - p * (p + 1) / 2.0) / (p * n)
        FROM ranked, counts GROUP BY p, n
    """).fetchone()[0]
    rows, churned = con.execute("SELECT count(*), sum(churned) FROM holdout").fetchone()
    top_rows = math.ceil(rows / 10)
    top_churned = con.execute(f"""
        SELECT sum(churned) FROM (
            SELECT churned FROM holdout ORDER BY {score} DESC, line LIMIT {top_rows})
    """).fetchone()[0]
    base = churned / rows
    out = {
        "rows": rows, "churned": int(churned), "base_rate": base, "auc": auc,
        "top_decile": {"rows": top_rows, "churned": int(top_churned),
                       "lift": (top_churned / top_rows) / base, "capture": top_churned / churned},
    }
    if probabilities:
        brier, log_loss = con.execute("""
            SELECT avg((probability - churned) ^ 2),
                   -avg(CASE WHEN churned = 1 THEN ln(greatest(least(probability, 1 - 1e-15), 1e-15))
                             ELSE ln(1 - greatest(least(probability, 1 - 1e-15), 1e-15)) END)
            FROM holdout
        """).fetchone()
        bins = dict((b, (n, mp, ob)) for b, n, mp, ob in con.execute("""
            SELECT least(floor(probability * 10), 9)::INTEGER AS bin, count(*), avg(probability), avg(churned)
            FROM holdout GROUP BY bin
        """).fetchall())
        out["brier"] = brier
        out["log_loss"] = log_loss
        out["reliability"] = [
            {"rows": bins.get(i, (0, None, None))[0],
             "mean_predicted": bins.get(i, (0, None, None))[1],
             "observed": bins.get(i, (0, None, None))[2]}
            for i in range(10)
        ]
    return out


def main():
    binary, database = sys.argv[1:3]
    run(binary, database, "demo", "--no-serve", "--end", END)
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/holdout.csv"
        report = json.loads(run(binary, database, "risk", "train", "--at", END, "--json",
                                "--holdout-csv", path))["report"]
        con = duckdb.connect()
        con.execute("CREATE TABLE holdout (line INTEGER, probability DOUBLE, churned INTEGER, recency DOUBLE)")
        with open(path) as f:
            rows = [(i, float(r["probability"]), int(r["churned"]),
                     float(r["recency_days"]) if r["recency_days"] else float("inf"))
                    for i, r in enumerate(csv.DictReader(f))]
        con.executemany("INSERT INTO holdout VALUES (?, ?, ?, ?)", rows)

    failures = []
    checked = 0

    def same(what, tenure, duck):
        nonlocal checked
        checked += 1
        if isinstance(tenure, float) or isinstance(duck, float):
            ok = (tenure is None and duck is None) or (
                tenure is not None and duck is not None
                and math.isclose(tenure, duck, rel_tol=1e-9, abs_tol=1e-12))
        else:
            ok = tenure == duck
        if not ok:
            failures.append(f"{what}: tenure {tenure!r}, duckdb {duck!r}")

    def compare(what, tenure, duck):
        if isinstance(duck, dict):
            for k, v in duck.items():
                compare(f"{what}.{k}", tenure[k], v)
        elif isinstance(duck, list):
            same(f"{what} length", len(tenure), len(duck))
            for i, (t, d) in enumerate(zip(tenure, duck)):
                compare(f"{what}[{i}]", t, d)
        else:
            same(what, tenure, duck)

    kept = next(c for c in report["candidates"] if c["learner"] == report["kept"])
    same("holdout rows", report["holdout"]["rows"], len(rows))
    compare("kept model", kept["holdout"], evaluation(con, "probability", True))
    compare("recency baseline", report["recency_baseline"], evaluation(con, "recency", False))
    same("gain over recency", report["auc_gain_over_recency"],
         kept["holdout"]["auc"] - report["recency_baseline"]["auc"])
    if failures:
        print("\n".join(failures))
        sys.exit(f"risk cross-check: {len(failures)} of {checked} figures differ")
    print(f"risk cross-check: {checked} figures equal (holdout {len(rows)} rows, "
          f"kept {report['kept']} AUC {kept['holdout']['auc']:.3f}, "
          f"recency {report['recency_baseline']['auc']:.3f})")


if __name__ == "__main__":
    main()
