// Drives the live tools of the built book in headless Debian chromium (npm playwright-core).
// Called by tests/test_browser_live.py:  node tests/browser/live_tools.mjs CONFIG.json
// CONFIG: {base, pages, examples: [{file, values, approach}], bad: {decision: [...], cost: [...]},
//          cost_change: {field, value}, screenshots: dir|null, chromium, timeout_ms}
// Prints one JSON report on stdout; the assertions are in the Python test.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const cfg = JSON.parse(readFileSync(process.argv[2], "utf8"));
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const origin = new URL(cfg.base).origin;
const timeout = cfg.timeout_ms || 90000;

function isLocal(url) {
  return url.startsWith(origin + "/") || url.startsWith("data:") || url.startsWith("blob:") || url === "about:blank";
}

async function settled(page) {
  await page.waitForFunction(() => {
    const tools = document.querySelectorAll(".ragft-live[data-ragft-tool]");
    return tools.length > 0 && [...tools].every((t) => ["ready", "failed", "unsupported"].includes(t.dataset.ragftState));
  }, null, { timeout });
}

async function runs(tool) {
  return Number((await tool.getAttribute("data-ragft-runs")) || 0);
}

async function waitRun(page, tool, before) {
  const id = await tool.getAttribute("id");
  await page.waitForFunction(([id, n]) => Number(document.getElementById(id).dataset.ragftRuns || 0) > n,
    [id, before], { timeout: 20000 });
}

async function setField(tool, name, value) {
  const el = tool.locator(`[name="${name}"]`);
  await el.evaluate((node) => { const d = node.closest("details"); if (d) d.open = true; });
  const tag = await el.evaluate((node) => node.tagName.toLowerCase() + ":" + (node.type || ""));
  if (tag === "input:checkbox") {
    await el.setChecked(Boolean(value));
  } else if (tag.startsWith("select")) {
    await el.selectOption(value === null ? "" : String(value));
  } else {
    await el.fill(value === null ? "" : String(value));
  }
}

async function fieldError(tool, name) {
  const p = tool.locator(`.ragft-field[data-field="${name}"] .ragft-error`);
  return (await p.isVisible()) ? (await p.textContent()) : null;
}

async function shot(page, locator, name) {
  if (!cfg.screenshots) return null;
  const path = `${cfg.screenshots}/${name}.png`;
  await locator.first().evaluate((el) => el.scrollIntoView({ block: "start" }));
  await page.mouse.wheel(0, -120);  // below the theme's sticky header
  await page.waitForTimeout(100);
  await page.screenshot({ path, fullPage: false });
  return path;
}

async function checkDecision(page, tool, slug) {
  const out = { verdicts: [], bad: [], screenshots: [] };
  for (const ex of cfg.examples) {
    for (const [name, value] of Object.entries(ex.values)) await setField(tool, name, value);
    const before = await runs(tool);
    await tool.locator(".ragft-run").click();
    await waitRun(page, tool, before);
    out.verdicts.push({
      file: ex.file, expected: ex.approach,
      shown: (await tool.locator(".ragft-verdict").textContent()).trim(),
      valid: await tool.getAttribute("data-ragft-valid"),
    });
    if (out.screenshots.length === 0) out.screenshots.push(await shot(page, tool.locator(".ragft-verdict"), `${slug}-decision`));
  }
  for (const bad of cfg.bad.decision) {
    const before = await runs(tool);
    const old = await tool.locator(`[name="${bad.field}"]`).inputValue();
    await setField(tool, bad.field, bad.value);
    await tool.locator(".ragft-run").click();
    await waitRun(page, tool, before);
    const shown = await fieldError(tool, bad.field);
    if (out.bad.length === 0) out.screenshots.push(await shot(page, tool.locator(`.ragft-field[data-field="${bad.field}"]`), `${slug}-decision-error`));
    // put the value back: the form must work again and the error go away
    await setField(tool, bad.field, old);
    const again = await runs(tool);
    await tool.locator(".ragft-run").click();
    await waitRun(page, tool, again);
    out.bad.push({ ...bad, shown, recovered: (await tool.getAttribute("data-ragft-valid")) === "true" &&
      (await fieldError(tool, bad.field)) === null });
  }
  return out;
}

async function chart(tool) {
  return tool.locator("svg.ragft-chart").evaluate((svg) => ({
    svg: svg.outerHTML,
    current: svg.querySelector(".ragft-current")?.getAttribute("data-requests-per-day"),
    crossover: svg.querySelector(".ragft-crossover")?.getAttribute("data-requests-per-day") ?? null,
  }));
}

