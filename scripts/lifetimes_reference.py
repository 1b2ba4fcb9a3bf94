"""Predictions of Python `lifetimes` (an independent implementation) for fixed parameters and
customers, as reference tables for tenure-clv's tests.

Run once: python scripts/lifetimes_reference.py > crates/tenure-clv/tests/data/lifetimes_predictions.csv
          python scripts/lifetimes_reference.py clv > crates/tenure-clv/tests/data/lifetimes_clv.csv
          python scripts/lifetimes_reference.py bgbb > crates/tenure-clv/tests/data/lifetimes_bgbb.csv
(needs `pip install lifetimes`). The tables are committed.
"""
import sys
import pandas as pd
from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

models = {
    "bgnbd": (BetaGeoFitter, dict(r=0.2426, alpha=4.4137, a=0.7930, b=2.4262)),
    "mbgnbd": (ModifiedBetaGeoFitter, dict(r=0.525, alpha=6.183, a=0.891, b=1.614)),
    "pnbd": (ParetoNBDFitter, dict(r=0.553, alpha=10.58, s=0.606, beta=11.66)),
}
customers = [(0, 0.0, 38.86), (1, 1.71, 38.86), (2, 30.43, 38.86), (5, 20.0, 30.0), (10, 5.0, 38.86), (25, 38.0, 38.86), (50, 38.86, 38.86)]
if len(sys.argv) > 1 and sys.argv[1] == "clv":
    from lifetimes import GammaGammaFitter
    bg = BetaGeoFitter()
    bg.params_ = pd.Series(dict(r=0.2426, alpha=4.4137, a=0.7930, b=2.4262))
    bg.predict = bg.conditional_expected_number_of_purchases_up_to_time  # set by fit() in lifetimes
    gg = GammaGammaFitter()
    gg.params_ = pd.Series(dict(p=6.25, q=3.74, v=15.44))
    rows = pd.DataFrame([(1, 1.71, 38.86, 11.77), (2, 30.43, 38.86, 22.35), (5, 20.0, 30.0, 40.0), (25, 38.0, 38.86, 14.5)],
                        columns=["x", "t_x", "T", "zbar"])
    print("x,t_x,T,zbar,months,discount,clv")
    for months, discount in [(12, 0.01), (24, 0.02)]:
        clv = gg.customer_lifetime_value(bg, rows.x, rows.t_x, rows["T"], rows.zbar, time=months, discount_rate=discount, freq="W")
        for (_, r), v in zip(rows.iterrows(), clv):
            print(f"{r.x:g},{r.t_x:g},{r['T']:g},{r.zbar:g},{months},{discount},{float(v):.12g}")
    sys.exit(0)

if len(sys.argv) > 1 and sys.argv[1] == "bgbb":
    from lifetimes import BetaGeoBetaBinomFitter
    m = BetaGeoBetaBinomFitter()
    m.params_ = pd.Series(dict(alpha=1.204, beta=0.750, gamma=0.657, delta=2.784))
    print("x,t_x,n,future,probability_alive,conditional_expected_purchases")
    for x, t_x, n in [(0, 0, 6), (1, 1, 6), (3, 5, 6), (6, 6, 6), (2, 3, 4)]:
        for future in (1, 5, 10):
            xs, ts, ns = pd.Series([x]), pd.Series([t_x]), pd.Series([n])
            alive = float(pd.Series(m.conditional_probability_alive(1, xs, ts, ns)).squeeze())
            expected = float(pd.Series(m.conditional_expected_number_of_purchases_up_to_time(future, xs, ts, ns)).squeeze())
            print(f"{x},{t_x},{n},{future},{alive:.12g},{expected:.12g}")
    sys.exit(0)

print("model,x,t_x,T,t,probability_alive,conditional_expected_purchases")
for name, (cls, params) in models.items():
    m = cls()
    m.params_ = pd.Series(params)
    for x, t_x, T in customers:
        for t in (10.0, 39.0):
            alive = float(pd.Series(m.conditional_probability_alive(x, t_x, T)).squeeze())
            expected = float(pd.Series(m.conditional_expected_number_of_purchases_up_to_time(t, x, t_x, T)).squeeze())
            print(f"{name},{x},{t_x},{T},{t},{alive:.12g},{expected:.12g}")
