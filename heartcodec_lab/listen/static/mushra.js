// The listening test's pages: plain JavaScript, no build step. The server decides the order; this file
// only draws a trial, plays its stimuli and sends the ratings.
"use strict";

function storageKey() { return "mushra-listener:" + document.body.dataset.test; }

function showError(message) { document.getElementById("error").textContent = message; }

async function api(method, url, body) {
  const response = await fetch(url, {
    method, headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined, credentials: "same-origin",
  });
  let data = {};
  try { data = await response.json(); } catch (e) { /* no body */ }
  return { status: response.status, data };
}

function mushraStart() {
  const known = localStorage.getItem(storageKey());
  if (known) {
    document.getElementById("resume").hidden = false;
    document.getElementById("resume-link").href = "/listen/" + known;
  }
  document.getElementById("start-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const { status, data } = await api("POST", "/api/listeners", { name: document.getElementById("name").value });
    if (status !== 201) { showError(data.error || "could not start (" + status + ")"); return; }
    localStorage.setItem(storageKey(), data.listener);
    location.href = "/listen/" + data.listener;
  });
}

const players = [];

function idle(p) { p.row.classList.remove("playing"); p.button.classList.remove("active"); p.button.textContent = "play"; }

function stopAll() {
  for (const p of players) { p.audio.pause(); p.audio.currentTime = 0; idle(p); }
}

function play(player) {
  const current = players.find((p) => !p.audio.paused);
  const position = current ? current.audio.currentTime : 0;
  for (const p of players) { p.audio.pause(); idle(p); }
  // switching keeps the playing position, so the same passage can be compared across versions
  if (position < (player.audio.duration || Infinity)) player.audio.currentTime = position;
  player.audio.loop = document.getElementById("loop").checked;
  player.audio.play().catch((e) => showError("cannot play: " + e.message));
  player.row.classList.add("playing");
  player.button.classList.add("active");
  player.button.textContent = "stop";
}

function addPlayer(row, stimulus, label) {
  const audio = document.createElement("audio");
  audio.src = "/audio/" + stimulus;
  audio.preload = "auto";
  audio.dataset.stimulus = stimulus;
  const name = document.createElement("span");
  name.className = "label";
  name.textContent = label;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "play";
  button.textContent = "play";
  const player = { audio, row, button };
  button.addEventListener("click", () => (audio.paused ? play(player) : stopAll()));
  audio.addEventListener("ended", () => idle(player));
  row.append(name, button, audio);
  players.push(player);
}

async function mushraTrial() {
  const body = document.body.dataset;
  const listener = body.listener;
  const position = Number(body.position);
  localStorage.setItem(storageKey(), listener);
  const { status, data } = await api("GET", "/api/trials?listener=" + encodeURIComponent(listener));
  if (status !== 200) { showError(data.error || "cannot load the trials (" + status + ")"); return; }
  const trial = data[position - 1];
  if (trial.done) { location.replace("/listen/" + listener); return; }  // a reload after submitting: go on

  addPlayer(document.getElementById("reference-row"), trial.reference, "Reference");
  const scale = document.createElement("div");
  scale.className = "scale";
  scale.innerHTML = "<span>bad</span><span>poor</span><span>fair</span><span>good</span><span>excellent</span>";
  document.getElementById("reference-row").append(scale);

  const next = document.getElementById("next");
  const sliders = [];
  trial.conditions.forEach((stimulus, i) => {
    const row = document.createElement("div");
    row.className = "row condition";
    addPlayer(row, stimulus, "Version " + String.fromCharCode(65 + (i % 26)) + (i >= 26 ? Math.floor(i / 26) : ""));
    const slider = document.createElement("input");
    slider.type = "range"; slider.min = 0; slider.max = 100; slider.step = 1; slider.value = 50;
    slider.dataset.stimulus = stimulus;
    slider.setAttribute("aria-label", "score of " + row.querySelector(".label").textContent);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = "-";
    slider.addEventListener("input", () => {
      slider.dataset.moved = "1";
      row.classList.add("moved");
      value.textContent = slider.value;
      const left = sliders.filter((s) => !s.dataset.moved).length;
      next.disabled = left > 0;
      document.getElementById("status").textContent = left ? left + " slider(s) still to move." : "Ready.";
    });
    row.append(slider, value);
    sliders.push(slider);
    document.getElementById("conditions").append(row);
  });
  document.getElementById("loop").addEventListener("change", (e) => { for (const p of players) p.audio.loop = e.target.checked; });
  document.getElementById("stop-all").addEventListener("click", stopAll);

  next.addEventListener("click", async () => {
    next.disabled = true;
    stopAll();
    const ratings = {};
    for (const s of sliders) ratings[s.dataset.stimulus] = Number(s.value);
    const sent = await api("POST", "/api/trial", { listener, trial: trial.id, ratings });
    if (sent.status === 201 || sent.status === 409) { location.href = "/listen/" + listener; return; }
    showError(sent.data.error || "not stored (" + sent.status + "), try again");
    next.disabled = false;
  });
  document.body.dataset.ready = "1";
}
