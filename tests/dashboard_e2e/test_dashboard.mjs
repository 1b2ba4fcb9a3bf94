// End-to-end test of the dashboard in a real browser (Debian's Chromium, driven by
// playwright-core; no browser download), against `tenure demo` data.
//
//   node test_dashboard.mjs TENURE_BINARY SCREENSHOT_DIR [DATABASE_URL]
//
// Starts the demo on a free port, logs in with the admin key it prints, opens every page,
// checks the headline numbers against /v1/metrics (the same query), changes the period,
// clicks from the at-risk list to a customer, previews a segment, checks the CSRF guard
// and logs out. A screenshot of every page is saved in SCREENSHOT_DIR.
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

const [binary, shotsArg, database] = process.argv.slice(2);
if (!binary || !shotsArg) {
  console.error("usage: node test_dashboard.mjs TENURE_BINARY SCREENSHOT_DIR [DATABASE_URL]");
  process.exit(2);
}
const shots = resolve(shotsArg);
mkdirSync(shots, { recursive: true });
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";

let failures = 0;
function check(ok, what) {
  if (ok) {
    console.log(`ok    ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL  ${what}`);
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

// The demo, in a scratch directory (it writes tenure-demo.db where it runs).
const dir = mkdtempSync(join(tmpdir(), "tenure-e2e-"));
const port = await freePort();
const args = ["demo", "--listen", `127.0.0.1:${port}`];
if (database) args.unshift("--database", database);
const demo = spawn(resolve(binary), args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
let out = "";
demo.stdout.on("data", (d) => (out += d));
demo.stderr.on("data", (d) => process.stderr.write(d));
const started = Date.now();
while (!out.includes("Press Ctrl-C")) {
  if (demo.exitCode !== null) throw new Error(`tenure demo exited (${demo.exitCode}):\n${out}`);
  if (Date.now() - started > 240_000) throw new Error(`tenure demo did not start:\n${out}`);
  await new Promise((r) => setTimeout(r, 200));
}
const key = out.match(/admin key\s+(\S+)/)[1];
const base = out.match(/Dashboard\s+(\S+)/)[1].replace(/\/dashboard$/, "");
console.log(`demo on ${base}`);

const api = async (path, init = {}) => {
  const res = await fetch(base + path, {
    ...init,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", ...(init.headers || {}) },
  });
  return res.json();
};

// The value the API gives for a card's data-metric ("table.field") and data-period.
async function apiValue(query, metric, period) {
  const [table, field] = metric.split(".");
  const body = await api(`/v1/metrics/${table}${query}`);
  const row = body.data.find((r) => r.period === period);
  return row ? row[field] : undefined;
}

async function checkCards(page, query, label) {
  const cards = await page.$$eval("[data-metric]", (els) =>
    els.map((e) => ({ metric: e.dataset.metric, period: e.dataset.period, value: e.dataset.value })),
  );
  const headline = cards.filter((c) => c.period);
  check(headline.length === 6, `${label}: six headline cards (${headline.length})`);
  for (const c of headline) {
    const expected = await apiValue(query, c.metric, c.period);
    const shown = c.value === "null" ? null : Number(c.value);
    check(
      expected !== undefined && shown === expected,
      `${label}: ${c.metric} for ${c.period} is ${shown}, /v1/metrics says ${expected}`,
    );
  }
}

async function shoot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function open(page, path, name, heading) {
  const res = await page.goto(base + path);
  check(res.status() === 200, `${path} answers 200 (${res.status()})`);
  check((await page.locator(".error").count()) === 0, `${path} shows no error`);
  const h1 = await page.locator("h1").first().textContent();
  check(h1.includes(heading), `${path} is titled "${heading}" ("${h1}")`);
  await shoot(page, name);
}

const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();

  // Logging in.
  await page.goto(base + "/");
  check(page.url().startsWith(base + "/dashboard/login"), `/ sends a visitor to the login page (${page.url()})`);
  await shoot(page, "login");
  await page.fill("#key", "tnr_a_notakey");
  await page.click("button[type=submit]");
  check((await page.locator(".error").textContent()).includes("not valid"), "a wrong key is refused with a message");
  await page.fill("#key", key);
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/dashboard/login") || u.search.includes("error"));
  check(page.url() === base + "/dashboard", `an admin key logs in and lands on the overview (${page.url()})`);

  // Overview: the headline numbers are the API's.
  await shoot(page, "overview");
  await checkCards(page, "", "overview");
  const health = await api("/v1/health-scores?limit=1");
  for (const grade of ["red", "yellow", "green"]) {
    const shown = Number(await page.locator(`tr[data-grade=${grade}]`).getAttribute("data-count"));
    check(shown === health[grade], `overview: ${grade} customers ${shown}, /v1/health-scores says ${health[grade]}`);
  }
  check((await page.locator("figure.chart svg rect").count()) > 10, "overview: MRR movements are drawn");

  // Changing the period: the select submits, the URL carries it, the numbers follow.
  await page.selectOption("select[name=grain]", "week");
  await page.waitForURL(/grain=week/);
  check(page.url().includes("grain=week"), `the period is in the URL (${page.url()})`);
  await checkCards(page, "?grain=week", "overview by week");
  await shoot(page, "overview-weekly");

  // Every page.
  await open(page, "/dashboard/cohorts", "cohorts", "Cohorts");
  check((await page.locator("table.heatmap").count()) === 3, "cohorts: three heatmaps");
  await open(page, "/dashboard/voice", "voice", "Voice");
  check((await page.locator("[data-category]").count()) >= 3, "voice: verbatims by category");
  // Concentration accrues revenue up to `to`: both read the same instant (the end of
  // yesterday), or they would differ by the milliseconds between the two requests.
  const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
  await open(page, `/dashboard/value?churn_change=-20&to=${yesterday}`, "value", "Value");
  const share = await page.locator("[data-metric='concentration.top_20_share']").getAttribute("data-value");
  const concentration = await api(`/v1/metrics/concentration?to=${yesterday}`);
  check(Number(share) === concentration.data.top_20_share, `value: top-20% share ${share} is the API's`);
  const difference = await page.locator("[data-metric='what_if.revenue_difference']").getAttribute("data-value");
  const whatIf = await api(`/v1/metrics/what_if?churn_change=-20&to=${yesterday}`);
  check(Number(difference) === whatIf.data.revenue_difference, `value: what-if difference ${difference} is the API's`);
  const payback = await page.locator("tr[data-channel=paid_search] td[data-field=cac_payback_months]").textContent();
  const channels = await api(`/v1/metrics/channels?to=${yesterday}`);
  const paid = channels.data.find((c) => c.channel === "paid_search");
  check(
    paid.cac_payback_months !== null && payback === paid.cac_payback_months.toFixed(1),
    `value: paid search pays back its CAC in ${payback} months, the API ${paid.cac_payback_months}`,
  );
  await open(page, "/dashboard/segments", "segments", "Segments");
  const segments = await api("/v1/segments");
  for (const s of segments.segments) {
    const shown = Number(await page.locator(`tr[data-segment=${s.id}]`).getAttribute("data-members"));
    check(shown === s.members, `segments: ${s.name} has ${shown} members, the API says ${s.members}`);
  }
  await page.locator("#segments a").first().click();
  await page.waitForURL(/\/dashboard\/segments\/seg_/);
  await shoot(page, "segment");
  await page.click("button[value=preview]");
  await page.waitForSelector("#preview");
  const definition = JSON.parse(await page.locator("#definition").inputValue());
  const preview = await api("/v1/segments/preview", { method: "POST", body: JSON.stringify({ definition }) });
  const previewed = Number((await page.locator("[data-field='preview.count']").textContent()).replace(/,/g, ""));
  check(previewed === preview.count, `segment preview counts ${previewed}, the API ${preview.count}`);
  await shoot(page, "segment-preview");

  // At risk, then a click through to the riskiest customer.
  await open(page, "/dashboard/at-risk", "at-risk", "At risk");
  const ranking = await api("/v1/risk/customers?sort=expected_loss&limit=50");
  const first = page.locator("#at-risk tbody tr").first();
  const id = await first.getAttribute("data-customer");
  check(id === ranking.data[0].customer_id, `at risk: the first row is the API's first (${id})`);
  await first.locator("a").first().click();
  await page.waitForURL(/\/dashboard\/customers\//);
  check(page.url().endsWith(`/dashboard/customers/${id}`), `the row opens the customer's page (${page.url()})`);
  const profile = await api(`/v1/customers/${id}`);
  const shownRisk = await page.locator("[data-field='risk.probability']").textContent();
  const apiRisk = `${(profile.predictions.risk.probability * 100).toFixed(1)}%`;
  check(shownRisk === apiRisk, `customer: churn risk ${shownRisk}, the API ${apiRisk}`);
  check((await page.locator("#timeline tbody tr").count()) > 0, "customer: the timeline lists events");
  await shoot(page, "customer");

  // A form posted without the session's token changes nothing.
  const forged = await page.request.post(base + "/dashboard/logout", { form: { csrf: "forged" }, maxRedirects: 0 });
  check(forged.status() === 403, `a form without the session's CSRF token is refused (${forged.status()})`);

  // A phone.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  await small.goto(base + "/dashboard");
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `overview fits a phone's width (overflow ${overflow}px)`);
  await shoot(small, "overview-phone");
  await phone.close();

  // Logging out ends the session.
  await page.goto(base + "/dashboard");
  await page.click("header form button");
  await page.waitForURL(/\/dashboard\/login/);
  await page.goto(base + "/dashboard/at-risk");
  check(page.url().includes("/dashboard/login"), "after logging out, pages ask for a login again");
} finally {
  await browser.close();
  demo.kill("SIGTERM");
  await new Promise((r) => demo.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
console.log(failures === 0 ? "dashboard e2e: all checks passed" : `dashboard e2e: ${failures} checks FAILED`);
console.log(`screenshots in ${shots}`);
process.exit(failures === 0 ? 0 : 1);
