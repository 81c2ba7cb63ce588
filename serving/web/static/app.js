// The page talks to the gateway like any client: /web/model, /v1/predict, /v1/explain.
"use strict";

const $ = (id) => document.getElementById(id);
const percent = (p) => `${(100 * p).toFixed(1)}%`;
let model = null;
let current = null;  // the last picked file, re-scored when the operating point changes

function headers() {
  const key = $("api-key").value.trim();
  return key ? { "X-API-Key": key } : {};
}

async function loadModel() {
  const response = await fetch("/web/model", { headers: headers() });
  if (response.status === 401 || response.status === 403) throw new Error("enter a valid API key above");
  if (!response.ok) throw new Error(`the gateway is not ready (${response.status})`);
  $("error").hidden = true;
  model = await response.json();
  const select = $("operating-point");
  select.replaceChildren(...model.operating_points.map((point) => {
    const option = new Option(`${point.name} (threshold ${point.threshold.toFixed(3)})`, point.name);
    option.selected = point.name === model.default_operating_point;
    return option;
  }));
  showPointHelp();
}

function showPointHelp() {
  const point = model && model.operating_points.find((p) => p.name === $("operating-point").value);
  $("point-help").textContent = point ? point.rule : "";
}

async function post(route, file) {
  const form = new FormData();
  form.append("file", file, "upload");  // the file's own name never leaves the browser
  const query = new URLSearchParams({ operating_point: $("operating-point").value });
  const response = await fetch(`${route}?${query}`, { method: "POST", body: form, headers: headers() });
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.error ? body.error.message : `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function score(file) {
  document.body.dataset.state = "busy";
  $("error").hidden = true;
  try {
    // the explanation is optional: a backend without it answers 501 and the verdict still shows
    const [prediction, explanation] = await Promise.all([
      post("/v1/predict", file),
      post("/v1/explain", file).catch((error) => (error.status === 501 ? null : Promise.reject(error))),
    ]);
    show(prediction, explanation);
    document.body.dataset.state = "done";
  } catch (error) {
    $("result").hidden = true;
    $("error").textContent = `Could not score this image: ${error.message}`;
    $("error").hidden = false;
    document.body.dataset.state = "error";
  } finally {
    document.body.dataset.requests = Number(document.body.dataset.requests || 0) + 1;
  }
}

function show(prediction, explanation) {
  const positive = model ? prediction.label === model.labels[1] : prediction.probability >= prediction.threshold;
  $("verdict").textContent = prediction.label;
  $("verdict").className = `verdict ${positive ? "positive" : "negative"}`;
  $("probability").textContent = prediction.probability.toFixed(3);
  $("threshold").textContent = prediction.threshold.toFixed(3);
  $("used-point").textContent = prediction.operating_point;
  $("model-name").textContent = prediction.model_name;
  $("model-version").textContent = prediction.model_version;
  $("meter-fill").style.width = percent(prediction.probability);
  $("meter-threshold").style.left = percent(prediction.threshold);
  const subtype = prediction.subtype;
  $("subtype-box").hidden = !subtype;
  $("subtype").replaceChildren(...Object.entries(subtype || {}).map(([name, p]) => {
    const item = document.createElement("li");
    item.textContent = `${name}: ${percent(p)}`;
    return item;
  }));
  $("heatmap-box").hidden = !explanation;
  $("heatmap-missing").hidden = Boolean(explanation);
  if (explanation) $("heatmap").src = `data:image/png;base64,${explanation.overlay_png}`;
  $("result").hidden = false;
}

function pick(files) {
  if (!files || !files.length) return;
  current = files[0];
  score(current);
}

$("file").addEventListener("change", (event) => pick(event.target.files));
$("operating-point").addEventListener("change", () => {
  showPointHelp();
  if (current) score(current);
});
const drop = $("drop");
for (const name of ["dragenter", "dragover"]) {
  drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  drop.addEventListener(name, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (event) => { event.preventDefault(); pick(event.dataTransfer.files); });

function start() {
  loadModel().catch((error) => {
    $("error").textContent = error.message;
    $("error").hidden = false;
  });
}

$("api-key").addEventListener("change", start);
start();
