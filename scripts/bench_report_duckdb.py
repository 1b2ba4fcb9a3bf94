#!/usr/bin/env python3
"""DuckDB side of `cargo bench -p tenure --bench report`: the monthly first-time activity
cohort matrix over the same events, computed in memory.

Loads CSV (customer, ts in epoch milliseconds) into an in-memory table (timed separately),
then runs the matrix query 5 times. Prints JSON: version, load_seconds, runs, median_seconds
and the non-empty cells [cohort index, age, customers] relative to FIRST_MONTH.

Usage: bench_report_duckdb.py EVENTS.csv FIRST_MONTH MONTHS
"""

import json
import statistics
import sys
import time

import duckdb

path, first_month, months = sys.argv[1], sys.argv[2], int(sys.argv[3])
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
t = time.perf_counter()
con.execute(
    "CREATE TABLE events AS SELECT * FROM read_csv(?, header = true, columns = {'customer': 'BIGINT', 'ts': 'BIGINT'})",
    [path],
)
load = time.perf_counter() - t

# First-time cohorts: each customer in the month of their first event; a cell counts the
# members active in month cohort + age. Months are UTC calendar months.
QUERY = """
WITH active AS (
  SELECT DISTINCT customer,
         date_diff('month', CAST(? AS DATE), CAST(date_trunc('month', make_timestamp(ts * 1000)) AS DATE)) AS m
  FROM events
), first AS (
  SELECT customer, min(m) AS c FROM active GROUP BY customer
)
SELECT f.c, a.m - f.c AS age, count(*) AS n
FROM active a JOIN first f USING (customer)
WHERE f.c >= 0 AND f.c < ? AND a.m < ?
GROUP BY 1, 2 ORDER BY 1, 2
"""
params = [first_month + "-01", months, months]
runs = []
cells = None
for _ in range(5):
    t = time.perf_counter()
    cells = con.execute(QUERY, params).fetchall()
    runs.append(time.perf_counter() - t)
json.dump(
    {
        "version": duckdb.__version__,
        "load_seconds": load,
        "runs": [round(r, 3) for r in runs],
        "median_seconds": statistics.median(runs),
        "cells": [[int(c), int(a), int(n)] for c, a, n in cells],
    },
    sys.stdout,
)
