// Tonearm's starter web app: browse with cover art, album pages, play, upload with live status.
// The full web player (queue, HLS, offline) grows from this in its own issue.
"use strict";
const $ = (sel) => document.querySelector(sel);
const view = $("#view");
const state = { token: localStorage.getItem("tonearm.access"), refresh: localStorage.getItem("tonearm.refresh"), me: null };

function esc(s) { return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]); }
function img(images, size) { if (!images || !images.length) return ""; const fit = images.filter((i) => i.width >= size); return (fit.length ? fit[fit.length - 1] : images[0]).url; }

async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  let res = await fetch(path, Object.assign({}, opts, { headers }));
  if (res.status === 401 && state.refresh && !opts._retried) {
    if (await refresh()) return api(path, Object.assign({}, opts, { _retried: true }));
  }
  const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error(body?.error?.message || body?.error_description || res.statusText);
  return body;
}

async function token(form) {
  const res = await fetch("/api/token", { method: "POST", body: new URLSearchParams(form) });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error_description || body.error?.message || "login failed");
  state.token = body.access_token; state.refresh = body.refresh_token;
  localStorage.setItem("tonearm.access", state.token); localStorage.setItem("tonearm.refresh", state.refresh);
}
async function refresh() {
  try { await token({ grant_type: "refresh_token", refresh_token: state.refresh }); return true; }
  catch { logoutLocal(); return false; }
}
function logoutLocal() { state.token = state.refresh = state.me = null; localStorage.removeItem("tonearm.access"); localStorage.removeItem("tonearm.refresh"); }

async function renderNav() {
  const nav = $("#nav");
  if (state.token) {
    try { state.me = await api("/v1/me"); } catch { logoutLocal(); }
  }
  nav.innerHTML = state.me
    ? `<a href="#/">Browse</a><a href="#/upload">Upload</a><span class="badge">${esc(state.me.product)}</span> <span class="muted">${esc(state.me.display_name)}</span> <button id="logout">Log out</button>`
    : `<a href="#/login">Log in</a><a href="#/signup">Sign up</a>`;
  $("#logout")?.addEventListener("click", async () => {
    await fetch("/api/token/revoke", { method: "POST", body: new URLSearchParams({ token: state.refresh || "" }) });
    logoutLocal(); location.hash = "#/login"; renderNav();
  });
}

async function home() {
  const data = await api("/v1/browse/new-releases?limit=50");
  view.innerHTML = `<h1>Albums</h1><p class="muted">${data.albums.total} albums</p><div class="grid">${data.albums.items.map((a) => `
    <a class="card" href="#/album/${a.id}"><img loading="lazy" src="${esc(img(a.images, 300))}" alt="">
    <div class="t">${esc(a.name)}</div><div class="s">${esc(a.artists.map((x) => x.name).join(", "))} · ${esc(a.release_date.slice(0, 4))}</div></a>`).join("")}</div>`;
}

async function album(id) {
  const a = await api("/v1/albums/" + encodeURIComponent(id));
  view.innerHTML = `<div class="album-head"><img src="${esc(img(a.images, 640))}" alt="">
    <div><div class="muted">${esc(a.album_type)}</div><h1>${esc(a.name)}</h1><div>${esc(a.artists.map((x) => x.name).join(", "))} · ${esc(a.release_date)} · ${a.total_tracks} tracks</div>
    <div class="muted">${esc(a.genres.join(", "))}</div></div></div>
    <table>${a.tracks.items.map((t) => `<tr class="track" data-id="${t.id}"><td class="muted">${t.track_number}</td><td>${esc(t.name)} ${t.explicit ? '<span class="badge">E</span>' : ""}</td><td class="muted">${esc(t.artists.map((x) => x.name).join(", "))}</td><td class="muted">${fmt(t.duration_ms)}</td></tr>`).join("")}</table>`;
  view.querySelectorAll("tr.track").forEach((tr) => tr.addEventListener("click", () => play(tr.dataset.id)));
}
function fmt(ms) { const s = Math.round(ms / 1000); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; }

