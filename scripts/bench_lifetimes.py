"""The fits of crates/tenure-clv/benches/fit.rs, done by Python `lifetimes` on the same data,
timed the same way (median of several runs). Prints JSON lines. Used by scripts/bench-clv.
"""
import json
import sys
import time

import numpy as np
import pandas as pd
from lifetimes import BetaGeoBetaBinomFitter, BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import summary_data_from_transaction_data

SHARED = sys.argv[1]
MASK = (1 << 64) - 1


def median_ms(runs, f):
    times, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = f()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return times[runs // 2], result


def report(task, customers, timed):
    ms, params = timed
    print(json.dumps({"impl": "lifetimes", "task": task, "customers": customers, "ms": round(ms, 3), "params": params}), flush=True)


def resample(df, n):
    # The same xorshift64* stream as the Rust benchmark, so both fit the same 100k rows.
    state, idx = 0x9E3779B97F4A7C15, []
    for _ in range(n):
        state ^= state >> 12
        state ^= (state << 25) & MASK
        state ^= state >> 27
        idx.append(((state * 0x2545F4914F6CDD1D) & MASK) % len(df))
    return df.iloc[idx].reset_index(drop=True)


# Parameters in tenure-clv's order, to compare the two fits.
ORDER = {"BetaGeoFitter": ["r", "alpha", "a", "b"], "ModifiedBetaGeoFitter": ["r", "alpha", "a", "b"],
         "ParetoNBDFitter": ["r", "alpha", "s", "beta"], "GammaGammaFitter": ["p", "q", "v"],
         "BetaGeoBetaBinomFitter": ["alpha", "beta", "gamma", "delta"]}


def fit_ll(model, *columns):
    model.fit(*columns)
    return [float(model.params_[k]) for k in ORDER[type(model).__name__]]


cdnow = pd.read_csv(f"{SHARED}/cdnow/cdnow_customers_summary_with_transactions.csv")
n = len(cdnow)
report("bgnbd_fit_cdnow", n, median_ms(5, lambda: fit_ll(BetaGeoFitter(), cdnow.x, cdnow.t_x, cdnow["T"])))
report("mbgnbd_fit_cdnow", n, median_ms(5, lambda: fit_ll(ModifiedBetaGeoFitter(), cdnow.x, cdnow.t_x, cdnow["T"])))
report("pnbd_fit_cdnow", n, median_ms(3, lambda: fit_ll(ParetoNBDFitter(), cdnow.x, cdnow.t_x, cdnow["T"])))
repeat = cdnow[cdnow.x > 0]
report("gg_fit_cdnow", len(repeat), median_ms(5, lambda: fit_ll(GammaGammaFitter(), repeat.x, repeat.zbar)))
bg = BetaGeoFitter().fit(cdnow.x, cdnow.t_x, cdnow["T"])
report("bgnbd_predict_cdnow", n, median_ms(5, lambda: [float(bg.conditional_expected_number_of_purchases_up_to_time(39, cdnow.x, cdnow.t_x, cdnow["T"]).sum())]))
big = resample(cdnow, 100_000)
report("pnbd_fit_100k", len(big), median_ms(1, lambda: fit_ll(ParetoNBDFitter(), big.x, big.t_x, big["T"])))
report("bgnbd_fit_100k", len(big), median_ms(1, lambda: fit_ll(BetaGeoFitter(), big.x, big.t_x, big["T"])))
don = pd.read_csv(f"{SHARED}/donations/donations.csv")
report("bgbb_fit_donations", int(don.weights.sum()), median_ms(5, lambda: fit_ll(BetaGeoBetaBinomFitter(), don.frequency, don.recency, don.periods, don.weights)))

# Summary building on 1,000,000 transactions (lifetimes is too slow for 10 million here).
rng = np.random.default_rng(42)
tx = pd.DataFrame({
    "customer": rng.integers(0, 100_000, 1_000_000),
    "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 730, 1_000_000), unit="D"),
    "value": rng.integers(0, 10_000, 1_000_000) / 100,
})
report("summary_1m_transactions", 100_000, median_ms(1, lambda: [len(summary_data_from_transaction_data(
    tx, "customer", "date", monetary_value_col="value", observation_period_end="2025-07-01", freq="W"))]))
