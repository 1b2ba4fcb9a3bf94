"""Reference DERT values for tenure-clv, computed at 50 digits with mpmath from the papers'
closed forms (an implementation independent of the Rust one, which integrates differently):

- Pareto/NBD: Fader, Hardie & Lee (2005), "RFM and CLV: using iso-value curves", eq. 2,
  with Tricomi's U from mpmath.hyperu and the likelihood of the FHL 2005 note (eq. 18-20);
- BG/BB: the defining sum over future opportunities (mpmath.nsum), not the paper's closed
  form (eq. 14), which the Rust code uses.

Run once: python scripts/dert_reference.py > crates/tenure-clv/tests/data/dert_reference.csv
"""
import mpmath as mp

mp.mp.dps = 50
f = mp.mpf

# CDNOW, the published Pareto/NBD fit (FHL 2005 note).
r, alpha, s, beta = f("0.5533"), f("10.5776"), f("0.6061"), f("11.6650")


def pnbd_likelihood(x, tx, T):
    a = r + s + x
    if alpha >= beta:
        larger, b, gap = alpha, s + 1, alpha - beta
    else:
        larger, b, gap = beta, r + x, beta - alpha
    a0 = mp.hyp2f1(a, b, a + 1, gap / (larger + tx)) / (larger + tx) ** a - mp.hyp2f1(
        a, b, a + 1, gap / (larger + T)
    ) / (larger + T) ** a
    head = mp.gamma(r + x) * alpha**r * beta**s / mp.gamma(r)
    return head * (1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / (r + s + x) * a0)


def pnbd_dert(delta, x, tx, T):
    return (
        alpha**r * beta**s * delta ** (s - 1) * mp.gamma(r + x + 1)
        * mp.hyperu(s, s, delta * (beta + T))
        / (mp.gamma(r) * (alpha + T) ** (r + x + 1) * pnbd_likelihood(x, tx, T))
    )


# Donations, the published BG/BB fit (Fader, Hardie & Shang 2010).
ba, bb, bg, bd = f("1.204"), f("0.750"), f("0.657"), f("2.783")


def bgbb_likelihood(x, tx, n):
    B = mp.beta
    total = B(ba + x, bb + n - x) / B(ba, bb) * B(bg, bd + n) / B(bg, bd)
    for i in range(n - tx):
        total += B(ba + x, bb + tx - x + i) / B(ba, bb) * B(bg + 1, bd + tx + i) / B(bg, bd)
    return total


def bgbb_dert(d, x, tx, n):
    B = mp.beta
    front = B(ba + x + 1, bb + n - x) / B(ba, bb) / bgbb_likelihood(x, tx, n)
    return front * mp.nsum(lambda t: B(bg, bd + n + t) / B(bg, bd) / (1 + d) ** t, [1, mp.inf])


print("model,x,t_x,t,discount,value")
weekly_15pct = mp.log(f("1.15")) / 52
for x, tx, T in [(0, 0, 38.86), (1, 2.0, 38.86), (2, 30.43, 38.86), (5, 38.0, 39.0), (12, 25.0, 38.0), (26, 38.86, 38.86)]:
    for delta in [weekly_15pct, f("0.01"), f("0.2")]:
        v = pnbd_dert(delta, f(x), f(tx), f(T))
        print(f"pnbd,{x},{tx},{T},{mp.nstr(delta, 20)},{mp.nstr(v, 20)}")
for x, tx, n in [(0, 0, 6), (2, 3, 6), (3, 6, 6), (6, 6, 6), (1, 1, 6), (4, 5, 6)]:
    for d in [f("0.1"), f("0.02")]:
        v = bgbb_dert(d, x, tx, n)
        print(f"bgbb,{x},{tx},{n},{mp.nstr(d, 20)},{mp.nstr(v, 20)}")
