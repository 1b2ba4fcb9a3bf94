"""Reference values of the special functions tenure-clv uses, computed with mpmath at 50 digits.

Run once: python scripts/special_values.py > crates/tenure-clv/tests/data/special_functions.csv
The table is committed; the Rust tests compare against it.
"""
import mpmath

mpmath.mp.dps = 50
rows = []
for x in ["1e-8", "0.001", "0.2426", "0.5", "1", "1.5", "2", "3.7", "10", "24.5", "100.25", "1000", "123456.789"]:
    rows.append(("ln_gamma", x, "", "", "", mpmath.loggamma(mpmath.mpf(x))))
for x in ["0.001", "0.2426", "0.5", "1", "2.5", "7.25", "30", "1000"]:
    rows.append(("digamma", x, "", "", "", mpmath.digamma(mpmath.mpf(x))))
for a, b, c, z in [
    ("0.2426", "2.4262", "2.2192", "0.5"),
    ("0.2426", "2.4262", "2.2192", "0.9"),
    ("0.2426", "2.4262", "2.2192", "0.99"),
    ("0.553", "1.159", "2.712", "0.3"),
    ("1.5", "2.5", "4.5", "0.95"),
    ("2.0", "3.0", "7.5", "0.999"),
    ("10.5", "0.606", "12.3", "0.7"),
    ("0.525", "1.614", "1.505", "0.8"),
]:
    rows.append(("hyp2f1", a, b, c, z, mpmath.hyp2f1(mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(c), mpmath.mpf(z))))
# Tricomi's U(s, s; z), the Psi(s, s; .) of the Pareto/NBD DERT: non-integer, integer and
# near-integer s, small and large z.
for s, z in [
    ("0.6061", "0.0029"), ("0.6061", "0.146"), ("0.3", "1e-5"), ("1", "0.05"), ("1.0000001", "0.05"),
    ("1.5", "2.5"), ("2", "0.7"), ("4.2", "10"), ("0.05", "300"), ("7.5", "0.001"),
]:
    rows.append(("hyperu_ss", s, "", "", z, mpmath.hyperu(mpmath.mpf(s), mpmath.mpf(s), mpmath.mpf(z))))
print("function,a,b,c,z,value")
for f, a, b, c, z, v in rows:
    print(f"{f},{a},{b},{c},{z},{mpmath.nstr(v, 25)}")
