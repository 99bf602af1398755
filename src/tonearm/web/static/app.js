// Tonearm's web app: browse with cover art, album pages, adaptive (HLS) playback that reports
// player events, upload with live status. Plain ES2020, no build step; hls.js is vendored from npm.
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
    ? `<a href="#/">Browse</a><a href="#/library">Library</a><a href="#/upload">Upload</a><span class="badge">${esc(state.me.product)}</span> <span class="muted">${esc(state.me.display_name)}</span> <button id="logout">Log out</button>`
    : `<a href="#/login">Log in</a><a href="#/signup">Sign up</a>`;
  $("#logout")?.addEventListener("click", async () => {
    reporter.finish("pause"); stopHls(); audio.pause(); $("#player").hidden = true;
    await reporter.flush();
    await fetch("/api/token/revoke", { method: "POST", body: new URLSearchParams({ token: state.refresh || "" }) });
    logoutLocal(); location.hash = "#/login"; renderNav();
  });
}

async function home() {
  const [feed, data] = await Promise.all([
    state.me ? api("/v1/me/home").catch(() => null) : null,
    api("/v1/browse/new-releases?limit=50"),
  ]);
  view.innerHTML = (feed ? shelvesHtml(feed) : "") + `<h1>Albums</h1><p class="muted">${data.albums.total} albums</p><div class="grid">${data.albums.items.map((a) => `
    <a class="card" href="#/album/${a.id}"><img loading="lazy" src="${esc(img(a.images, 300))}" alt="">
    <div class="t">${esc(a.name)}</div><div class="s">${esc(a.artists.map((x) => x.name).join(", "))} · ${esc(a.release_date.slice(0, 4))}</div></a>`).join("")}</div>`;
  view.querySelectorAll("[data-play]").forEach((el) => el.addEventListener("click", (e) => { e.preventDefault(); play(el.dataset.play); }));
}

// The home feed's shelves (/v1/me/home): rows of cards; a track card plays, playlists, albums and
// artists open their pages.
function shelvesHtml(feed) {
  const notice = feed.notice ? `<p class="muted notice">${esc(feed.notice)}</p>` : "";
  return notice + feed.shelves.map((s) => `<section class="shelf" data-shelf="${esc(s.id)}" aria-label="${esc(s.title)}">
    <h2>${esc(s.title)}</h2><div class="row">${s.items.map(shelfCard).join("")}</div></section>`).join("");
}
function shelfCard(x) {
  const names = (xs) => esc((xs || []).map((a) => a.name).join(", "));
  if (x.type === "track") return `<a class="card" href="#/album/${esc(x.album?.id)}" data-play="${esc(x.id)}" aria-label="Play ${esc(x.name)}">
    <img src="${esc(img(x.album?.images, 300))}" alt=""><div class="t">${esc(x.name)}</div><div class="s">${names(x.artists)}</div></a>`;
  if (x.type === "album") return `<a class="card" href="#/album/${esc(x.id)}"><img src="${esc(img(x.images, 300))}" alt="">
    <div class="t">${esc(x.name)}</div><div class="s">${names(x.artists)}</div></a>`;
  if (x.type === "artist") return `<a class="card" href="#/artist/${esc(x.id)}"><img class="round" src="${esc(img(x.images, 300))}" alt="">
    <div class="t">${esc(x.name)}</div><div class="s">Artist</div></a>`;
  if (x.type === "playlist") return `<a class="card" href="#/playlist/${esc(x.id)}">
    <img src="${esc(img(x.images, 300))}" alt=""><div class="t">${esc(x.name)}</div><div class="s">${esc(x.description || "Playlist")}</div></a>`;
  return "";
}

