/* ragft live tools: run ragft_lib in the reader's browser with Pyodide (no server, no network).
 *
 * The forms are generated at build time by _ext/ragft_live.py from the library's field metadata.
 * This script only moves strings: it sends the form's raw values to ragft_lib.live (Python) and
 * puts the HTML / SVG it returns into the page. Every rule, number and error message is Python's.
 * Pyodide comes from _static/pyodide/ (make vendor), ragft_lib from _static/ragft/<wheel>.
 */
(() => {
  "use strict";
  const tools = Array.from(document.querySelectorAll(".ragft-live[data-ragft-tool]"));
  const script = document.currentScript;
  if (!tools.length || !script) return;
  const staticURL = new URL(".", script.src);
  const state = (window.ragftLive = { readyMs: null, failed: null, version: null, phases: {} });
  const mark = (name) => { state.phases[name] = Math.round(performance.now()); };
  mark("script");

  function status(tool, kind, html) {
    const p = tool.querySelector(".ragft-status");
    p.className = "ragft-status ragft-status-" + kind;
    p.innerHTML = html;
  }

  function everywhere(stateName, kind, html) {
    for (const tool of tools) {
      tool.dataset.ragftState = stateName;
      status(tool, kind, html);
      if (stateName === "unsupported" || stateName === "failed") {
        for (const el of tool.querySelectorAll("input, select, button")) el.disabled = true;
      }
    }
  }

  const KEEP = " The text of this page and the result below, computed when the book was built for the default values, still apply.";
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    everywhere("unsupported", "unsupported",
      "<strong>This live tool needs WebAssembly</strong>, which this browser does not provide (or has turned off), so the form cannot run here." + KEEP);
    return;
  }
  if (location.protocol === "file:") {
    everywhere("unsupported", "unsupported",
      "<strong>Open the book over http to use this live tool</strong>: browsers do not run WebAssembly from files. " +
      "In the repository, run <code>make serve</code> and open http://127.0.0.1:8000/." + KEEP);
    return;
  }

  everywhere("loading", "loading",
    '<span class="ragft-spinner" aria-hidden="true"></span> Starting Python in your browser&hellip; ' +
    "(about 13&nbsp;MB the first time, cached afterwards)");

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = () => reject(new Error("could not load " + src));
      document.head.appendChild(s);
    });
  }

  async function startPython(wheel) {
    await loadScript(new URL("pyodide/pyodide.js", staticURL).href);
    mark("pyodide_js");
    // eslint-disable-next-line no-undef
    const py = await loadPyodide({ indexURL: new URL("pyodide/", staticURL).href, stdout: () => {} });
    mark("python");
    const problems = [];
    await py.loadPackage(new URL("ragft/" + wheel, staticURL).href, {
      messageCallback: () => {},
      errorCallback: (m) => problems.push(m),
    });
    mark("wheel");
    let live;
    try {
      live = py.pyimport("ragft_lib.live");
    } catch (err) {
      throw new Error("ragft_lib did not install: " + (problems.join("; ") || err.message));
    }
    const version = py.runPython(
      "import sys, ragft_lib; f'ragft_lib {ragft_lib.__version__} on Python {sys.version.split()[0]}'");
    return { py, live, version };
  }

  function formValues(form) {
    const out = {};
    for (const el of form.querySelectorAll("input[name], select[name]")) {
      out[el.name] = el.type === "checkbox" ? el.checked : el.value;
    }
    return out;
  }

  function clearErrors(tool) {
    for (const p of tool.querySelectorAll(".ragft-error, .ragft-form-error")) {
      p.hidden = true;
      p.textContent = "";
    }
    for (const box of tool.querySelectorAll(".ragft-invalid")) box.classList.remove("ragft-invalid");
    for (const el of tool.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  }

  function showError(tool, error) {
    const field = error.field;
    const box = field ? tool.querySelector('.ragft-field[data-field="' + CSS.escape(field) + '"]') : null;
    const p = box ? box.querySelector(".ragft-error") : tool.querySelector(".ragft-form-error");
    p.textContent = error.message;
    p.hidden = false;
    if (box) {
      box.classList.add("ragft-invalid");
      const control = box.querySelector("input, select");
      control.setAttribute("aria-invalid", "true");
      const details = box.closest("details");
      if (details) details.open = true;
    }
    tool.dataset.ragftError = field || "";
  }

  function run(tool, python) {
    const form = tool.querySelector("form");
    const output = tool.querySelector(".ragft-output");
    const call = tool.dataset.ragftTool === "decision" ? python.live.decide_json : python.live.cost_json;
    let result;
    try {
      result = JSON.parse(call(JSON.stringify(formValues(form))));
    } catch (err) {
      // not an input error (those come back as data): a bug, reported as such
      console.error("ragft live tool failed:", err);
      clearErrors(tool);
      showError(tool, { field: null, message: "Internal error: " + err.message });
      return;
    }
    clearErrors(tool);
    if (!result.ok) {
      showError(tool, result.error);
      tool.dataset.ragftValid = "false";
      output.classList.add("ragft-stale");
    } else {
      delete tool.dataset.ragftError;
      tool.dataset.ragftValid = "true";
      output.classList.remove("ragft-stale");
      if (tool.dataset.ragftTool === "decision") {
        output.innerHTML = result.html;
        tool.dataset.ragftApproach = result.approach;
      } else {
        output.innerHTML = '<div class="ragft-chart-box">' + result.svg + "</div>" + result.html;
        tool.dataset.ragftCrossover = String(result.crossover_requests_per_day);
      }
    }
    tool.dataset.ragftRuns = String(Number(tool.dataset.ragftRuns || 0) + 1);
  }

  function wire(tool, python) {
    const form = tool.querySelector("form");
    const button = form.querySelector(".ragft-run");
    let timer = null;
    const later = () => {
      clearTimeout(timer);
      timer = setTimeout(() => run(tool, python), 120);
    };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      run(tool, python);
    });
    form.addEventListener("reset", () => setTimeout(() => run(tool, python), 0));
    if (tool.dataset.ragftTool === "cost") {
      form.addEventListener("input", later);
      form.addEventListener("change", later);
      run(tool, python); // any edits made while Python was starting
    }
    if (button) button.disabled = false;
  }

  const t0 = performance.now();
  startPython(tools[0].dataset.ragftWheel).then(
    (python) => {
      state.readyMs = performance.now();
      state.version = python.version;
      const secs = ((state.readyMs - t0) / 1000).toFixed(1);
      for (const tool of tools) {
        wire(tool, python);
        tool.dataset.ragftState = "ready";
        const how = tool.dataset.ragftTool === "decision" ? "Change the form and press <em>Recommend</em>." :
          "Change any input: the chart is recomputed.";
        status(tool, "ready", "<strong>Live</strong>: " + python.version +
          " runs in your browser (started in " + secs + "&nbsp;s). " + how);
      }
    },
    (err) => {
      state.failed = String(err && err.message ? err.message : err);
      console.error("ragft live tools: Python did not start:", err);
      everywhere("failed", "unsupported",
        "<strong>Python could not start in this browser</strong> (" + state.failed.replace(/</g, "&lt;") + ")." + KEEP);
    });
})();
