#!/usr/bin/env python3
"""Independent re-computation of Tenure's headline monthly metrics, in SQL, with DuckDB.

Reads the events Tenure exported (`tenure export`, JSONL Segment messages) and computes, for
every calendar month from FROM_MONTH to TO_MONTH (both complete months, UTC), the
conventions of docs/metrics.md: MRR and its five movements, logo churn, net and gross revenue
retention, subscription cohorts, first-time activity retention of one event, NPS, orders and
referral share. Nothing here is shared with Tenure's Rust code: subscription states are
replayed in SQL from the raw facts.

Renewals follow Tenure's default policy, `auto`: a subscription that has received no
`Subscription Renewed` renews itself on its billing cycle (paid start + n intervals, the
day of the month kept), so only a cancellation ends it, at the end of the cycle period the
cancellation falls in; once it has received one, each period needs its renewal.
Assumption (true of the demo generator): renewals, when a source sends them, arrive on
time, at the end of the period they renew, so a period ends one interval after the last
renewal. The same script checks the demo as generated and the demo without its renewals.

Usage: metrics_crosscheck.py EVENTS.jsonl FROM_MONTH TO_MONTH ACTIVITY_EVENT > result.json
"""

import json
import sys

import duckdb

PAST_DUE_DAYS = 30


def main() -> None:
    path, first_month, last_month, activity_event = sys.argv[1:5]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    # The end of the cycle period containing instant x (ms) of a subscription paid from pf
    # (ms) every mp months: the first pf + n*mp months (n >= 1) after x. n0 = whole cycles
    # by month boundaries is never past the answer, and the answer is n0 or n0 + 1.
    con.execute(
        """
        CREATE MACRO cycle_end(pf, mp, x) AS (
          WITH n AS (SELECT greatest(1, date_diff('month', make_timestamptz(pf * 1000),
                                                   make_timestamptz(x * 1000)) // mp) AS n0)
          SELECT CASE
            WHEN epoch_ms(make_timestamptz(pf * 1000) + to_months(CAST(mp * n0 AS INTEGER))) > x
              THEN epoch_ms(make_timestamptz(pf * 1000) + to_months(CAST(mp * n0 AS INTEGER)))
            ELSE epoch_ms(make_timestamptz(pf * 1000) + to_months(CAST(mp * (n0 + 1) AS INTEGER)))
          END FROM n)
        """
    )
    con.execute(
        """
        CREATE TABLE raw AS
        SELECT json->>'type' AS type, json->>'userId' AS user_id,
               json->>'anonymousId' AS anon, json->>'event' AS event,
               epoch_ms(CAST(json->>'timestamp' AS TIMESTAMPTZ)) AS ts,
               json->'properties' AS p, json->'traits' AS traits
        FROM read_ndjson_objects(?)
        """,
        [path],
    )
    # Anonymous events belong to the user their anonymous id was identified as.
    con.execute(
        """
        CREATE TABLE ev AS
        SELECT r.*, coalesce(r.user_id, m.user_id, 'anon:' || r.anon) AS cust
        FROM raw r
        LEFT JOIN (SELECT DISTINCT anon, user_id FROM raw
                   WHERE type = 'identify' AND anon IS NOT NULL AND user_id IS NOT NULL) m
          ON r.user_id IS NULL AND r.anon = m.anon
        """
    )
    # Month boundaries: the first instant of each month, FROM_MONTH .. TO_MONTH + 1.
    con.execute(
        """
        CREATE TABLE b AS
        SELECT row_number() OVER (ORDER BY m) - 1 AS i, epoch_ms(m) AS b
        FROM generate_series(CAST(? || '-01' AS TIMESTAMPTZ),
                             CAST(? || '-01' AS TIMESTAMPTZ) + INTERVAL 1 MONTH,
                             INTERVAL 1 MONTH) t(m)
        """,
        [first_month, last_month],
    )
    months = con.execute("SELECT count(*) - 1 FROM b").fetchone()[0]
    con.execute(
        """
        CREATE TABLE f AS
        SELECT cust, ts, event, p->>'subscription_id' AS sub, p->>'interval' AS iv,
               CAST(round(CAST(p->>'amount' AS DOUBLE) * 100) AS BIGINT) AS amount,
               CAST(round(coalesce(CAST(p->>'discount' AS DOUBLE), 0) * 100) AS BIGINT) AS discount,
               epoch_ms(CAST(p->>'trial_end' AS TIMESTAMPTZ)) AS trial_end,
               epoch_ms(CAST(p->>'ends_at' AS TIMESTAMPTZ)) AS ends_at
        FROM ev WHERE type = 'track' AND event LIKE 'Subscription %'
        """
    )
    # Each subscription as of just before each boundary (facts strictly earlier).
    con.execute(
        """
        CREATE TABLE sb AS
        WITH agg AS (
          SELECT f.cust, f.sub, b.i, b.b,
            max(ts) FILTER (WHERE event = 'Subscription Started') AS start_at,
            arg_max(amount - discount, ts) FILTER (WHERE event IN ('Subscription Started', 'Subscription Changed')) AS net_amount,
            arg_max(iv, ts) FILTER (WHERE event IN ('Subscription Started', 'Subscription Changed')) AS iv,
            arg_max(trial_end, ts) FILTER (WHERE event = 'Subscription Started') AS trial_end,
            max(ts) FILTER (WHERE event = 'Subscription Renewed') AS last_renewal,
            max(ts) FILTER (WHERE event = 'Subscription Cancelled') AS cancel_at,
            arg_max(ends_at, ts) FILTER (WHERE event = 'Subscription Cancelled') AS cancel_ends_at,
            arg_max(event, ts) FILTER (WHERE event IN ('Subscription Paused', 'Subscription Resumed', 'Subscription Started')) AS pause_state
          FROM f JOIN b ON f.ts < b.b
          GROUP BY f.cust, f.sub, b.i, b.b
        ), timed AS (
          SELECT *,
            CASE WHEN trial_end > start_at THEN trial_end ELSE start_at END AS paid_from,
            CASE iv WHEN 'month' THEN 1 WHEN 'year' THEN 12 END AS months_per
          FROM agg WHERE start_at IS NOT NULL
        ), ends AS (
          SELECT *,
            epoch_ms(make_timestamptz(coalesce(last_renewal, paid_from) * 1000)
                     + to_months(months_per)) AS period_end,
            cancel_at IS NOT NULL AND (last_renewal IS NULL OR last_renewal < cancel_at) AS cancelled
          FROM timed
        ), status AS (
          SELECT *,
            CASE WHEN NOT cancelled THEN NULL
                 WHEN cancel_at < paid_from THEN cancel_at
                 -- Never renewed: it renewed itself until the cancellation's period ended.
                 WHEN last_renewal IS NULL
                   THEN greatest(coalesce(cancel_ends_at, cycle_end(paid_from, months_per, cancel_at)), cancel_at)
                 ELSE greatest(coalesce(cancel_ends_at, period_end), cancel_at) END AS end_at
          FROM ends
        )
        SELECT cust, sub, i, b, paid_from, cancel_at, iv,
          CASE
            WHEN cancelled AND end_at <= b - 1 THEN 'ended'
            -- Past due, then churned, only once renewals are expected of it.
            WHEN NOT cancelled AND pause_state <> 'Subscription Paused' AND last_renewal IS NOT NULL
                 AND period_end + CAST(? AS BIGINT) * 86400000 <= b - 1 THEN 'ended'
            WHEN pause_state = 'Subscription Paused' THEN 'paused'
            WHEN trial_end > b - 1 THEN 'trialing'
            ELSE 'paying'
          END AS state,
          CASE iv WHEN 'month' THEN net_amount
                  WHEN 'year' THEN (net_amount * 2 + 12) // 24 END AS monthly
        FROM status
        """,
        [PAST_DUE_DAYS],
    )
    # Customers at each boundary: MRR and paused flag.
    con.execute(
        """
        CREATE TABLE cb AS
        SELECT cust, i,
          sum(CASE WHEN state = 'paying' THEN monthly ELSE 0 END) AS mrr,
          bool_or(state = 'paused') AS any_paused
        FROM sb GROUP BY cust, i
        """
    )
    # First payment: the paid start of a subscription not cancelled during its trial.
    con.execute(
        """
        CREATE TABLE first_paid AS
        SELECT cust, min(paid_from) AS first_paid FROM (
          SELECT f.cust, f.sub,
            CASE WHEN max(trial_end) > min(ts) THEN max(trial_end) ELSE min(ts) END AS paid_from,
            min(ts) FILTER (WHERE event = 'Subscription Cancelled') AS first_cancel,
            max(trial_end) AS trial_end
          FROM f WHERE event IN ('Subscription Started', 'Subscription Cancelled')
          GROUP BY f.cust, f.sub
        ) WHERE first_cancel IS NULL OR first_cancel >= paid_from
        GROUP BY cust
        """
    )
    con.execute(
        """
        CREATE TABLE moves AS
        WITH pairs AS (
          SELECT c.cust, p.i,
            coalesce(s.mrr, 0) AS ms, coalesce(s.mrr = 0 AND s.any_paused, false) AS ps,
            coalesce(e.mrr, 0) AS me, coalesce(e.mrr = 0 AND e.any_paused, false) AS pe,
            fp.first_paid, p.b AS start_b, q.b AS end_b
          FROM (SELECT DISTINCT cust FROM sb) c
          CROSS JOIN b p JOIN b q ON q.i = p.i + 1
          LEFT JOIN cb s ON s.cust = c.cust AND s.i = p.i
          LEFT JOIN cb e ON e.cust = c.cust AND e.i = q.i
          LEFT JOIN first_paid fp ON fp.cust = c.cust
        )
        SELECT *,
          (ms > 0 OR ps) AS active_start, (me > 0 OR pe) AS active_end
        FROM pairs
        """
    )
    rows = con.execute(
        """
        SELECT i,
          sum(CASE WHEN active_start THEN ms ELSE 0 END) AS mrr_start,
          sum(CASE WHEN active_end THEN me ELSE 0 END) AS mrr,
          sum(CASE WHEN ms = 0 AND me > 0 AND NOT ps AND NOT coalesce(first_paid < start_b, false) THEN me ELSE 0 END) AS new_mrr,
          sum(CASE WHEN ms > 0 AND me > ms THEN me - ms WHEN ms = 0 AND me > 0 AND ps THEN me ELSE 0 END) AS expansion_mrr,
          sum(CASE WHEN ms > 0 AND me > 0 AND me < ms THEN ms - me WHEN ms > 0 AND me = 0 AND pe THEN ms ELSE 0 END) AS contraction_mrr,
          sum(CASE WHEN ms > 0 AND me = 0 AND NOT pe THEN ms ELSE 0 END) AS churned_mrr,
          sum(CASE WHEN ms = 0 AND me > 0 AND NOT ps AND coalesce(first_paid < start_b, false) THEN me ELSE 0 END) AS reactivation_mrr,
          count(*) FILTER (WHERE active_start) AS customers_start,
          count(*) FILTER (WHERE active_end) AS customers,
          count(*) FILTER (WHERE active_start AND NOT active_end) AS churned_customers,
          count(*) FILTER (WHERE ms = 0 AND me > 0 AND NOT ps AND NOT coalesce(first_paid < start_b, false)) AS new_customers,
          count(*) FILTER (WHERE ms = 0 AND me > 0 AND NOT ps AND coalesce(first_paid < start_b, false)) AS reactivated_customers
        FROM moves GROUP BY i ORDER BY i
        """
    ).fetchall()
    cols = [
        "i", "mrr_start", "mrr", "new_mrr", "expansion_mrr", "contraction_mrr", "churned_mrr",
        "reactivation_mrr", "customers_start", "customers", "churned_customers",
        "new_customers", "reactivated_customers",
    ]
    subscriptions = []
    for r in rows:
        row = {c: int(v) for c, v in zip(cols, r)}
        s = row["mrr_start"]
        row["logo_churn_rate"] = (
            row["churned_customers"] / row["customers_start"] if row["customers_start"] else None
        )
        row["net_revenue_retention"] = (
            (s + row["expansion_mrr"] - row["contraction_mrr"] - row["churned_mrr"]) / s if s else None
        )
        row["gross_revenue_retention"] = (
            1 - (row["churned_mrr"] + row["contraction_mrr"]) / s if s else None
        )
        subscriptions.append(row)

    # Subscription cohorts by first-payment month: members active at each later month end.
    cohort_rows = con.execute(
        """
        WITH members AS (
          SELECT fp.cust, m.i AS c FROM first_paid fp
          JOIN b m ON fp.first_paid >= m.b JOIN b n ON n.i = m.i + 1 AND fp.first_paid < n.b
        )
        SELECT mb.c, e.i - 1 - mb.c AS age, count(*) FILTER (WHERE cb.mrr > 0 OR cb.any_paused) AS kept
        FROM members mb JOIN b e ON e.i > mb.c
        LEFT JOIN cb ON cb.cust = mb.cust AND cb.i = e.i
        GROUP BY mb.c, age ORDER BY mb.c, age
        """
    ).fetchall()
    sizes = dict(
        con.execute(
            """
            SELECT m.i, count(*) FROM first_paid fp
            JOIN b m ON fp.first_paid >= m.b JOIN b n ON n.i = m.i + 1 AND fp.first_paid < n.b
            GROUP BY m.i
            """
        ).fetchall()
    )
    cohorts = [[0] * (months - c) for c in range(months)]
    for c, age, kept in cohort_rows:
        cohorts[c][age] = kept
    cohort_sizes = [sizes.get(c, 0) for c in range(months)]

    # First-time activity retention of one event, calendar months, "on".
    activity_rows = con.execute(
        """
        WITH occ AS (
          SELECT cust, (SELECT max(i) FROM b WHERE b.b <= ev.ts) AS i, ts FROM ev
          WHERE type = 'track' AND event = ?
        ), first AS (
          SELECT cust, min(ts) AS first_ts FROM occ GROUP BY cust
        ), cohort AS (
          SELECT f.cust, o.i AS c FROM first f JOIN occ o ON o.cust = f.cust AND o.ts = f.first_ts
        )
        SELECT DISTINCT c.c, o.i - c.c AS age, o.cust
        FROM cohort c JOIN occ o ON o.cust = c.cust
        WHERE c.c IS NOT NULL AND o.i IS NOT NULL AND o.i < ?
        """,
        [activity_event, months],
    ).fetchall()
    activity = [[0] * (months - c) for c in range(months)]
    seen = set()
    for c, age, cust in activity_rows:
        if c < 0 or c >= months or (c, age, cust) in seen:
            continue
        seen.add((c, age, cust))
        activity[c][age] += 1

    def per_month(sql: str, params=None):
        out = {i: None for i in range(months)}
        for r in con.execute(sql, params or []).fetchall():
            if r[0] is not None and 0 <= r[0] < months:
                out[r[0]] = [int(x) for x in r[1:]]
        return out

    month_of = "(SELECT max(i) FROM b WHERE b.b <= ev.ts)"
    nps = per_month(
        f"""
        SELECT {month_of} AS i,
          count(*) FILTER (WHERE CAST(p->>'score' AS INT) >= 9),
          count(*) FILTER (WHERE CAST(p->>'score' AS INT) BETWEEN 7 AND 8),
          count(*) FILTER (WHERE CAST(p->>'score' AS INT) <= 6),
          count(*) FILTER (WHERE (p->>'score') IS NULL)
        FROM ev WHERE type = 'track' AND event = 'Survey Responded'
          AND coalesce(CAST(p->>'scale' AS INT), 10) = 10
        GROUP BY i
        """
    )
    orders = per_month(
        f"""
        SELECT {month_of} AS i, count(*),
          sum(CAST(round(CAST(coalesce(p->>'revenue', p->>'total') AS DOUBLE) * 100) AS BIGINT)),
          count(DISTINCT cust)
        FROM ev WHERE type = 'track' AND event = 'Order Completed'
        GROUP BY i
        """
    )
    referrals = per_month(
        """
        WITH first_order AS (
          SELECT cust, min(ts) AS t FROM ev WHERE type = 'track' AND event = 'Order Completed' GROUP BY cust
        ), firsts AS (
          SELECT coalesce(a.cust, o.cust) AS cust, least(a.first_paid, o.t) AS t
          FROM first_paid a FULL OUTER JOIN first_order o ON a.cust = o.cust
        ), referred AS (
          SELECT DISTINCT cust FROM ev
          WHERE (type = 'track' AND event = 'Referral Code Used')
             OR (type = 'identify' AND (traits->>'referred_by') IS NOT NULL)
             OR lower((traits->>'acquisition_channel')) = 'referral'
        )
        SELECT (SELECT max(i) FROM b WHERE b.b <= firsts.t) AS i, count(*),
               count(*) FILTER (WHERE cust IN (SELECT cust FROM referred))
        FROM firsts GROUP BY i
        """
    )
    json.dump(
        {
            "months": months,
            "subscriptions": subscriptions,
            "cohort_sizes": cohort_sizes,
            "cohorts": cohorts,
            "activity": activity,
            "nps": [nps[i] for i in range(months)],
            "orders": [orders[i] for i in range(months)],
            "referrals": [referrals[i] for i in range(months)],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
