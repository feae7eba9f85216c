// otelstream's run viewer: the live list of runs, and one run's stream (Server-Sent Events read
// with fetch, so the bearer token travels in a header, not in the URL). No build step, no CDN.
"use strict";

const state = { token: sessionStorage.getItem("otelstream-token") || "", selected: null, reader: null, progress: {} };

function headers() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

async function getJSON(path) {
  const response = await fetch(path, { headers: headers() });
  if (response.status === 401) {
    document.getElementById("token-button").hidden = false;
    throw new Error("this gateway needs a bearer token");
  }
  return response.json();
}

document.getElementById("token-button").addEventListener("click", () => {
  state.token = prompt("Bearer token (OTELSTREAM_SERVE_TOKEN)") || "";
  sessionStorage.setItem("otelstream-token", state.token);
  refreshRuns();
});

// otelstream's payload encoding: plain JSON, with {"$t": ...} tags for what JSON cannot tell apart
function untag(value) {
  if (Array.isArray(value)) return value.map(untag);
  if (value === null || typeof value !== "object") return value;
  const tag = value["$t"];
  if (tag === undefined) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, untag(v)]));
  if (tag === "tuple" || tag === "set") return untag(value.v);
  if (tag === "dict") return Object.fromEntries(value.v.map(([k, v]) => [JSON.stringify(untag(k)), untag(v)]));
  if (tag === "model" || tag === "dataclass") return Object.assign({ type: value.type.split(":").pop() }, untag(value.v));
  if (tag === "otelstream.truncated") return "[truncated: " + value.size + " characters]";
  return value.v;
}

function text(element, content) { element.textContent = content; return element; }
function make(tag, className) { const e = document.createElement(tag); if (className) e.className = className; return e; }

async function refreshRuns() {
  let listed;
  try { listed = await getJSON("/runs?limit=200"); } catch (error) { return; }
  text(document.getElementById("gateway"), "gateway " + listed.gateway);
  const body = document.querySelector("#runs tbody");
  body.replaceChildren(...listed.runs.map((run) => {
    const row = make("tr", run.run_id === state.selected ? "selected" : "");
    row.dataset.runId = run.run_id;
    row.append(text(make("td"), run.graph || "?"));
    const status = make("td"); status.append(text(make("span", "badge " + (run.outcome || run.status)), run.outcome || run.status));
    row.append(status, text(make("td"), run.chunks + (run.gaps.length ? " (gaps)" : "")),
      text(make("td"), new Date(run.started_ns / 1e6).toLocaleTimeString()));
    row.addEventListener("click", () => openRun(run.run_id));
    return row;
  }));
  const evicted = listed.store.evicted.total;
  text(document.getElementById("evictions"), evicted ? evicted + " runs evicted (memory or age limits)" : "");
  if (!state.selected && listed.runs.length) openRun(listed.runs[0].run_id);
}

function showProgress(namespace, chunk) {
  const key = namespace + "|" + (chunk.unit || "") ;
  let bar = state.progress[key];
  if (!bar) {
    bar = make("div", "bar");
    bar.append(make("div", "label"), make("div", "track"));
    bar.querySelector(".track").append(make("div", "fill"));
    document.getElementById("progress").append(bar);
    state.progress[key] = bar;
  }
  const ratio = chunk.total ? Math.min(1, chunk.progress / chunk.total) : 0;
  bar.querySelector(".fill").style.width = (ratio * 100).toFixed(1) + "%";
  bar.dataset.ratio = ratio.toFixed(3);
  text(bar.querySelector(".label"), (chunk.message || "") + "  " + chunk.progress + (chunk.total ? "/" + chunk.total : "") + " " + (chunk.unit || ""));
}

function addEvent(label, data, className) {
  const list = document.getElementById("events");
  const item = text(make("li", className), label + "  " + JSON.stringify(data));
  list.append(item);
  list.scrollTop = list.scrollHeight;
}

function handle(event, data, id) {
  const [mode, ...namespace] = event.split("|");
  const where = namespace.length ? namespace[namespace.length - 1].split(":")[0] : "";
  if (event === "end") {
    const badge = document.getElementById("outcome");
    badge.className = "badge " + (data.outcome || data.status);
    text(badge, data.outcome || data.status);
    if (data.gaps.length) addEvent("gaps", data.gaps, "gap");
    return;
  }
  if (event === "gap") { addEvent("gap: chunks never received", data, "gap"); return; }
  if (event === "error") { addEvent("error", data, "gap"); return; }
  const chunk = untag(data);
  if (mode === "custom" && chunk && typeof chunk.progress === "number") showProgress(namespace.join("|"), chunk);
  if (mode === "messages" && Array.isArray(chunk)) {
    const content = chunk[0] && chunk[0].content;
    if (typeof content === "string") document.getElementById("tokens").append(content);
    return;
  }
  if (mode === "updates" || mode === "custom") addEvent("#" + id + " " + mode + (where ? " [" + where + "]" : ""), chunk);
}

async function follow(runId) {
  const response = await fetch("/runs/" + encodeURIComponent(runId) + "/stream?subgraphs=true", { headers: headers() });
  if (!response.ok || !response.body) { addEvent("error", await response.text(), "gap"); return; }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  state.reader = reader;
  let buffer = "", fields = {};
  for (;;) {
    const { value, done } = await reader.read();
    if (done || state.reader !== reader) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r\n|\n/)) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer[end] === "\r" ? 2 : 1));
      if (line === "") {
        if (fields.event) handle(fields.event, JSON.parse(fields.data), fields.id);
        fields = {};
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, "");
      }
    }
  }
}

async function refreshRun() {
  if (!state.selected) return;
  let run;
  try { run = await getJSON("/runs/" + encodeURIComponent(state.selected)); } catch (error) { return; }
  text(document.getElementById("run-meta"), run.graph + " · " + run.chunks + " chunks" +
    (run.thread_id ? " · thread " + run.thread_id : "") + " · gateway " + run.gateway);
  if (!run.nodes.length) return;
  const start = Math.min(...run.nodes.map((n) => n.start_ns));
  const end = Math.max(...run.nodes.map((n) => n.end_ns || n.start_ns));
  const scale = Math.max(end - start, 1);
  document.getElementById("timeline").replaceChildren(...run.nodes.map((node) => {
    const row = make("div", "node");
    const span = make("div", "span");
    span.style.marginLeft = ((node.start_ns - start) / scale * 60).toFixed(1) + "%";
    span.style.width = (((node.end_ns || node.start_ns) - node.start_ns) / scale * 60).toFixed(1) + "%";
    row.append(text(make("span"), node.node), span, text(make("span"), node.outcome || "running"));
    return row;
  }));
}

function openRun(runId) {
  if (state.selected === runId) return;
  state.selected = runId;
  state.progress = {};
  document.getElementById("run-panel").hidden = false;
  text(document.getElementById("run-id"), runId);
  text(document.getElementById("outcome"), "running").className = "badge running";
  for (const id of ["progress", "timeline", "tokens", "events"]) document.getElementById(id).replaceChildren();
  if (state.reader) state.reader.cancel();
  follow(runId);
  refreshRun();
  refreshRuns();
}

refreshRuns();
setInterval(refreshRuns, 1000);
setInterval(refreshRun, 1000);
