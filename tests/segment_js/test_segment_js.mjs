// The official Segment JavaScript libraries, unmodified, against a real Tenure server.
//
//   node test_segment_js.mjs TENURE_BINARY DATABASE_URL
//
// - @segment/analytics-node (server library): identify, track, page, screen, group, alias,
//   sent to `host` = Tenure, as it sends them (POST /v1/batch, Basic auth, JSON).
// - @segment/analytics-next (browser library) in Debian's Chromium, on a page served from
//   another origin than Tenure (so every call is a real cross-origin request, preflights
//   included): its `cdnURL` is Tenure, which serves the settings that send every event back
//   to itself; the library's own code chunks come from this test's static server. It sends
//   as it does in production: text/plain bodies with the write key inside, to /v1/t, /v1/i,
//   /v1/p, and batched to /v1/b.
// Then every event is checked in the customers' profiles over the admin API.
// Prints 'N passed, N failed' and exits non-zero on failure.
import { spawn, execFileSync } from "node:child_process";
import { createReadStream, existsSync, mkdtempSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { Analytics } from "@segment/analytics-node";
import { chromium } from "playwright-core";

const [binaryArg, database] = process.argv.slice(2);
if (!binaryArg || !database) {
  console.error("usage: node test_segment_js.mjs TENURE_BINARY DATABASE_URL");
  process.exit(2);
}
const binary = resolve(binaryArg);
const here = dirname(fileURLToPath(import.meta.url));
const umd = join(here, "node_modules", "@segment", "analytics-next", "dist", "umd");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

let passed = 0;
let failed = 0;
function check(ok, what, detail = "") {
  if (ok) {
    passed += 1;
    console.log(`ok    ${what}`);
  } else {
    failed += 1;
    console.log(`FAIL  ${what} ${detail}`);
  }
}

const freePort = () =>
  new Promise((done, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });

const env = { ...process.env, TENURE_DATABASE_URL: database, TENURE_LOG: "warn" };
const cli = (...args) => JSON.parse(execFileSync(binary, [...args, "--json"], { env }).toString());
cli("workspace", "create", "segment-js");
const writeKey = cli("keys", "create", "--kind", "write").secret;
const adminKey = cli("keys", "create", "--kind", "admin").secret;

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const server = spawn(binary, ["serve", "--listen", `127.0.0.1:${port}`], {
  env,
  cwd: mkdtempSync(join(tmpdir(), "tenure-segment-js-")),
  stdio: ["ignore", "inherit", "inherit"],
});
const stopServer = () => {
  if (server.exitCode === null) server.kill("SIGTERM");
};
process.on("exit", stopServer);

const started = Date.now();
for (;;) {
  try {
    const res = await fetch(`${base}/health`);
    if (res.ok) break;
  } catch {
    // not listening yet
  }
  if (server.exitCode !== null || Date.now() - started > 60_000) {
    throw new Error("tenure serve did not become ready");
  }
  await new Promise((r) => setTimeout(r, 100));
}

const profile = async (id) => {
  const res = await fetch(`${base}/v1/customers/${encodeURIComponent(id)}`, {
    headers: { Authorization: `Bearer ${adminKey}` },
  });
  return res.status === 200 ? res.json() : null;
};

// Events are committed before the answer, but the browser library resolves some calls
// before its request returns: wait (bounded) for what a check needs.
async function eventually(read, ready) {
  const until = Date.now() + 10_000;
  let value = await read();
  while (!ready(value) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    value = await read();
  }
  return value;
}

// ---- @segment/analytics-node ----
{
  const errors = [];
  const node = new Analytics({ writeKey, host: base, flushAt: 1, maxRetries: 1 });
  node.on("error", (e) => errors.push(e));
  node.identify({ userId: "node-1", anonymousId: "anon-node", traits: { email: "n1@example.com", plan: "pro" } });
  node.track({
    userId: "node-1",
    event: "Order Completed",
    properties: { order_id: "node-o1", revenue: 12.5, currency: "USD" },
  });
  node.page({ userId: "node-1", name: "Pricing" });
  node.screen({ userId: "node-1", name: "Home" });
  node.group({ userId: "node-1", groupId: "acme" });
  node.alias({ userId: "node-1", previousId: "legacy-node-1" });
  await node.closeAndFlush({ timeout: 15_000 });
  check(errors.length === 0, "analytics-node delivered without an error", JSON.stringify(errors.map(String)));
  const p = await eventually(() => profile("node-1"), (p) => p && p.events >= 6);
  check(p && p.events === 6, "analytics-node: all six calls folded into one customer", JSON.stringify(p?.events));
  check(p?.traits?.email === "n1@example.com", "analytics-node: identify traits");
  check(p?.order_revenue?.USD === 1250, "analytics-node: the order's revenue", JSON.stringify(p?.order_revenue));
  const byAlias = await profile("legacy-node-1");
  check(byAlias?.id === p?.id, "analytics-node: alias resolves to the same customer");
}

// ---- @segment/analytics-next in Chromium ----
const pagePort = await freePort();
const pageOrigin = `http://127.0.0.1:${pagePort}`;
const html = `<!doctype html><html><head><meta charset="utf-8"><title>shop</title>
<script>window.analytics = { _cdn: ${JSON.stringify(pageOrigin)} };</script>
<script src="/umd/index.js"></script></head><body>shop</body></html>`;
const statics = createHttpServer((req, res) => {
  const url = new URL(req.url, pageOrigin);
  if (url.pathname === "/") {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(html);
    return;
  }
  // The library's entry (/umd/index.js) and the chunks it loads from its CDN path.
  const prefix = ["/umd/", "/analytics-next/bundles/"].find((p) => url.pathname.startsWith(p));
  const file = prefix && normalize(join(umd, url.pathname.slice(prefix.length)));
  if (file && file.startsWith(umd) && existsSync(file)) {
    res.writeHead(200, { "content-type": "application/javascript" });
    createReadStream(file).pipe(res);
    return;
  }
  res.writeHead(404);
  res.end();
});
await new Promise((r) => statics.listen(pagePort, "127.0.0.1", r));

const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
try {
  for (const strategy of ["standard", "batching"]) {
    const page = await browser.newPage();
    const posts = [];
    const failedRequests = [];
    page.on("request", (r) => {
      if (r.method() === "POST" && r.url().startsWith(base)) posts.push(new URL(r.url()).pathname);
    });
    page.on("requestfailed", (r) => failedRequests.push(`${r.url()} ${r.failure()?.errorText}`));
    page.on("pageerror", (e) => failedRequests.push(`page error: ${e.message}`));
    await page.goto(pageOrigin + "/");
    const user = `web-${strategy}`;
    const result = await page.evaluate(
      async ({ writeKey, tenure, user, strategy }) => {
        const deliveryStrategy =
          strategy === "batching" ? { strategy: "batching", config: { size: 3, timeout: 200 } } : undefined;
        const [analytics] = await window.AnalyticsNext.AnalyticsBrowser.load(
          { writeKey, cdnURL: tenure },
          { integrations: { "Segment.io": deliveryStrategy ? { deliveryStrategy } : {} } },
        );
        await analytics.identify(user, { email: `${user}@example.com`, plan: "team" });
        await analytics.track("Signed Up", { source: "browser" });
        await analytics.page("Docs", "Pricing");
        return { anonymousId: analytics.user().anonymousId() };
      },
      { writeKey, tenure: base, user, strategy },
    );
    const p = await eventually(() => profile(user), (p) => p && p.events >= 3);
    check(p && p.events === 3, `analytics-next (${strategy}): identify, track and page folded into ${user}`, JSON.stringify(p));
    check(p?.traits?.email === `${user}@example.com`, `analytics-next (${strategy}): traits`);
    check(p?.event_counts?.["Signed Up"] === 1, `analytics-next (${strategy}): the track call`);
    const expected = strategy === "batching" ? ["/v1/b"] : ["/v1/i", "/v1/t", "/v1/p"];
    check(
      expected.every((path) => posts.includes(path)),
      `analytics-next (${strategy}): posted to ${expected.join(", ")}`,
      JSON.stringify(posts),
    );
    check(failedRequests.length === 0, `analytics-next (${strategy}): no failed request or page error`, JSON.stringify(failedRequests));
    check(typeof result.anonymousId === "string", `analytics-next (${strategy}): loaded with Tenure's settings`);
    await page.close();
  }
} finally {
  await browser.close();
  statics.close();
  stopServer();
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