async function play(trackId) {
  if (!state.me) { location.hash = "#/login"; return; }
  const [track, grant] = await Promise.all([api("/v1/tracks/" + trackId), api(`/v1/tracks/${trackId}/playback`)]);
  const best = grant.renditions.filter((r) => r.codec !== "flac" || !!document.createElement("audio").canPlayType("audio/flac"));
  const pick = best[best.length - 1];
  const audio = $("#audio");
  audio.src = pick.url;
  audio.volume = Math.min(1, Math.pow(10, (grant.loudness.gain_db || 0) / 20));
  $("#player").hidden = false;
  $("#np-art").src = img(track.album?.images, 64);
  $("#np-title").textContent = track.name;
  $("#np-artist").textContent = track.artists.map((x) => x.name).join(", ");
  $("#np-quality").textContent = pick.bitrate_kbps ? `${pick.codec} ${pick.bitrate_kbps} kbps` : `${pick.codec} lossless`;
  audio.play().catch(() => {});
}

function loginView(signup) {
  view.innerHTML = `<h1>${signup ? "Create your account" : "Log in"}</h1><form class="stack" id="f">
    <input name="email" type="email" placeholder="E-mail" required autocomplete="username">
    ${signup ? '<input name="display_name" placeholder="Display name" required><label class="muted">Birth date <input name="birth_date" type="date" required></label>' : ""}
    <input name="password" type="password" placeholder="Password (8+ characters)" required autocomplete="${signup ? "new-password" : "current-password"}">
    <button class="primary">${signup ? "Sign up" : "Log in"}</button><div class="error" id="err"></div></form>
    ${signup ? "" : '<p class="muted">Demo: listener@tonearm.local / tonearm-demo</p>'}`;
  $("#f").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(e.target));
    try {
      if (signup) await api("/v1/users", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(f) });
      await token({ grant_type: "password", username: f.email, password: f.password });
      await renderNav(); location.hash = "#/";
    } catch (err) { $("#err").textContent = err.message; }
  });
}

function uploadView() {
  if (!state.me) { location.hash = "#/login"; return; }
  view.innerHTML = `<h1>Upload</h1><div class="drop" id="drop">Drop audio files here or <label><u>choose files</u><input type="file" id="pick" multiple accept="audio/*" hidden></label>
    <p class="muted">MP3, FLAC, Ogg/Opus, M4A or WAV. <label><input type="checkbox" id="pub"> make public</label></p></div><ul class="uploads" id="list"></ul>`;
  const drop = $("#drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); [...e.dataTransfer.files].forEach(send); });
  $("#pick").addEventListener("change", (e) => [...e.target.files].forEach(send));
}

function send(file) {
  const li = document.createElement("li");
  li.innerHTML = `${esc(file.name)} <progress max="100" value="0"></progress> <span class="muted">uploading</span>`;
  $("#list").prepend(li);
  const fd = new FormData(); fd.append("file", file); fd.append("visibility", $("#pub").checked ? "public" : "private");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/me/uploads"); xhr.setRequestHeader("Authorization", "Bearer " + state.token);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) li.querySelector("progress").value = (100 * e.loaded) / e.total; };
  xhr.onload = () => {
    const body = JSON.parse(xhr.responseText || "{}");
    if (xhr.status >= 400) { li.querySelector("span").innerHTML = `<span class="error">${esc(body.error?.message || "failed")}</span>`; return; }
    poll(body.id, li);
  };
  xhr.send(fd);
}

async function poll(id, li) {
  const up = await api("/v1/me/uploads/" + id);
  const span = li.querySelector("span");
  if (up.status === "ready") { span.innerHTML = `ready — <a href="#" data-t="${up.track.id}">play</a>`; span.querySelector("a").onclick = (e) => { e.preventDefault(); play(up.track.id); }; return; }
  if (up.status === "failed") { span.innerHTML = `<span class="error">${esc(up.error.message)}</span>`; return; }
  span.textContent = up.stage || up.status;
  setTimeout(() => poll(id, li), 1000);
}

async function route() {
  const [, page, arg] = location.hash.split("/");
  try {
    if (page === "album") await album(arg);
    else if (page === "login") loginView(false);
    else if (page === "signup") loginView(true);
    else if (page === "upload") uploadView();
    else await home();
  } catch (err) { view.innerHTML = `<p class="error">${esc(err.message)}</p>`; }
}
window.addEventListener("hashchange", route);
renderNav().then(route);
