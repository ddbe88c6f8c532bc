// The results page's behaviour: the embedded dataset (the CSVs' rows) -> table, Pareto chart, model view.
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("data").textContent);
  const asObjects = (cols, data) => data.map(r => Object.fromEntries(cols.map((c, i) => [c, r[i]])));
  const ROWS = asObjects(D.columns, D.rows);
  const UNITS = asObjects(D.unit_columns, D.units);
  const SHOWN = [["model", "model"], ["mode", "mode"], ["median_ms", "median (ms)"], ["p90_ms", "p90 (ms)"],
    ["kernel_ms", "kernel (ms)"], ["gpu_busy", "GPU busy"], ["params_m", "params (M)"], ["gmacs", "GMACs"],
    ["feature_mib", "features (MiB)"], ["static_mib", "static (MiB)"], ["peak_mib", "peak (MiB)"],
    ["top1", "top-1 (%)"], ["throughput_img_s", "throughput (img/s)"], ["throughput_batch", "at batch"],
    ["pareto", "Pareto"]];
  const RANGES = [["median_ms", "latency (ms)"], ["top1", "top-1 (%)"], ["params_m", "params (M)"],
    ["peak_mib", "peak (MiB)"]];
  const DIGITS = {median_ms: 3, p90_ms: 3, kernel_ms: 3, params_m: 1, gmacs: 2, feature_mib: 0, static_mib: 0,
    peak_mib: 0, top1: 1, throughput_img_s: 0, throughput_batch: 0};
  const ALL = "all modes", FASTEST = "fastest per model";
  const $ = id => document.getElementById(id);
  const state = {sort: "median_ms", dir: 1, shown: []};

  function fmt(col, v) {
    if (v === null || v === undefined) return "";
    if (col === "gpu_busy") return (100 * v).toFixed(1) + "%";
    if (col === "pareto") return v ? "\u2605" : "";
    if (col in DIGITS) return v.toLocaleString("en-US", {minimumFractionDigits: DIGITS[col],
      maximumFractionDigits: DIGITS[col]});
    return String(v);
  }

  function options(select, values, keep) {
    select.innerHTML = "";
    values.forEach(v => select.add(new Option(v, v)));
    if (values.includes(keep)) select.value = keep;
  }

  // The device/input pair with the most rows opens first.
  function initialPair() {
    const n = {};
    ROWS.forEach(r => { const k = r.device + "\t" + r.input; n[k] = (n[k] || 0) + 1; });
    const best = Object.keys(n).sort((a, b) => n[b] - n[a])[0];
    return best ? best.split("\t") : ["", ""];
  }

  function pairRows() {
    return ROWS.filter(r => r.device === $("device").value && r.input === $("input").value);
  }

  function refreshChoices() {
    const dev = $("device").value;
    options($("input"), [...new Set(ROWS.filter(r => r.device === dev).map(r => r.input))], $("input").value);
    const modes = [...new Set(pairRows().map(r => r.mode))].sort();
    options($("mode"), [ALL, FASTEST, ...modes], $("mode").value || ALL);
  }

  function modeRows() {
    const rows = pairRows(), mode = $("mode").value;
    if (mode === ALL) return rows;
    if (mode !== FASTEST) return rows.filter(r => r.mode === mode);
    const best = {};
    rows.forEach(r => { if (!best[r.model] || r.median_ms < best[r.model].median_ms) best[r.model] = r; });
    return Object.values(best);
  }

  function passes(r) {
    const name = $("f-name").value.trim().toLowerCase();
    if (name && !r.model.toLowerCase().includes(name)) return false;
    for (const [col] of RANGES) {
      const lo = $("f-" + col + "-min").value, hi = $("f-" + col + "-max").value;
      // A row that lacks the value cannot be shown to meet a bound on it.
      if ((lo !== "" || hi !== "") && (r[col] === null)) return false;
      if (lo !== "" && r[col] < Number(lo)) return false;
      if (hi !== "" && r[col] > Number(hi)) return false;
    }
    return true;
  }

  // Rows no other row beats on both axes (faster and at least as accurate), fastest first.
  function frontier(rows) {
    const pts = rows.filter(r => r.top1 !== null && r.median_ms > 0)
      .sort((a, b) => a.median_ms - b.median_ms || b.top1 - a.top1 || (a.model < b.model ? -1 : 1));
    const out = [];
    let top = -Infinity;
    pts.forEach(r => { if (r.top1 > top) { out.push(r); top = r.top1; } });
    return out;
  }

  function compare(a, b) {
    const x = a[state.sort], y = b[state.sort];
    if (x === y) return a.model < b.model ? -1 : a.model > b.model ? 1 : 0;
    if (x === null || x === undefined) return 1;  // unmeasured last, whichever the direction
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * state.dir;
  }

  function drawTable() {
    const head = $("models").tHead, body = $("models").tBodies[0];
    head.innerHTML = "<tr>" + SHOWN.map(([c, label]) => {
      const cls = (c === state.sort ? (state.dir > 0 ? "sorted-asc" : "sorted-desc") : "")
        + (c === "model" || c === "mode" ? " text" : "");
      return `<th data-col="${c}" class="${cls}">${label}</th>`;
    }).join("") + "</tr>";
    const rows = [...state.shown].sort(compare);
    body.innerHTML = "";
    rows.forEach(r => {
      const tr = body.insertRow();
      tr.dataset.model = r.model;
      tr.dataset.idx = String(ROWS.indexOf(r));
      if (r.pareto) tr.classList.add("pareto");
      SHOWN.forEach(([c]) => {
        const td = tr.insertCell();
        td.textContent = fmt(c, r[c]);
        if (c === "model" || c === "mode") td.className = "text";
      });
    });
    $("count").textContent = `${rows.length} rows (${rows.filter(r => r.pareto).length} Pareto-optimal)`;
  }

  function hover(r) {
    return `${r.model}<br>${fmt("median_ms", r.median_ms)} ms, ${r.mode}<br>top-1 ${fmt("top1", r.top1)}%`;
  }

  function drawChart() {
    const pts = state.shown.filter(r => r.top1 !== null && r.median_ms > 0);
    const trace = (rows, name, extra) => Object.assign({
      x: rows.map(r => r.median_ms), y: rows.map(r => r.top1), text: rows.map(hover),
      customdata: rows.map(r => ROWS.indexOf(r)), name, type: "scatter", hoverinfo: "text",
    }, extra);
    const eager = pts.filter(r => r.mode === "eager fp32"), other = pts.filter(r => r.mode !== "eager fp32");
    const best = frontier(state.shown);
    const data = [
      trace(eager, "eager fp32", {mode: "markers", marker: {color: "#1f77b4", opacity: 0.5, size: 8}}),
      trace(other, "other modes", {mode: "markers", marker: {color: "#ff7f0e", opacity: 0.5, size: 8,
        symbol: "triangle-up"}}),
      trace(best, "Pareto frontier", {mode: "lines+markers", line: {shape: "hv", color: "#d62728"},
        marker: {size: 10, color: "#d62728"}}),
    ];
    const layout = {
      margin: {t: 30, r: 10, b: 50, l: 60}, hovermode: "closest",
      title: {text: `Accuracy against latency: ${$("device").value}, ${$("input").value}`, font: {size: 14}},
      xaxis: {type: "log", title: {text: "latency, median (ms, log scale), batch 1"}},
      yaxis: {title: {text: "ImageNet top-1 (%)"}}, legend: {x: 1, xanchor: "right", y: 0},
    };
    Plotly.react("pareto", data, layout, {displaylogo: false, responsive: true});
  }

  function update() {
    const rows = modeRows().filter(passes);
    const best = new Set(frontier(rows));
    rows.forEach(r => { r.pareto = best.has(r); });
    state.shown = rows;
    drawTable();
    drawChart();
  }

  function link(path, label) {
    return path ? `<a href="${D.base}/${encodeURI(path)}">${label}</a>` : "";
  }

  function unitRuns(r) {
    const runs = {};
    UNITS.filter(u => u.device === r.device && u.model === r.model && u.input === r.input).forEach(u => {
      const k = `${u.mode}, depth ${u.depth}, output stride ${u.output_stride}`;
      (runs[k] = runs[k] || []).push(u);
    });
    return runs;
  }

  function drawUnits(runs, key) {
    const units = runs[key] || [];
    if (!units.length) {
      Plotly.purge("units-chart");
      $("units-chart").textContent = "No per-unit record of this model on this device and input.";
      $("units-note").innerHTML = "";
      return;
    }
    $("units-chart").textContent = "";
    const colour = {compute: "#d62728", memory: "#1f77b4"};
    const x = units.map((u, i) => `${i + 1}. ${u.unit}`);
    const text = units.map(u => `${u.unit} (${u.module || ""}, ${u.type || ""})<br>${fmt("median_ms", u.median_ms)} ms,`
      + ` ${(100 * u.share).toFixed(1)}% of the sum of units` + (u.gflop_s !== null
        ? `<br>${u.gflop_s.toFixed(0)} GFLOP/s, ${u.bound}-bound, ${(100 * u.fraction_of_roof).toFixed(1)}% of roof` : ""));
    const data = [{type: "bar", x, y: units.map(u => u.median_ms), text, hoverinfo: "text", textposition: "none",
      name: "time per unit (ms)", marker: {color: units.map(u => colour[u.bound] || "#7f7f7f")}}];
    if (units.some(u => u.gflop_s !== null)) {
      data.push({type: "scatter", mode: "markers", x, y: units.map(u => u.gflop_s), yaxis: "y2",
        name: "GFLOP/s", marker: {color: "#2ca02c", symbol: "diamond", size: 9}, hoverinfo: "text", text});
    }
    Plotly.react("units-chart", data, {
      margin: {t: 30, r: 60, b: 110, l: 60}, hovermode: "closest", legend: {orientation: "h", y: 1.12},
      title: {text: `Time per unit: ${key} (bars: red compute-bound, blue memory-bound, grey unmeasured)`, font: {size: 13}},
      yaxis: {title: {text: "median (ms)"}},
      yaxis2: {title: {text: "GFLOP/s"}, overlaying: "y", side: "right", rangemode: "tozero"},
    }, {displaylogo: false, responsive: true});
    const u = units[0];
    $("units-note").innerHTML = `Whole model ${fmt("median_ms", u.whole_median_ms)} ms (median); the units' sum `
      + `covers ${(100 * u.coverage).toFixed(1)}% of it; share: a unit's mean over the sum of the units' means. `
      + link(u.txt, "per-unit .txt") + " " + link(u.record, "record");
  }

  function openModel(idx) {
    const r = ROWS[idx];
    document.querySelectorAll("#models tr.selected").forEach(tr => tr.classList.remove("selected"));
    const tr = document.querySelector(`#models tr[data-idx="${idx}"]`);
    if (tr) tr.classList.add("selected");
    $("model-view").hidden = false;
    $("model-title").textContent = `${r.model} on ${r.device_name}, ${r.input} (${r.height}x${r.width})`;
    const facts = [
      `latency ${fmt("median_ms", r.median_ms)} ms median, p90 ${fmt("p90_ms", r.p90_ms)} ms (${r.mode}`
        + (r.fastest_search ? ", picked by a fastest search" : "") + ")",
      r.params_m !== null ? `${fmt("params_m", r.params_m)} M params, ${fmt("gmacs", r.gmacs)} GMACs` : "",
      r.static_mib !== null ? `memory (${r.memory_mode}): static ${fmt("static_mib", r.static_mib)} MiB, peak `
        + `${r.peak_mib === null ? "not measured" : fmt("peak_mib", r.peak_mib) + " MiB"}, features `
        + `${fmt("feature_mib", r.feature_mib)} MiB` : "memory not measured",
      r.top1 !== null ? `ImageNet top-1 ${fmt("top1", r.top1)}% (published weights)` : "",
      `protocol: ${r.protocol}` + (r.reduced_protocol ? " (reduced protocol)" : "") + (r.flags ? `; ${r.flags}` : ""),
      `measured ${r.date}, commit ${(r.commit || "unknown").slice(0, 10)}`,
    ];
    $("model-facts").innerHTML = facts.filter(Boolean).join("<br>");
    $("model-links").innerHTML = [link(r.txt, "timing .txt"), link(r.record, "timing record"),
      link(r.memory_txt, "memory .txt"), link(r.memory_record, "memory record")].filter(Boolean).join(" | ");
    const runs = unitRuns(r), keys = Object.keys(runs).sort();
    const same = keys.find(k => k.startsWith(r.mode + ", depth 1, output stride 32"));
    const eager = keys.find(k => k.startsWith("eager fp32, depth 1, output stride 32"));
    options($("unit-run"), keys, same || eager || keys[0]);
    $("unit-run").onchange = () => drawUnits(runs, $("unit-run").value);
    drawUnits(runs, $("unit-run").value);
    history.replaceState(null, "", "#" + new URLSearchParams({device: r.device, input: r.input, mode: $("mode").value,
      model: r.model, row: r.mode}).toString());
    $("model-view").scrollIntoView();
  }

  // index.html#device=...&input=...[&mode=...][&model=...&row=<mode>]: a link to one view.
  function fromHash() {
    const q = new URLSearchParams(location.hash.slice(1));
    if (q.has("device")) { $("device").value = q.get("device"); refreshChoices(); }
    if (q.has("input")) { $("input").value = q.get("input"); refreshChoices(); }
    if (q.has("mode")) $("mode").value = q.get("mode");
    update();
    const r = ROWS.find(x => x.device === $("device").value && x.input === $("input").value
      && x.model === q.get("model") && (!q.has("row") || x.mode === q.get("row")));
    if (r) openModel(ROWS.indexOf(r));
  }

  function init() {
    const [dev, inp] = initialPair();
    options($("device"), [...new Set(ROWS.map(r => r.device))], dev);
    options($("input"), [inp], inp);
    refreshChoices();
    $("ranges").innerHTML = RANGES.map(([c, label]) => `<label>${label} <input id="f-${c}-min" type="number" `
      + `step="any" placeholder="min"> to <input id="f-${c}-max" type="number" step="any" placeholder="max"></label>`)
      .join("");
    $("device").onchange = () => { refreshChoices(); update(); };
    $("input").onchange = () => { refreshChoices(); update(); };
    $("mode").onchange = update;
    document.querySelectorAll("#controls input").forEach(el => { el.oninput = update; });
    $("models").tHead.onclick = e => {
      const th = e.target.closest("th");
      if (!th) return;
      state.dir = th.dataset.col === state.sort ? -state.dir : 1;
      state.sort = th.dataset.col;
      drawTable();
    };
    $("models").tBodies[0].onclick = e => {
      const tr = e.target.closest("tr");
      if (tr) openModel(Number(tr.dataset.idx));
    };
    fromHash();
    $("pareto").on("plotly_click", ev => { if (ev.points.length) openModel(ev.points[0].customdata); });
  }

  init();
})();