async function checkCost(page, tool, slug) {
  const out = { bad: [], screenshots: [] };
  const first = await chart(tool);
  const before = await runs(tool);
  await setField(tool, cfg.cost_change.field, cfg.cost_change.value);
  await waitRun(page, tool, before);
  const second = await chart(tool);
  out.change = { before: first.current, after: second.current, crossover: second.crossover,
    svg_changed: first.svg !== second.svg,
    summary: (await tool.locator(".ragft-cost-summary").textContent()).trim() };
  out.screenshots.push(await shot(page, tool.locator("svg.ragft-chart"), `${slug}-cost`));
  for (const bad of cfg.bad.cost) {
    const old = await tool.locator(`[name="${bad.field}"]`).inputValue();
    let n = await runs(tool);
    await setField(tool, bad.field, bad.value);
    await waitRun(page, tool, n);
    const shown = await fieldError(tool, bad.field);
    if (out.bad.length === 0) out.screenshots.push(await shot(page, tool.locator(`.ragft-field[data-field="${bad.field}"]`), `${slug}-cost-error`));
    n = await runs(tool);
    await setField(tool, bad.field, old);
    await waitRun(page, tool, n);
    out.bad.push({ ...bad, shown, recovered: (await tool.getAttribute("data-ragft-valid")) === "true" &&
      (await fieldError(tool, bad.field)) === null });
  }
  return out;
}

// No request routing: playwright turns the HTTP cache off when routing, and the warm-cache
// measurement needs it. Every request is recorded; the test fails on any that is not local.
async function openPage(browser, { noWasm = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  if (noWasm) await context.addInitScript(() => { delete globalThis.WebAssembly; });
  const page = await context.newPage();
  const rec = { requests: [], external: [], console_errors: [], bad_responses: [], bytes: 0 };
  page.on("response", (r) => { if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) rec.bad_responses.push(`${r.status()} ${r.url()}`); });
  page.on("requestfailed", (r) => rec.bad_responses.push(`failed ${r.url()}`));
  page.on("request", (r) => {
    rec.requests.push(r.url());
    if (!isLocal(r.url())) rec.external.push(r.url());
  });
  // The book has no favicon, so chromium asks the server root for /favicon.ico on its own (not the
  // page's doing; with request routing on, as in tests/browser/check_pages.mjs, it does not ask).
  page.on("console", (m) => {
    if (m.type() === "error" && !m.location().url.endsWith("/favicon.ico")) rec.console_errors.push(`${m.text()} [${m.location().url}]`);
  });
  page.on("pageerror", (e) => rec.console_errors.push("pageerror: " + e.message));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.loadingFinished", (e) => { rec.bytes += e.encodedDataLength; });
  return { context, page, rec };
}

const browser = await chromium.launch({ executablePath: cfg.chromium, args: ARGS, headless: true });
const report = { pages: [] };
try {
  for (const path of cfg.pages) {
    const slug = path.replace(/[^a-z0-9]+/gi, "_").replace(/_html$/, "");
    const url = cfg.base + path;
    const { context, page, rec } = await openPage(browser);
    const res = { page: path, tools: [] };
    await page.goto(url, { waitUntil: "load" });
    await settled(page);
    res.ready_ms = await page.evaluate(() => window.ragftLive.readyMs);
    res.failed = await page.evaluate(() => window.ragftLive.failed);
    res.version = await page.evaluate(() => window.ragftLive.version);
    res.phases = await page.evaluate(() => window.ragftLive.phases);
    res.load_event_ms = await page.evaluate(() => Math.round(performance.getEntriesByType("navigation")[0].loadEventEnd));
    res.bytes_to_ready = rec.bytes;
    res.states = await page.$$eval(".ragft-live", (ts) => ts.map((t) => t.dataset.ragftState));
    const tools = page.locator(".ragft-live[data-ragft-tool]");
    for (let i = 0; i < await tools.count(); i++) {
      const tool = tools.nth(i);
      const kind = await tool.getAttribute("data-ragft-tool");
      const r = kind === "decision" ? await checkDecision(page, tool, `${slug}-${i}`) : await checkCost(page, tool, `${slug}-${i}`);
      res.tools.push({ kind, ...r });
    }
    res.bytes_total = rec.bytes;
    // a second visit with the browser cache warm
    const warmStart = rec.bytes;
    await page.goto("about:blank");
    await page.goto(url, { waitUntil: "load" });
    await settled(page);
    res.warm_ready_ms = await page.evaluate(() => window.ragftLive.readyMs);
    res.warm_bytes = rec.bytes - warmStart;
    Object.assign(res, { requests: rec.requests, external: rec.external, console_errors: rec.console_errors,
      bad_responses: rec.bad_responses });
    report.pages.push(res);
    await context.close();
  }
} finally {
  await browser.close();
}

// Without WebAssembly: each tool says so and the page keeps its built-time result.
if (cfg.pages.length) {
  const nowasm = await chromium.launch({ executablePath: cfg.chromium, args: ARGS, headless: true });
  try {
    const { context, page, rec } = await openPage(nowasm, { noWasm: true });
    await page.goto(cfg.base + cfg.pages[0], { waitUntil: "load" });
    await settled(page);
    report.no_wasm = await page.$$eval(".ragft-live", (ts) => ts.map((t) => ({
      state: t.dataset.ragftState,
      status: t.querySelector(".ragft-status").textContent,
      static_result: Boolean(t.querySelector(".ragft-output .ragft-recommendation, .ragft-output svg.ragft-chart")),
    })));
    report.no_wasm_requests = rec.requests;
    report.no_wasm_console_errors = rec.console_errors;
    report.no_wasm_bad_responses = rec.bad_responses;
    if (cfg.screenshots) {
      await shot(page, page.locator(".ragft-status"), "no-wasm");
    }
    await context.close();
  } finally {
    await nowasm.close();
  }
}
process.stdout.write(JSON.stringify(report, null, 1));
