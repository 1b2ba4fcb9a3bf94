#!/usr/bin/env python3
"""Cross-check: Tenure's metrics against an independent SQL implementation (DuckDB).

Generates a demo business into DATABASE_URL with the `tenure` binary, exports its events,
asks `tenure report --json` for 12 complete months, recomputes the same months with
scripts/metrics_crosscheck.py (SQL in DuckDB, no shared code) and compares every number.

Usage: test_crosscheck.py TENURE_BINARY DATABASE_URL
"""

import json
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "metrics_crosscheck.py")
EVENT = "Dashboard Viewed"


def run(binary, database, *args):
    out = subprocess.run(
        [binary, "--database", database, *args],
        check=True, capture_output=True, text=True,
    )
    return out.stdout


def compare(report, sql, failures, counter):
    """Every number of `report` against DuckDB's `sql`; differences go to `failures`."""

    def same(what, tenure, duck):
        counter[0] += 1
        if isinstance(tenure, float) or isinstance(duck, float):
            ok = (tenure is None and duck is None) or (
                tenure is not None and duck is not None and math.isclose(tenure, duck, rel_tol=1e-9, abs_tol=1e-12))
        else:
            ok = tenure == duck
        if not ok:
            failures.append(f"{what}: tenure {tenure!r}, duckdb {duck!r}")

    rows = report["subscriptions"]
    assert len(rows) == 12 == sql["months"], (len(rows), sql["months"])
    fields = ["mrr_start", "mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr",
              "reactivation_mrr", "customers_start", "customers", "churned_customers",
              "new_customers", "reactivated_customers", "logo_churn_rate",
              "net_revenue_retention", "gross_revenue_retention"]
    for row, ref in zip(rows, sql["subscriptions"]):
        assert row["complete"], row["period"]
        for f in fields:
            same(f"{row['period']} {f}", row[f], ref[f])

    cohort_rows = report["cohorts"]["rows"]
    for c, row in enumerate(cohort_rows):
        same(f"cohort {row['cohort']} size", row["customers"], sql["cohort_sizes"][c])
        for k, cell in enumerate(row["cells"]):
            same(f"cohort {row['cohort']} age {k}", cell["customers"], sql["cohorts"][c][k])

    for c, row in enumerate(report["activity"]["cohorts"]):
        for k, returned in enumerate(row["returned"]):
            same(f"activity {row['cohort']} interval {k}", returned, sql["activity"][c][k])

    for i, row in enumerate(report["voice"]):
        ref = sql["nps"][i] or [0, 0, 0, 0]
        got = [row["promoters"], row["passives"], row["detractors"], row["nps_skipped"]]
        same(f"{row['period']} nps counts", got, ref)

    for i, row in enumerate(report["transactions"]):
        ref = sql["orders"][i] or [0, 0, 0]
        same(f"{row['period']} orders", [row["orders"], row["order_revenue"], row["purchasers"]], ref)

    for i, row in enumerate(report["referrals"]):
        ref = sql["referrals"][i] or [0, 0]
        same(f"{row['period']} referrals", [row["new_customers"], row["referred_customers"]], ref)

    total_churn = sum(r["churned_customers"] for r in rows)
    assert total_churn > 50, f"too little churn to test: {total_churn}"
    return total_churn, sum(r["new_customers"] for r in rows)


def report_and_sql(binary, database, workspace, events):
    report = json.loads(run(
        binary, database, "report", "--json", "--workspace", workspace,
        "--from", "2025-01-01", "--to", "2025-12-31", "--event", EVENT,
    ))
    sql = json.loads(subprocess.run(
        [sys.executable, SCRIPT, events, "2025-01", "2025-12", EVENT],
        check=True, capture_output=True, text=True,
    ).stdout)
    return report, sql


def main():
    binary, database = sys.argv[1:3]
    run(binary, database, "demo", "--no-serve", "--customers", "1200", "--months", "30",
        "--seed", "7", "--end", "2026-01-01T00:00:00Z")
    failures = []
    counter = [0]
    summaries = []
    with tempfile.TemporaryDirectory() as tmp:
        events = os.path.join(tmp, "events.jsonl")
        run(binary, database, "export", "--output", events)
        workspace = json.loads(run(binary, database, "workspace", "list", "--json"))[0]["id"]
        report, sql = report_and_sql(binary, database, workspace, events)
        summaries.append(("the demo", *compare(report, sql, failures, counter)))

        # The same business from a source that never sends renewals (a CRM export, many
        # pipelines): read under the default policy, `auto`, it must not churn en masse.
        renewals = 0
        bare = os.path.join(tmp, "no_renewals.jsonl")
        with open(events) as src, open(bare, "w") as dst:
            for line in src:
                if json.loads(line).get("event") == "Subscription Renewed":
                    renewals += 1
                    continue
                dst.write(line)
        assert renewals > 1000, renewals
        run(binary, database, "workspace", "create", "no renewals")
        run(binary, database, "import", bare, "--format", "jsonl", "--workspace", "no renewals",
            "--quiet")
        report, sql = report_and_sql(binary, database, "no renewals", bare)
        churns, new = compare(report, sql, failures, counter)
        summaries.append((f"the demo without its {renewals} renewals", churns, new))
        # What the issue reproduced: read as explicit, the same business churns en masse.
        explicit = json.loads(run(
            binary, database, "report", "--json", "--workspace", "no renewals",
            "--from", "2025-01-01", "--to", "2025-12-31", "--renewals", "explicit",
        ))
        explicit_churns = sum(r["churned_customers"] for r in explicit["subscriptions"])
        assert explicit_churns > 2 * churns, (explicit_churns, churns)
        summaries.append(("the same read as explicit (not compared)", explicit_churns, 0))

    if failures:
        print(f"{len(failures)} of {counter[0]} numbers differ:")
        for f in failures[:40]:
            print("  " + f)
        sys.exit(1)
    described = "; ".join(
        f"{what}: {c} churns" + (f", {n} new customers" if n else "") for what, c, n in summaries)
    print(f"metrics cross-check: {counter[0]} numbers equal in Tenure and DuckDB over 12 months "
          f"({described})")


if __name__ == "__main__":
    main()
