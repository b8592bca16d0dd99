// Open each page of the built book in headless Debian chromium (1280 x 900 viewport) and report, per page:
// console errors, failed requests, requests that leave 127.0.0.1, images that did not load, and what a
// reader sees: the launch links (Colab, download), output blocks wider than the text column, figures
// shown at a fraction of their pixels, and build noise in the outputs (raw markdown tables, paths of
// the build machine, progress-bar text, ipywidgets views that no kernel runs, bare values a cell returned).
// Usage: node check_pages.mjs BASE_URL page1.html page2.html ...   (prints one JSON object)
// Each page is also opened at 400 px wide: width_at_400 is the page's scroll width there.
// With SCREENSHOTS=DIR, also writes full-page screenshots at 1280 px and 400 px: DIR/<page>-1280.png, -400.png.
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const [base, ...pages] = process.argv.slice(2);
const shots = process.env.SCREENSHOTS || "";
if (shots) mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

// Runs in the page: everything measured about what the reader sees.
function measure() {
  const text = (el) => (el.innerText || el.textContent || "");
  const column = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const colRight = column.getBoundingClientRect().right;
  const links = [...document.querySelectorAll("a[href]")].map((a) => a.href);
  const blocks = [];
  for (const block of document.querySelectorAll(".cell_output > *")) {
    if (block.tagName === "SCRIPT" || block.tagName === "STYLE" || block.getClientRects().length === 0) continue;
    let over = block.scrollWidth - block.clientWidth;
    for (const d of block.querySelectorAll("*")) {
      const ox = getComputedStyle(d).overflowX;
      if (ox === "auto" || ox === "scroll") over = Math.max(over, d.scrollWidth - d.clientWidth);
    }
    over = Math.max(over, block.getBoundingClientRect().right - colRight);
    blocks.push({ kind: (block.className || block.tagName).toString().slice(0, 60), over: Math.round(over),
                  width: Math.round(block.getBoundingClientRect().width),
                  text: text(block).trim().slice(0, 80) });
  }
  const figures = [];
  for (const img of document.querySelectorAll("article img")) {
    if (!img.complete || img.naturalWidth < 100) continue;  // icons; broken images are reported separately
    const attr = parseFloat(img.getAttribute("width") || img.style.width || "0");  // myst-nb: style="width: 594px"
    const density = attr > 0 && Math.abs(img.naturalWidth / attr - 2) < 0.05 ? 2 : 1;
    const shown = img.getBoundingClientRect().width;
    figures.push({ src: img.getAttribute("src"), natural: img.naturalWidth, density, shown: Math.round(shown),
                   ratio: +(shown * density / img.naturalWidth).toFixed(3) });
  }
  // A cell whose last line returns a value (e.g. glue(...) without ";") shows that value alone: a bare
  // number, an unformatted float or a Python string repr, with nothing around it, is a leak, not a result.
  const bare = [];
  for (const block of document.querySelectorAll(".cell_output > *")) {
    const t = text(block).trim();
    if (/^-?\d+(\.\d{5,})?$/.test(t) || /^'[^\n]*'$|^"[^\n]*"$/.test(t)) bare.push(t.slice(0, 60));
  }
  const outputs = [...document.querySelectorAll(".cell_output")].map(text).join("\n");
  const headings = [...document.querySelectorAll("article h1, article h2, article h3, article h4")].map(text).join("\n");
  const found = (re, s) => [...new Set((s.match(re) || []).map((m) => m.slice(0, 60)))];
  return {
    colab: links.filter((h) => h.includes("colab.research.google.com")),
    downloads: links.filter((h) => /\/_sources\/.*\.(ipynb|md)$/.test(h)),
    blocks,
    figures,
    markdown_tables: found(/\|[ \t]*:?[-—–]{3,}:?[ \t]*\|/g, outputs),
    machine_paths: found(/(\/tmp\/|\/root\/|\/home\/|[~\/]\.cache\b)\S*/g, outputs + "\n" + headings),
    progress_text: found(/(it\/s\]|s\/it\]|\d%\|| \d+\/\d+ \[\d\d:\d\d|█)/g, outputs),
    bare_values: bare,
    widget_views: document.querySelectorAll('.cell_output script[type="application/vnd.jupyter.widget-view+json"], .cell_output .jupyter-widgets').length,
  };
}

const results = {};
try {
  for (const page of pages) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const tab = await ctx.newPage();
    const r = { console_errors: [], external_requests: [], failed_requests: [], broken_images: [], images: 0, title: "" };
    tab.on("console", (m) => { if (m.type() === "error") r.console_errors.push(m.text()); });
    tab.on("pageerror", (e) => r.console_errors.push(String(e)));
    tab.on("request", (q) => {
      const u = new URL(q.url());
      if (!["127.0.0.1", "localhost"].includes(u.hostname) && !["data:", "blob:", "about:"].includes(u.protocol)) r.external_requests.push(q.url());
    });
    tab.on("requestfailed", (q) => r.failed_requests.push(q.url()));
    tab.on("response", (res) => { if (res.status() >= 400) r.failed_requests.push(`${res.status()} ${res.url()}`); });
    await ctx.route((url) => !["127.0.0.1", "localhost"].includes(url.hostname) && url.protocol.startsWith("http"), (route) => route.abort());
    const resp = await tab.goto(base + "/" + page, { waitUntil: "load", timeout: 60000 });
    r.status = resp ? resp.status() : 0;
    await tab.waitForTimeout(500);
    r.title = await tab.title();
    const imgs = await tab.$$eval("article img, main img", (els) => els.map((e) => ({ src: e.getAttribute("src"), ok: e.complete && e.naturalWidth > 0 })));
    r.images = imgs.length;
    r.broken_images = imgs.filter((i) => !i.ok).map((i) => i.src);
    Object.assign(r, await tab.evaluate(measure));
    const slug = page.replace(/\.html$/, "").replace(/[^A-Za-z0-9_-]+/g, "_");
    const shoot = async (width) => {
      if (!shots) return;
      try {  // screenshots are for a person to look at: a slow one is reported, not fatal
        await tab.screenshot({ path: `${shots}/${slug}-${width}.png`, fullPage: true, timeout: 120000 });
      } catch (e) {
        r.screenshot_error = String(e).slice(0, 200);
      }
    };
    await shoot(1280);
    // On a phone-sized screen (400 px) the page itself must not scroll sideways (tables and code
    // scroll inside their own boxes).
    await tab.setViewportSize({ width: 400, height: 900 });
    await tab.waitForTimeout(300);
    r.width_at_400 = await tab.evaluate(() => document.documentElement.scrollWidth);
    await shoot(400);
    results[page] = r;
    await ctx.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