async function album(id) {
  const a = await api("/v1/albums/" + encodeURIComponent(id));
  view.innerHTML = `<div class="album-head"><img src="${esc(img(a.images, 640))}" alt="">
    <div><div class="muted">${esc(a.album_type)}</div><h1>${esc(a.name)}</h1><div>${esc(a.artists.map((x) => x.name).join(", "))} · ${esc(a.release_date)} · ${a.total_tracks} tracks</div>
    <div class="muted">${esc(a.genres.join(", "))}</div></div></div>
    ${trackTable(a.tracks.items, { numbers: a.tracks.items.map((t) => t.track_number) })}`;
  await wireTracks(view, a.tracks.items);
}

// Track rows ---------------------------------------------------------------------------------------
// Album, playlist and Liked Songs pages share one table: a click plays the track, ♥ likes it, + adds
// it to a playlist; in a playlist you may edit, ↑ ↓ move a track (the keyboard's way), rows can be
// dragged, and ✕ removes one.
function trackTable(tracks, { numbers = null, editable = false } = {}) {
  return `<table class="tracks">${tracks.map((t, i) => `<tr class="track" data-id="${esc(t.id)}" data-pos="${i}"${editable ? ' draggable="true"' : ""}>
    <td class="muted">${numbers ? numbers[i] : i + 1}</td>
    <td>${esc(t.name)} ${t.explicit ? '<span class="badge">E</span>' : ""}<div class="muted">${esc(t.artists.map((x) => x.name).join(", "))}</div></td>
    <td class="muted">${fmt(t.duration_ms)}</td>
    <td class="actions"><button class="icon like" aria-label="Like ${esc(t.name)}" aria-pressed="false">♡</button><button class="icon add" aria-label="Add ${esc(t.name)} to a playlist">+</button>${editable ? `<button class="icon up" aria-label="Move ${esc(t.name)} up">↑</button><button class="icon down" aria-label="Move ${esc(t.name)} down">↓</button><button class="icon remove" aria-label="Remove ${esc(t.name)}">✕</button>` : ""}</td></tr>`).join("")}</table>`;
}
function setLiked(button, on) {
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? "♥" : "♡";
  button.setAttribute("aria-label", button.getAttribute("aria-label").replace(/^(Like|Unlike) /, on ? "Unlike " : "Like "));
}
async function wireTracks(root, tracks, { playlist = null, changed = null } = {}) {
  const rows = [...root.querySelectorAll("tr.track")];
  rows.forEach((tr) => tr.addEventListener("click", (e) => { if (!e.target.closest("button, a")) play(tr.dataset.id); }));
  root.querySelectorAll(".like").forEach((b) => b.addEventListener("click", async () => {
    const on = b.getAttribute("aria-pressed") !== "true";
    await api("/v1/me/tracks?ids=" + encodeURIComponent(b.closest("tr").dataset.id), { method: on ? "PUT" : "DELETE" });
    setLiked(b, on);
  }));
  root.querySelectorAll(".add").forEach((b) => b.addEventListener("click", () => addToPlaylist(b.closest("tr").dataset.id)));
  if (playlist) {
    const send = async (method, body) => {
      const r = await api(`/v1/playlists/${encodeURIComponent(playlist.id)}/tracks`, {
        method, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...body, snapshot_id: playlist.snapshot_id }),
      });
      playlist.snapshot_id = r.snapshot_id;
      await changed();
    };
    const move = (from, to) => (to === from || to === from + 1 ? null : send("PUT", { range_start: from, insert_before: to }));
    rows.forEach((tr, i) => {
      tr.querySelector(".up").addEventListener("click", () => i > 0 && move(i, i - 1));
      tr.querySelector(".down").addEventListener("click", () => i < rows.length - 1 && move(i, i + 2));
      tr.querySelector(".remove").addEventListener("click", () => send("DELETE", { tracks: [{ uri: "tonearm:track:" + tr.dataset.id, positions: [i] }] }));
      tr.addEventListener("dragstart", (e) => { e.dataTransfer.setData("text/plain", String(i)); tr.classList.add("dragging"); });
      tr.addEventListener("dragend", () => tr.classList.remove("dragging"));
      tr.addEventListener("dragover", (e) => e.preventDefault());
      tr.addEventListener("drop", (e) => {
        e.preventDefault();
        const from = Number(e.dataTransfer.getData("text/plain"));
        if (Number.isInteger(from)) move(from, from < i ? i + 1 : i);  // dropped on a row: take its place
      });
    });
  }
  const ids = tracks.map((t) => t.id);
  for (let i = 0; i < ids.length; i += 50) {
    const liked = await api("/v1/me/tracks/contains?ids=" + ids.slice(i, i + 50).join(","));
    liked.forEach((on, k) => setLiked(rows[i + k].querySelector(".like"), on));
  }
}

