// The page of `mvadapter serve`: plain JavaScript over the JSON API, routed by the URL's hash
// (#/search?q=..., #/video/<id>, #/compare?a=...&b=...), so every view has a link and Back works.
"use strict";

const main = document.getElementById("main");

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function status(text, kind) {
  return el("p", { class: "status" + (kind ? " " + kind : ""), role: kind === "error" ? "alert" : "status" }, text);
}

// The API's answer as JSON; its {"error": ...} becomes the thrown message.
async function api(path) {
  const res = await fetch(path);
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON: reported below */ }
  if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
  if (body === null) throw new Error("the server's answer is not JSON");
  return body;
}

const enc = encodeURIComponent;
const videoHref = (id) => `#/video/${enc(id)}`;
const sheetSrc = (id) => `/api/video/${enc(id)}/sheet.png`;

function parseHash() {
  const h = location.hash.replace(/^#/, "") || "/";
  const [path, query] = h.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

// ---- search ---------------------------------------------------------------------------------
function searchView(params) {
  const q = params.get("q") || "";
  const k = params.get("k") || "10";
  const input = el("input", { type: "search", id: "q", name: "q", value: q, "aria-label": "caption",
                              placeholder: "describe a video, e.g. a cross changes from red to blue",
                              maxlength: "500", autocomplete: "off" });
  const kSel = el("select", { id: "k", "aria-label": "results" },
                  ["5", "10", "20", "50"].map((n) => el("option", { value: n, selected: n === k }, `top ${n}`)));
  const form = el("form", { class: "search", role: "search", onsubmit: (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (text) location.hash = `#/search?q=${enc(text)}&k=${kSel.value}`;
  } }, input, kSel, el("button", { type: "submit" }, "Search"));
  const out = el("section", { id: "results", "aria-live": "polite" });
  main.replaceChildren(form, out);
  input.focus();
  if (!q) {
    out.append(status("Type a caption to find the videos it describes."));
    return;
  }
  out.append(status("Searching…", "loading"));
  api(`/api/search?q=${enc(q)}&k=${enc(k)}`).then((r) => {
    if (r.hits.length === 0) { out.replaceChildren(status("No videos in the index.")); return; }
    const gt = r.ground_truth.length
      ? `ground truth: ${r.ground_truth.join(", ")} (the query is a dataset caption)`
      : "the query is not a dataset caption, so no ground truth is marked";
    out.replaceChildren(
      status(`${r.hits.length} best of the index for “${r.query}”; ${gt}.`),
      el("div", { class: "grid" }, r.hits.map(hitCard)));
  }).catch((e) => out.replaceChildren(status(e.message, "error")));
}

function hitCard(h) {
  return el("a", { class: "hit" + (h.ground_truth ? " gt" : ""), href: videoHref(h.id),
                   "data-id": h.id, "aria-label": `rank ${h.rank}: ${h.id}` },
    el("img", { class: "sheet", src: sheetSrc(h.id), alt: `frames of ${h.id}`, loading: "lazy" }),
    el("div", { class: "meta" },
      el("span", {}, `#${h.rank}`),
      h.ground_truth ? el("span", { class: "badge" }, "ground truth") : null,
      el("span", { class: "score" }, h.score.toFixed(4))),
    el("div", { class: "id" }, h.id),
    h.captions.length ? el("p", { class: "caps" }, h.captions[0]) : null);
}

// ---- one video --------------------------------------------------------------------------------
function videoView(id) {
  main.replaceChildren(status("Loading…", "loading"));
  api(`/api/video/${enc(id)}`).then((v) => {
    const left = el("div", {},
      el("h1", {}, v.id),
      el("img", { class: "sheet", id: "sheet", src: sheetSrc(v.id), alt: `frames the model sees of ${v.id}` }),
      v.file && v.file.available
        ? el("video", { controls: true, preload: "metadata", src: `/api/video/${enc(v.id)}/file` })
        : status("The video file is not available to this server."));
    const caps = v.captions.length
      ? el("ul", {}, v.captions.map((c) => el("li", {}, el("a", { href: `#/search?q=${enc(c)}` }, c))))
      : status("No dataset captions known.");
    let top;
    if (!v.captions_index) {
      top = status("Start serve with --captions to list the closest captions.");
    } else {
      top = el("table", { id: "top-captions" },
        el("thead", {}, el("tr", {}, el("th", {}, "rank"), el("th", {}, "caption"), el("th", {}, "score"))),
        el("tbody", {}, v.top_captions.map((t) =>
          el("tr", { class: t.own ? "own" : "" },
            el("td", { class: "num" }, t.rank),
            el("td", {}, t.text, t.own ? " (its own)" : ""),
            el("td", { class: "num" }, t.score.toFixed(4))))));
    }
    main.replaceChildren(el("div", { class: "video" }, left,
      el("div", {}, el("h2", {}, "Dataset captions"), caps,
        el("h2", {}, "Closest captions in the index"), top)));
  }).catch((e) => main.replaceChildren(status(e.message, "error")));
}

// ---- compare two runs -----------------------------------------------------------------------
function compareView(params) {
  main.replaceChildren(el("h1", {}, "Compare runs"), status("Loading runs…", "loading"));
  api("/api/runs").then((runs) => {
    const ranked = runs.filter((r) => r.ranks);
    if (ranked.length < 2) {
      main.replaceChildren(el("h1", {}, "Compare runs"),
        status(runs.length === 0
          ? "No runs: start serve with --runs RUN... (run folders with results.json and ranks.jsonl)."
          : "Fewer than two runs have ranks.jsonl (written by eval --out and by train)."));
      return;
    }
    const a = params.get("a") || ranked[0].name;
    const b = params.get("b") || ranked[1].name;
    const pick = (id, value) => el("select", { id, "aria-label": id === "run-a" ? "run A" : "run B" },
      ranked.map((r) => el("option", { value: r.name, selected: r.name === value },
        r.t2v ? `${r.name} (R@1 ${r.t2v.R1.toFixed(1)})` : r.name)));
    const selA = pick("run-a", a), selB = pick("run-b", b);
    const go = () => { location.hash = `#/compare?a=${enc(selA.value)}&b=${enc(selB.value)}`; };
    selA.addEventListener("change", go);
    selB.addEventListener("change", go);
    const out = el("section", { id: "comparison", "aria-live": "polite" }, status("Comparing…", "loading"));
    main.replaceChildren(el("h1", {}, "Compare runs"),
      el("div", { class: "controls" }, el("label", {}, "A ", selA), el("label", {}, "B ", selB)), out);
    api(`/api/runs/compare?a=${enc(a)}&b=${enc(b)}`).then((c) => renderComparison(out, c))
      .catch((e) => out.replaceChildren(status(e.message, "error")));
  }).catch((e) => main.replaceChildren(status(e.message, "error")));
}

function renderComparison(out, c) {
  const s = c.summary;
  const filter = el("input", { type: "search", id: "filter", placeholder: "filter captions or videos",
                               "aria-label": "filter" });
  const which = el("select", { id: "which", "aria-label": "which queries" },
    el("option", { value: "disagree", selected: true }, "where the runs disagree"),
    el("option", { value: "a" }, `where ${c.a} is better`),
    el("option", { value: "b" }, `where ${c.b} is better`),
    el("option", { value: "all" }, "all queries"));
  const body = el("tbody");
  const count = status("");
  const render = () => {
    const text = filter.value.trim().toLowerCase();
    const rows = c.queries.filter((q) => {
      if (which.value === "disagree" && q.rank_a === q.rank_b) return false;
      if (which.value === "a" && !(q.rank_a < q.rank_b)) return false;
      if (which.value === "b" && !(q.rank_b < q.rank_a)) return false;
      return !text || q.caption.toLowerCase().includes(text) || q.video.toLowerCase().includes(text);
    });
    count.textContent = rows.length
      ? `${rows.length} ${rows.length === 1 ? "query" : "queries"} shown`
      : "No query matches.";
    body.replaceChildren(...rows.map((q) => el("tr", { class: "query" },
      el("td", {}, el("a", { href: `#/search?q=${enc(q.caption)}` }, q.caption)),
      el("td", {}, el("a", { href: videoHref(q.video) }, q.video)),
      el("td", { class: "num " + (q.rank_a < q.rank_b ? "better" : q.rank_a > q.rank_b ? "worse" : "") }, q.rank_a),
      el("td", { class: "num " + (q.rank_b < q.rank_a ? "better" : q.rank_b > q.rank_a ? "worse" : "") }, q.rank_b))));
  };
  filter.addEventListener("input", render);
  which.addEventListener("change", render);
  out.replaceChildren(
    el("p", { class: "summary", id: "summary" },
      `${s.queries} queries; the runs disagree on ${s.disagree}: ${c.a} ranks the ground truth higher on ${s.a_better}, ` +
      `${c.b} on ${s.b_better}. R@1: ${c.a} ${s.a_r1}, ${c.b} ${s.b_r1}.`),
    el("div", { class: "controls" }, filter, which), count,
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "query (caption)"), el("th", {}, "ground truth"),
      el("th", {}, `rank in ${c.a}`), el("th", {}, `rank in ${c.b}`))), body));
  render();
}

// ---- routing --------------------------------------------------------------------------------
function route() {
  const { path, params } = parseHash();
  if (path.startsWith("/video/")) videoView(decodeURIComponent(path.slice("/video/".length)));
  else if (path === "/compare") compareView(params);
  else searchView(params);
}

window.addEventListener("hashchange", route);
document.addEventListener("keydown", (ev) => {
  // "/" jumps to the search box from anywhere but a text field.
  if (ev.key === "/" && !/^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName)) {
    ev.preventDefault();
    const q = document.getElementById("q");
    if (q) q.focus(); else location.hash = "#/";
  }
});
route();
