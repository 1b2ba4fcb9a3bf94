"""The whole of `tenure clv fit --model pnbd --value-column amount --predictions FILE` done by
Python `lifetimes`: read the transactions, summarise, fit Pareto/NBD, P(alive) and expected
purchases over 12 months for every customer, fit Gamma-Gamma, 12-month CLV at 1% a month,
write the predictions. Used by scripts/bench-clv, which times tenure on the same file.

usage: bench_clv_pipeline.py generate FILE   (100,000 simulated customers, seed fixed)
       bench_clv_pipeline.py lifetimes FILE OUT
"""
import json
import sys
import time

import numpy as np
import pandas as pd


def generate(path):
    # Pareto/NBD with CDNOW-like parameters (weeks): purchase rate λ ~ Gamma(r, α), lifetime
    # rate μ ~ Gamma(s, β); customers acquired over 12 weeks, observed to week 39. Spend per
    # order ~ Gamma(p, ν), ν ~ Gamma(q, γ) (Gamma-Gamma).
    rng = np.random.default_rng(2026)
    n = 100_000
    r, alpha, s, beta = 0.55, 10.58, 0.61, 11.67
    p, q, gamma = 6.25, 3.74, 15.44
    lam = rng.gamma(r, 1 / alpha, n)
    mu = rng.gamma(s, 1 / beta, n)
    nu = rng.gamma(q, 1 / gamma, n)
    start = rng.integers(0, 84, n)  # first purchase day
    end_day = 39 * 7
    rows = []
    base = np.datetime64("2025-01-01")
    for i in range(n):
        life = rng.exponential(1 / mu[i]) * 7 if mu[i] > 0 else np.inf
        day = float(start[i])
        stop = min(end_day, start[i] + life)
        rows.append((i, day, rng.gamma(p, 1 / nu[i])))
        while True:
            day += rng.exponential(1 / lam[i]) * 7 if lam[i] > 0 else np.inf
            if day > stop:
                break
            rows.append((i, day, rng.gamma(p, 1 / nu[i])))
    df = pd.DataFrame(rows, columns=["customer_id", "day", "amount"])
    df["date"] = (base + df["day"].astype(int).astype("timedelta64[D]")).astype(str)
    df["amount"] = df["amount"].round(2)
    df[["customer_id", "date", "amount"]].to_csv(path, index=False)
    print(f"{n} customers, {len(df)} transactions -> {path}", file=sys.stderr)


def lifetimes_pipeline(path, out):
    from lifetimes import GammaGammaFitter, ParetoNBDFitter
    from lifetimes.utils import summary_data_from_transaction_data

    started = time.perf_counter()
    tx = pd.read_csv(path)
    summary = summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="amount", freq="W"
    )
    pnbd = ParetoNBDFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    summary["p_alive"] = pnbd.conditional_probability_alive(
        summary["frequency"], summary["recency"], summary["T"]
    )
    horizon = 12 * 4.345
    summary["expected_purchases"] = pnbd.conditional_expected_number_of_purchases_up_to_time(
        horizon, summary["frequency"], summary["recency"], summary["T"]
    )
    repeat = summary[summary["frequency"] > 0]
    gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    summary["expected_value"] = gg.conditional_expected_average_profit(
        summary["frequency"], summary["monetary_value"]
    )
    summary["clv"] = gg.customer_lifetime_value(
        pnbd, summary["frequency"], summary["recency"], summary["T"], summary["monetary_value"],
        time=12, discount_rate=0.01, freq="W",
    )
    summary.to_csv(out)
    ms = (time.perf_counter() - started) * 1000
    print(json.dumps({
        "impl": "lifetimes", "task": "pnbd_pipeline", "customers": len(summary), "ms": round(ms, 1),
        "params": [float(pnbd.params_[k]) for k in ["r", "alpha", "s", "beta"]],
        "total_clv": float(summary["clv"].sum()),
        "mean_p_alive": float(summary["p_alive"].mean()),
    }), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "generate":
        generate(sys.argv[2])
    else:
        lifetimes_pipeline(sys.argv[2], sys.argv[3])