// "Add to playlist": a dialog listing the playlists you own, and a box to start a new one.
async function addToPlaylist(trackId) {
  const mine = (await api("/v1/me/playlists?limit=50")).items.filter((p) => p.owner.id === state.me.id);
  const dlg = document.createElement("dialog");
  dlg.setAttribute("aria-label", "Add to playlist");
  dlg.innerHTML = `<h2>Add to playlist</h2><ul class="pick">${mine.map((p) => `<li><button data-id="${esc(p.id)}">${esc(p.name)}</button></li>`).join("")}</ul>
    <form><input name="name" placeholder="New playlist name" aria-label="New playlist name" maxlength="200"> <button class="primary">Create and add</button></form>
    <button class="close" aria-label="Close">Close</button><div class="error"></div>`;
  document.body.appendChild(dlg);
  const done = () => { dlg.close(); dlg.remove(); };
  const add = async (playlistId) => {
    try {
      await api(`/v1/playlists/${encodeURIComponent(playlistId)}/tracks`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ uris: ["tonearm:track:" + trackId] }) });
      done();
    } catch (err) { dlg.querySelector(".error").textContent = err.message; }
  };
  dlg.querySelectorAll(".pick button").forEach((b) => b.addEventListener("click", () => add(b.dataset.id)));
  dlg.querySelector("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = new FormData(e.target).get("name").trim();
    if (!name) return;
    try {
      const p = await api("/v1/me/playlists", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name, public: false }) });
      await add(p.id);
    } catch (err) { dlg.querySelector(".error").textContent = err.message; }
  });
  dlg.querySelector(".close").addEventListener("click", done);
  dlg.showModal();
}

// Your library: liked songs, your playlists (the ones made for you among them), saved albums,
// followed artists.
async function library() {
  if (!state.me) { location.hash = "#/login"; return; }
  const [liked, lists, albums, follows] = await Promise.all([
    api("/v1/me/tracks?limit=50"), api("/v1/me/playlists?limit=50"), api("/v1/me/albums?limit=50"), api("/v1/me/following?type=artist&limit=50"),
  ]);
  const likedTracks = liked.items.map((i) => i.track);
  view.innerHTML = `<h1>Your library</h1>
    <h2>Playlists</h2>${lists.items.length ? `<div class="grid">${lists.items.map((p) => `<a class="card" href="#/playlist/${esc(p.id)}">
      <img loading="lazy" src="${esc(img(p.images, 300))}" alt=""><div class="t">${esc(p.name)}</div><div class="s">${p.tracks.total} tracks</div></a>`).join("")}</div>` : `<p class="muted">No playlists yet: + on any track starts one.</p>`}
    <h2>Liked Songs <span class="muted">${liked.total}</span></h2>${likedTracks.length ? trackTable(likedTracks) : `<p class="muted">♡ a track to find it here.</p>`}
    ${albums.items.length ? `<h2>Albums</h2><div class="grid">${albums.items.map(({ album: a }) => `<a class="card" href="#/album/${esc(a.id)}">
      <img loading="lazy" src="${esc(img(a.images, 300))}" alt=""><div class="t">${esc(a.name)}</div><div class="s">${esc(a.artists.map((x) => x.name).join(", "))}</div></a>`).join("")}</div>` : ""}
    ${follows.artists.items.length ? `<h2>Artists</h2><div class="grid">${follows.artists.items.map((a) => `<a class="card" href="#/artist/${esc(a.id)}">
      <img loading="lazy" class="round" src="${esc(img(a.images, 300))}" alt=""><div class="t">${esc(a.name)}</div><div class="s">Artist</div></a>`).join("")}</div>` : ""}`;
  await wireTracks(view, likedTracks);
}

