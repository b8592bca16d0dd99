// Open each page of the built book in headless Debian chromium and report, per page:
// console errors, failed requests, requests that leave 127.0.0.1, and images that did not load.
// Usage: node check_pages.mjs BASE_URL page1.html page2.html ...   (prints one JSON object)
import { chromium } from "playwright-core";

const [base, ...pages] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
const results = {};
try {
  for (const page of pages) {
    const ctx = await browser.newContext();
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
    results[page] = r;
    await ctx.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
