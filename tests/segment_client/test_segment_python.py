"""An unmodified Segment client library (segment-analytics-python, from PyPI) sends to Tenure.

Starts `tenure serve` on a fresh database, points the official client at it, sends identify,
track, page, screen, group and alias calls, and checks the folded profile over the admin API.

Usage: python test_segment_python.py PATH_TO_TENURE_BINARY DATABASE_URL
Prints 'N passed, N failed' and exits non-zero on failure.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import segment.analytics as analytics


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(binary, env, *args):
    out = subprocess.run([binary, *args, "--json"], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def get(url, key):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def main():
    binary, database = os.path.abspath(sys.argv[1]), sys.argv[2]
    workdir = tempfile.mkdtemp(prefix="tenure_segment_")
    env = dict(os.environ, TENURE_DATABASE_URL=database, TENURE_LOG="warn")
    run_json(binary, env, "workspace", "create", "segment-python")
    write_key = run_json(binary, env, "keys", "create", "--kind", "write")["secret"]
    admin_key = run_json(binary, env, "keys", "create", "--kind", "admin")["secret"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{port}"], env=env, cwd=workdir)
    passed, failed = 0, 0

    def check(name, condition, detail=""):
        nonlocal passed, failed
        if condition:
            passed += 1
            print(f"ok   {name}")
        else:
            failed += 1
            print(f"FAIL {name} {detail}")

    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        errors = []
        client = analytics.Client(write_key, host=base, on_error=lambda e, batch: errors.append(repr(e)), max_retries=1)
        client.identify("py-user", {"email": "py@example.com", "plan": "pro"}, anonymous_id="py-anon")
        client.page(anonymous_id="py-anon", name="Pricing", properties={"path": "/pricing"})
        client.track("py-user", "Order Completed", {"order_id": "py-o1", "revenue": 12.5, "currency": "USD"})
        client.track("py-user", "Subscription Started",
                     {"subscription_id": "py-s1", "plan": "pro", "interval": "month", "amount": 49, "currency": "USD"})
        client.screen("py-user", name="Home")
        client.group("py-user", "py-company", {"name": "Py Co"})
        client.alias("py-legacy", "py-user")
        client.flush()
        client.join()
        check("client reported no errors", not errors, errors)

        profile = get(f"{base}/v1/customers/py-user", admin_key)
        check("all seven calls were folded into one customer", profile.get("events") == 7, profile.get("events"))
        check("order revenue in minor units", profile.get("order_revenue", {}).get("USD") == 1250, profile.get("order_revenue"))
        check("subscription MRR", profile.get("mrr", {}).get("USD") == 4900, profile.get("mrr"))
        check("traits from identify", profile.get("traits", {}).get("email") == "py@example.com")
        check("anonymous page view merged", profile.get("anonymous_ids") == ["py-anon"], profile.get("anonymous_ids"))
        check("group recorded", profile.get("groups") == ["py-company"], profile.get("groups"))
        check("alias recorded", profile.get("aliases") == ["py-legacy"], profile.get("aliases"))
        by_alias = get(f"{base}/v1/customers/py-legacy", admin_key)
        check("alias finds the customer", by_alias.get("id") == profile.get("id"))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