async function playlistView(id) {
  const p = await api("/v1/playlists/" + encodeURIComponent(id));
  const tracks = p.tracks.items.map((i) => i.track).filter(Boolean);
  const editable = state.me && (p.owner.id === state.me.id || p.collaborative);
  view.innerHTML = `<div class="album-head"><img src="${esc(img(p.images, 640))}" alt="">
    <div><div class="muted">${p.public ? "Public playlist" : "Private playlist"}</div><h1>${esc(p.name)}</h1>
    <div>${esc(p.owner.display_name || "")} · ${p.tracks.total} tracks</div><div class="muted">${esc(p.description || "")}</div></div></div>
    ${tracks.length ? trackTable(tracks, { editable }) : `<p class="muted">Empty: + on any track adds it here.</p>`}`;
  await wireTracks(view, tracks, { playlist: editable ? { id: p.id, snapshot_id: p.snapshot_id } : null, changed: () => playlistView(id) });
}
function fmt(ms) { const s = Math.round(ms / 1000); return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`; }

// Player ---------------------------------------------------------------------------------------
// play() asks for a playback grant and plays its HLS master with hls.js (adaptive AAC 96/160/320),
// natively where the browser plays HLS itself, else the best progressive rendition it can decode.
const audio = $("#audio");
// mode: "hls.js", "native" (the browser plays HLS itself) or "progressive".
const player = { trackId: null, grant: null, mode: null, hls: null, rendition: null, refreshing: false, refreshes: 0 };
const HLS_CONFIG = {
  // A short forward buffer keeps segments coming, so ABR keeps measuring the network (the default
  // 30 s would fill up on a fast start and then hear nothing of a connection that got slow).
  maxBufferLength: 15,
  maxMaxBufferLength: 30,
  // startLevel unset: the first variant of the master, which the server lists as the quick-start one.
  startLevel: undefined,
};

function renditionOfUrl(url) {
  // aac_160.m3u8?u=…&sig=… → "aac_160"
  try { return new URL(url, location.href).pathname.split("/").pop().replace(/\.(m3u8|mp4)$/, ""); } catch { return null; }
}
function qualityLabel(name, bps) {
  const m = /^([a-z0-9]+)_(\d+)$/.exec(name || "");
  if (m) return `${m[1].toUpperCase()} ${m[2]} kbps`;
  return bps ? `${Math.round(bps / 1000)} kbps` : "";
}
function showLevel(idx) {
  const level = player.hls?.levels?.[idx];
  if (!level) return;
  player.rendition = renditionOfUrl(level.uri);
  $("#np-quality").textContent = qualityLabel(player.rendition, level.bitrate);
  window.__tonearm.levelHistory.push({ t: performance.now(), level: idx, rendition: player.rendition, bitrate: level.bitrate });
}
function currentRendition() {
  // What is being heard: the level hls.js plays (or, before its first switch, the one it loads).
  const hls = player.hls;
  if (hls && !player.rendition) {
    const idx = hls.currentLevel >= 0 ? hls.currentLevel : hls.loadLevel;
    if (hls.levels?.[idx]) return renditionOfUrl(hls.levels[idx].uri);
  }
  return player.rendition;
}
function stopHls() {
  if (player.hls) { player.hls.destroy(); player.hls = window.__tonearm.hls = null; }
}

function startHls(url, startPosition) {
  stopHls();
  player.mode = "hls.js";
  const hls = new Hls(Object.assign({}, HLS_CONFIG, startPosition ? { startPosition } : {}));
  player.hls = window.__tonearm.hls = hls;
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => showLevel(d.level));
  hls.on(Hls.Events.ERROR, (_, d) => {
    if (d.type === Hls.ErrorTypes.NETWORK_ERROR && d.response?.code === 403) {
      // The signed URLs expired (a long pause): get a fresh grant and go on where we were.
      renewGrant();
    } else if (d.fatal && d.type === Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else if (d.fatal) {
      // Say so, then go on with a progressive rendition from the same position.
      reporter.emit("error", { message: `${d.type}: ${d.details}`.slice(0, 300) });
      const position = audio.currentTime;
      stopHls();
      if (player.grant) { playProgressive(source(player.grant), position); audio.play().catch(() => {}); }
    }
  });
  hls.loadSource(url);
  hls.attachMedia(audio);
}

async function renewGrant() {
  if (player.refreshing || player.refreshes >= 3 || !player.trackId) return;
  player.refreshing = true; player.refreshes += 1;
  const position = audio.currentTime, wasPlaying = !audio.paused;
  try {
    const grant = await api(`/v1/tracks/${player.trackId}/playback`);
    player.grant = grant;
    reporter.restoring = wasPlaying;  // the seek back to `position` and the stall are not the listener's
    if (player.mode === "hls.js" && grant.hls) startHls(grant.hls.master_url, position);
    else if (player.mode === "native" && grant.hls) playNative(grant.hls.master_url, position);
    else playProgressive(source(grant), position);
    if (wasPlaying) audio.play().catch(() => {});
  } catch (err) {
    reporter.emit("error", { message: "could not renew the playback grant: " + err.message });
  } finally { player.refreshing = false; }
}

function playNative(url, position = 0) {
  player.mode = "native";
  audio.src = url;  // the browser adapts by itself; which variant it plays is not visible
  if (position) audio.currentTime = position;
  $("#np-quality").textContent = "AAC adaptive";
}
function playProgressive(pick, position = 0) {
  player.mode = "progressive"; player.rendition = pick.name;
  audio.src = pick.url;
  if (position) audio.currentTime = position;
  $("#np-quality").textContent = pick.bitrate_kbps ? `${pick.codec.toUpperCase()} ${pick.bitrate_kbps} kbps` : `${pick.codec.toUpperCase()} lossless`;
}
function source(grant) {
  // Progressive fallback: the best rendition this browser can decode (the list is sorted by bitrate, lossless last).
  const probe = document.createElement("audio");
  const ok = grant.renditions.filter((r) => r.codec !== "flac" || !!probe.canPlayType("audio/flac"));
  return ok[ok.length - 1];
}

async function play(trackId) {
  if (!state.me) { location.hash = "#/login"; return; }
  const clickedAt = performance.now();
  const [track, grant] = await Promise.all([api("/v1/tracks/" + trackId), api(`/v1/tracks/${trackId}/playback`)]);
  reporter.finish("skip");
  stopHls();
  audio.removeAttribute("src");
  Object.assign(player, { trackId, grant, rendition: null, refreshing: false, refreshes: 0 });
  reporter.begin(trackId, clickedAt);
  if (window.Hls && Hls.isSupported() && grant.hls) {
    startHls(grant.hls.master_url);
    $("#np-quality").textContent = "AAC adaptive";
  } else if (grant.hls && audio.canPlayType("application/vnd.apple.mpegurl")) {
    playNative(grant.hls.master_url);
  } else {
    playProgressive(source(grant));
  }
  audio.volume = Math.min(1, Math.pow(10, (grant.loudness?.gain_db || 0) / 20));
  $("#player").hidden = false;
  $("#np-art").src = img(track.album?.images, 64);
  $("#np-title").textContent = track.name;
  $("#np-artist").textContent = track.artists.map((x) => x.name).join(", ");
  audio.play().catch(() => {});
}

audio.addEventListener("error", () => {
  // The element does not tell a 403 from other failures; a progressive or native-HLS URL past the
  // grant's expiry is renewed (at most 3 times a track), anything else is reported.
  if (player.mode === "hls.js" || !player.trackId || !audio.getAttribute("src")) return;
  const expired = player.grant && Date.now() / 1000 >= player.grant.expires_at - 5;
  if (expired && player.refreshes < 3) renewGrant();
  else reporter.emit("error", { message: `media error ${audio.error?.code}: ${audio.error?.message || ""}`.slice(0, 300) });
});

// Player events ----------------------------------------------------------------------------------
// One playback_id per listening; events are queued and POSTed in batches to /v1/me/player/events
// every 10 s and when the page goes away. A batch that failed is sent again as it was (same ids:
// the server counts repeats as duplicates). ms_played adds up the media time that advanced while
// playing, so seeks, pauses and stalls do not count as heard.
const reporter = {
  queue: [], pending: null, sending: false, sent: [], seq: 0, pb: null, restoring: false,

  begin(trackId, clickedAt) {
    this.pb = {
      id: crypto.randomUUID(), trackId, clickedAt, started: false, ended: false,
      msPlayed: 0, lastPos: null, lastProgress: 0, waitingSince: null, paused: false,
    };
  },
  emit(type, extra = {}) {
    const pb = this.pb;
    if (!pb) return;
    this.queue.push(Object.assign({
      id: `${pb.id}:${++this.seq}`, type, track_id: pb.trackId, playback_id: pb.id,
      timestamp: new Date().toISOString(), position_ms: Math.round((audio.currentTime || 0) * 1000),
      ms_played: Math.round(pb.msPlayed),
    }, currentRendition() ? { rendition: currentRendition() } : {}, extra));
  },
  finish(type) {  // the listener moved on (another track): close the open playback
    if (this.pb && this.pb.started && !this.pb.ended) { this.tick(); this.emit(type); }
    this.pb = null;
  },
  tick() {  // count heard time up to now
    const pb = this.pb;
    if (!pb || pb.lastPos === null) return;
    const delta = audio.currentTime - pb.lastPos;
    // timeupdate comes every ~250 ms; a larger jump without a `seeking` event is not listening either.
    if (delta > 0 && delta < 2) pb.msPlayed += delta * 1000;
    pb.lastPos = audio.currentTime;
  },
  async flush() {
    if (this.sending) return;
    if (!this.pending) {
      if (!this.queue.length || !state.token) return;
      this.pending = this.queue.splice(0, 100);
    }
    const batch = this.pending;
    this.sending = true;
    try {
      await this.post(batch, false);
      if (this.pending === batch) this.pending = null;
    } catch (err) {
      console.warn("player events not sent; the same batch goes again next time:", err.message);
    } finally { this.sending = false; }
  },
  async post(batch, keepalive) {
    const res = await api("/v1/me/player/events", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ events: batch }), keepalive,
    });
    if (res.rejected?.length) console.warn("player events refused:", res.rejected);
    this.sent.push(...batch);
    if (this.sent.length > 500) this.sent.splice(0, this.sent.length - 500);
  },
  pagehide() {  // last chance: keepalive requests outlive the page (repeats are harmless, ids dedupe)
    if (this.pb?.started && !this.pb.ended && !audio.paused) { this.tick(); this.emit("progress"); }
    const all = [...(this.pending || []), ...this.queue];
    for (let i = 0; i < all.length && state.token; i += 100) this.post(all.slice(i, i + 100), true).catch(() => {});
  },
};
window.__tonearm = { hls: null, audio, events: reporter, levelHistory: [] };

audio.addEventListener("playing", () => {
  const pb = reporter.pb;
  if (!pb) return;
  pb.lastPos = audio.currentTime;
  if (!pb.started) {
    pb.started = true;
    reporter.emit("start", { startup_ms: Math.round(performance.now() - pb.clickedAt) });
  } else if (pb.waitingSince !== null) {
    reporter.emit("rebuffer", { duration_ms: Math.round(performance.now() - pb.waitingSince) });
  } else if (pb.paused) {
    reporter.emit("resume");
  }
  pb.waitingSince = null; pb.paused = false; reporter.restoring = false;
});
audio.addEventListener("timeupdate", () => {
  const pb = reporter.pb;
  if (!pb || !pb.started || audio.paused || audio.seeking) return;
  reporter.tick();
  if (pb.msPlayed - pb.lastProgress >= 15000) { pb.lastProgress = pb.msPlayed; reporter.emit("progress"); }
});
audio.addEventListener("waiting", () => {
  // A stall while playing is a rebuffer; waiting for the data of a seek is part of the seek.
  const pb = reporter.pb;
  if (pb?.started && !audio.seeking && !reporter.restoring && pb.waitingSince === null) { reporter.tick(); pb.waitingSince = performance.now(); }
});
audio.addEventListener("pause", () => {
  const pb = reporter.pb;
  if (!pb?.started || audio.ended || reporter.restoring) return;
  reporter.tick(); pb.lastPos = null; pb.paused = true; pb.waitingSince = null;
  reporter.emit("pause");
});
audio.addEventListener("seeking", () => {
  const pb = reporter.pb;
  if (!pb?.started || reporter.restoring) return;
  pb.lastPos = null; pb.waitingSince = null;
  reporter.emit("seek");
});
audio.addEventListener("seeked", () => { if (reporter.pb && !audio.paused) reporter.pb.lastPos = audio.currentTime; });
audio.addEventListener("ended", () => {
  const pb = reporter.pb;
  if (!pb?.started || pb.ended) return;
  reporter.tick(); pb.ended = true;
  reporter.emit("end");
  reporter.flush();
});
setInterval(() => reporter.flush(), 10000);
window.addEventListener("pagehide", () => reporter.pagehide());

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
      await renderNav();
      const then = sessionStorage.getItem("tonearm.after-login");  // e.g. an invitation link
      sessionStorage.removeItem("tonearm.after-login");
      location.hash = then || "#/";
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

// Search as you type --------------------------------------------------------------------------
// Every keystroke asks /v1/search (the last word counts as a prefix while it is being typed); an
// answer that arrives after a newer keystroke's is dropped, so results never go backwards.
let searchSeq = 0;
const searchBox = $("#search");
searchBox.addEventListener("input", () => {
  const q = searchBox.value;
  history.replaceState(null, "", q.trim() ? "#/search/" + encodeURIComponent(q) : "#/");
  if (q.trim()) searchView(q); else home();
});
async function searchView(q) {
  const mine = ++searchSeq;
  if (searchBox.value !== q) searchBox.value = q;
  let data;
  try {
    data = await api("/v1/search?type=track,artist,album&limit=12&q=" + encodeURIComponent(q));
  } catch (err) {
    if (mine === searchSeq) view.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    return;
  }
  if (mine !== searchSeq) return;
  const tracks = data.tracks?.items || [], artists = data.artists?.items || [], albums = data.albums?.items || [];
  if (!tracks.length && !artists.length && !albums.length) {
    view.innerHTML = `<p class="muted">Nothing found for “${esc(q)}”.</p>`;
    return;
  }
  view.innerHTML = `
    ${tracks.length ? `<h2>Tracks</h2><table class="results">${tracks.map((t) => `<tr class="track" data-id="${esc(t.id)}">
      <td class="art"><img loading="lazy" src="${esc(img(t.album?.images, 64))}" alt=""></td>
      <td>${esc(t.name)} ${t.explicit ? '<span class="badge">E</span>' : ""}<div class="muted">${esc(t.artists.map((x) => x.name).join(", "))}</div></td>
      <td class="muted"><a href="#/album/${esc(t.album?.id)}">${esc(t.album?.name)}</a></td><td class="muted">${fmt(t.duration_ms)}</td></tr>`).join("")}</table>` : ""}
    ${artists.length ? `<h2>Artists</h2><div class="grid">${artists.map((a) => `<a class="card" href="#/artist/${esc(a.id)}">
      <img loading="lazy" class="round" src="${esc(img(a.images, 300))}" alt=""><div class="t">${esc(a.name)}</div><div class="s">${esc((a.genres || []).slice(0, 2).join(", ") || "Artist")}</div></a>`).join("")}</div>` : ""}
    ${albums.length ? `<h2>Albums</h2><div class="grid">${albums.map((a) => `<a class="card" href="#/album/${esc(a.id)}">
      <img loading="lazy" src="${esc(img(a.images, 300))}" alt=""><div class="t">${esc(a.name)}</div><div class="s">${esc(a.artists.map((x) => x.name).join(", "))} · ${esc((a.release_date || "").slice(0, 4))}</div></a>`).join("")}</div>` : ""}`;
  view.querySelectorAll("tr.track").forEach((tr) => tr.addEventListener("click", (e) => { if (!e.target.closest("a")) play(tr.dataset.id); }));
}

async function artist(id) {
  const [a, albums] = await Promise.all([api("/v1/artists/" + encodeURIComponent(id)), api(`/v1/artists/${encodeURIComponent(id)}/albums?limit=50`)]);
  view.innerHTML = `<div class="album-head"><img class="round" src="${esc(img(a.images, 640))}" alt=""><div><div class="muted">Artist</div><h1>${esc(a.name)}</h1>
    <div class="muted">${esc((a.genres || []).join(", "))}</div></div></div><h2>Albums</h2><div class="grid">${albums.items.map((x) => `
    <a class="card" href="#/album/${esc(x.id)}"><img loading="lazy" src="${esc(img(x.images, 300))}" alt=""><div class="t">${esc(x.name)}</div>
    <div class="s">${esc((x.release_date || "").slice(0, 4))}</div></a>`).join("")}</div>`;
}

// An invitation link (/join/<code> redirects here): what it is for, and a button to join.
async function joinView(code) {
  if (!state.me) { sessionStorage.setItem("tonearm.after-login", location.hash); location.hash = "#/login"; return; }
  const inv = await api("/v1/invitations/" + encodeURIComponent(code));
  view.innerHTML = `<h1>Join ${esc(inv.plan?.name || "a Premium plan")}</h1>
    <p>${esc(inv.manager?.display_name || "Someone")} invites you to their plan${inv.status === "valid" ? "" : ` (this invitation is ${esc(inv.status)})`}.</p>
    <button class="primary" id="join">Join</button><div class="error" id="err"></div>`;
  $("#join").addEventListener("click", async () => {
    try {
      await api(`/v1/invitations/${encodeURIComponent(code)}/accept`, { method: "POST" });
      await renderNav(); view.innerHTML = `<h1>Welcome to ${esc(inv.plan?.name || "Premium")}</h1><p>You are Premium now.</p>`;
    } catch (err) { $("#err").textContent = err.message; }
  });
}

async function route() {
  const [, page, arg] = location.hash.split("/");
  try {
    if (page === "search") await searchView(decodeURIComponent(arg || ""));
    else if (page === "artist") await artist(arg);
    else if (page === "album") await album(arg);
    else if (page === "playlist") await playlistView(arg);
    else if (page === "library") await library();
    else if (page === "login") loginView(false);
    else if (page === "signup") loginView(true);
    else if (page === "upload") uploadView();
    else if (page === "join") await joinView(decodeURIComponent(arg || ""));
    else await home();
  } catch (err) { view.innerHTML = `<p class="error">${esc(err.message)}</p>`; }
}
window.addEventListener("hashchange", route);
renderNav().then(route);
