// The pages: home, album, artist, playlist, library, search, log in / sign up, upload, invitations.
import { $, $$, view, state, esc, img, fmt, names, api, token, routes, loadMe, needLogin, toast, nav } from "./core.js";
import { play, playTracks } from "./player.js";
import { shelvesHtml, trackTable, wireTracks, trackMenu, startRadio } from "./tracks.js";
import { openShare } from "./share.js";
import * as offline from "./offline.js";

async function home() {
  const at = nav.seq;
  const [feed, data] = await Promise.all([
    state.me ? api("/v1/me/home").catch(() => null) : null,
    api("/v1/browse/new-releases?limit=50"),
  ]);
  if (at !== nav.seq) return;
  view.innerHTML = (feed ? shelvesHtml(feed) : "") + `<h1>Albums</h1><p class="muted">${data.albums.total} albums</p><div class="grid">${data.albums.items.map((a) => `
    <a class="card" href="#/album/${a.id}"><img loading="lazy" src="${esc(img(a.images, 300))}" alt="">
    <div class="t">${esc(a.name)}</div><div class="s">${esc(a.artists.map((x) => x.name).join(", "))} · ${esc(a.release_date.slice(0, 4))}</div></a>`).join("")}</div>`;
  // A track card plays its shelf from that track on (the shelf's other tracks are next up).
  for (const shelf of feed?.shelves || []) {
    const tracks = shelf.items.filter((x) => x.type === "track");
    $$(`.shelf[data-shelf="${CSS.escape(shelf.id)}"] [data-play]`, view).forEach((el) => el.addEventListener("click", (e) => {
      e.preventDefault();
      playTracks(tracks, Math.max(0, tracks.findIndex((t) => t.id === el.dataset.play)));
    }));
  }
}

async function album(id) {
  const at = nav.seq;
  const a = await api("/v1/albums/" + encodeURIComponent(id));
  const tracks = a.tracks.items.map((t) => Object.assign({ album: { id: a.id, name: a.name, images: a.images } }, t));
  if (at !== nav.seq) return;
  view.innerHTML = `<div class="album-head"><img src="${esc(img(a.images, 640))}" alt="Cover of ${esc(a.name)}">
    <div><div class="muted">${esc(a.album_type)}</div><h1>${esc(a.name)}</h1><div>${a.artists.map((x) => `<a href="#/artist/${esc(x.id)}">${esc(x.name)}</a>`).join(", ")} · ${esc(a.release_date)} · ${a.total_tracks} tracks</div>
    <div class="muted">${esc(a.genres.join(", "))}</div>${headActions(a.name, "album", a.id)}</div></div>
    ${trackTable(tracks, { numbers: tracks.map((t) => t.track_number) })}`;
  // Both attach their handlers at once (a click never lands on a dead row), then fill in states.
  await Promise.all([wireTracks(view, tracks), wireHead("album", a.id, a.name, tracks)]);
}

// The buttons under a page's title: Play, Save/Follow, Share, Download (Premium) and Radio.
function headActions(name, type, id) {
  const save = { album: "Save", artist: "Follow" }[type];
  return `<div class="head-actions"><button class="primary" id="play-all" aria-label="Play ${esc(name)}">▶ Play</button>
    ${state.me && save ? `<button id="save" aria-pressed="false">${save}</button>` : ""}
    ${state.me && type !== "playlist" ? `<button id="radio" aria-label="Start a radio station from ${esc(name)}">Radio</button>` : ""}
    ${state.me ? `<button id="share" aria-label="Share ${esc(name)}">Share</button>` : ""}
    ${state.me?.product === "premium" && type !== "artist" ? `<button id="download" aria-label="Download ${esc(name)}">Download</button>` : ""}</div>`;
}
async function wireHead(type, id, name, tracks) {
  $("#play-all")?.addEventListener("click", () => tracks.length && playTracks(tracks, 0));
  $("#share")?.addEventListener("click", () => openShare(type, id));
  $("#radio")?.addEventListener("click", () => startRadio(type, id, name).catch((e) => toast(e.message, "error")));
  $("#download")?.addEventListener("click", async (e) => {
    e.target.disabled = true;
    try { await offline.download(tracks); } catch (err) { toast(err.message, "error"); } finally { e.target.disabled = false; }
  });
  const save = $("#save");
  if (!save) return;
  const [path, label] = type === "album" ? ["/v1/me/albums", ["Save", "Saved"]] : ["/v1/me/following?type=artist&", ["Follow", "Following"]];
  const url = (suffix) => (type === "album" ? `${path}${suffix}?ids=${encodeURIComponent(id)}` : `/v1/me/following${suffix}?type=artist&ids=${encodeURIComponent(id)}`);
  const show = (on) => { save.setAttribute("aria-pressed", String(on)); save.textContent = on ? label[1] : label[0]; };
  show((await api(url("/contains")))[0]);
  save.addEventListener("click", async () => {
    const on = save.getAttribute("aria-pressed") !== "true";
    try { await api(url(""), { method: on ? "PUT" : "DELETE" }); show(on); } catch (err) { toast(err.message, "error"); }
  });
}

// Your library: liked songs, your playlists (the ones made for you among them), saved albums,
// followed artists.
async function library() {
  const at = nav.seq;
  if (!state.me) { location.hash = "#/login"; return; }
  const [liked, lists, albums, follows] = await Promise.all([
    api("/v1/me/tracks?limit=50"), api("/v1/me/playlists?limit=50"), api("/v1/me/albums?limit=50"), api("/v1/me/following?type=artist&limit=50"),
  ]);
  const likedTracks = liked.items.map((i) => i.track);
  if (at !== nav.seq) return;
  view.innerHTML = `<h1>Your library</h1><p class="muted"><a href="#/history">Recently played</a> · <a href="#/stats">Your year in music</a> · <a href="#/downloads">Downloads</a> · <a href="#/queue">Queue</a></p>
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
  const at = nav.seq;
  const p = await api("/v1/playlists/" + encodeURIComponent(id));
  const tracks = p.tracks.items.map((i) => i.track).filter(Boolean);
  const mine = state.me && p.owner.id === state.me.id;
  const editable = state.me && (mine || p.collaborative);
  if (at !== nav.seq) return;
  view.innerHTML = `<div class="album-head"><img src="${esc(img(p.images, 640))}" alt="Cover of ${esc(p.name)}">
    <div><div class="muted">${p.public ? "Public playlist" : "Private playlist"}</div><h1>${esc(p.name)}</h1>
    <div><a href="#/user/${esc(p.owner.id)}">${esc(p.owner.display_name || "")}</a> · ${p.tracks.total} tracks</div><div class="muted">${esc(p.description || "")}</div>
    ${headActions(p.name, "playlist", p.id)}${mine ? '<button id="edit">Edit details</button>' : ""}</div></div>
    ${tracks.length ? trackTable(tracks, { editable, art: true }) : `<p class="muted">Empty: + on any track adds it here.</p>`}`;
  $("#edit")?.addEventListener("click", () => editPlaylist(p));
  await Promise.all([
    wireTracks(view, tracks, { playlist: editable ? { id: p.id, snapshot_id: p.snapshot_id } : null, changed: () => playlistView(id) }),
    wireHead("playlist", p.id, p.name, tracks),
  ]);
}

// Edit a playlist's name, description, visibility and cover (any image: it is scaled to a
// 640 px JPEG in the browser, under the API's 256 KB).
function editPlaylist(p) {
  const dlg = document.createElement("dialog");
  dlg.setAttribute("aria-label", "Edit playlist");
  dlg.innerHTML = `<h2>Edit details</h2><form class="stack" method="dialog">
    <label>Name <input name="name" required maxlength="100" value="${esc(p.name)}"></label>
    <label>Description <textarea name="description" maxlength="300" rows="3">${esc(p.description || "")}</textarea></label>
    <label><input type="checkbox" name="public"${p.public ? " checked" : ""}> Public</label>
    <label>Cover image <input type="file" name="cover" accept="image/*"></label>
    <div class="error" role="alert"></div>
    <div><button class="primary" value="save">Save</button> <button type="button" class="close">Cancel</button></div></form>`;
  document.body.appendChild(dlg);
  const done = () => { dlg.close(); dlg.remove(); };
  dlg.querySelector(".close").addEventListener("click", done);
  dlg.querySelector("form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await api("/v1/playlists/" + encodeURIComponent(p.id), { method: "PUT", json: { name: f.get("name").trim(), description: f.get("description"), public: f.get("public") === "on" } });
      const file = f.get("cover");
      if (file && file.size) {
        await api(`/v1/playlists/${encodeURIComponent(p.id)}/images`, { method: "PUT", headers: { "Content-Type": "image/jpeg" }, body: await coverJpeg(file) });
      }
      done(); toast("Playlist saved."); await playlistView(p.id);
    } catch (err) { dlg.querySelector(".error").textContent = err.message; }
  });
  dlg.showModal();
}
async function coverJpeg(file) {
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch { throw new Error("That file is not an image this browser can read."); }
  const side = Math.min(640, bitmap.width, bitmap.height), canvas = document.createElement("canvas");
  canvas.width = canvas.height = side;
  const crop = Math.min(bitmap.width, bitmap.height);
  canvas.getContext("2d").drawImage(bitmap, (bitmap.width - crop) / 2, (bitmap.height - crop) / 2, crop, crop, 0, 0, side, side);
  for (const quality of [0.85, 0.7, 0.5]) {
    const b64 = canvas.toDataURL("image/jpeg", quality).split(",")[1];
    if (b64.length <= 256 * 1024) return b64;
  }
  throw new Error("The cover is too large even after scaling down.");
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
      await loadMe();
      const then = sessionStorage.getItem("tonearm.after-login");  // e.g. an invitation link
      sessionStorage.removeItem("tonearm.after-login");
      location.hash = then || "#/";
    } catch (err) { $("#err").textContent = err.message; }
  });
}

// Upload: drop files or pick them; each shows its upload progress, then the pipeline's stage in
// words, then a Play button, or what went wrong (the server checks the content, not the name).
const STAGES = { queued: "Waiting to be processed…", verifying: "Checking the audio…", transcoding: "Making the streaming versions…", processing: "Processing…" };
const MAX_UPLOAD = 500 * 1024 * 1024;
async function uploadView() {
  if (needLogin()) return;
  view.innerHTML = `<h1>Upload</h1><div class="drop" id="drop"><p>Drop audio files here, or</p>
    <button class="primary" id="choose">Choose files</button><input type="file" id="pick" multiple accept="audio/*,.flac,.opus,.ogg,.m4a,.wav,.mp3" hidden aria-label="Audio files">
    <p class="muted">MP3, FLAC, Ogg/Opus, M4A or WAV. <label><input type="checkbox" id="pub"> Make public (others can find and play it)</label></p></div>
    <ul class="uploads" id="list" aria-live="polite"></ul><h2>Earlier uploads</h2><ul class="uploads" id="earlier"></ul>`;
  const drop = $("#drop");
  $("#choose").addEventListener("click", () => $("#pick").click());
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); [...e.dataTransfer.files].forEach(send); });
  $("#pick").addEventListener("change", (e) => { [...e.target.files].forEach(send); e.target.value = ""; });
  const earlier = await api("/v1/me/uploads?limit=20").catch(() => ({ items: [] }));
  for (const up of earlier.items || []) {
    const li = document.createElement("li");
    li.innerHTML = `<span class="file">${esc(up.filename || up.track?.name || up.id)}</span> <span class="state"></span>`;
    $("#earlier").append(li);
    showUpload(up, li).catch(() => {});
  }
}

function send(file) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="file">${esc(file.name)}</span> <progress max="100" value="0" aria-label="Uploading ${esc(file.name)}"></progress> <span class="state muted">Uploading…</span>`;
  $("#list").prepend(li);
  const fail = (msg) => { li.querySelector("progress")?.remove(); li.querySelector(".state").innerHTML = `<span class="error">${esc(msg)}</span>`; };
  if (file.size > MAX_UPLOAD) { fail("This file is over 500 MB, the most an upload may be."); return; }
  if (!file.size) { fail("This file is empty."); return; }
  const fd = new FormData(); fd.append("file", file); fd.append("visibility", $("#pub").checked ? "public" : "private");
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/me/uploads"); xhr.setRequestHeader("Authorization", "Bearer " + state.token);
  xhr.upload.onprogress = (e) => { if (e.lengthComputable) li.querySelector("progress").value = (100 * e.loaded) / e.total; };
  xhr.onerror = () => fail("The upload was cut off: the server could not be reached. Try again.");
  xhr.onload = () => {
    let body = {};
    try { body = JSON.parse(xhr.responseText || "{}"); } catch { /* not JSON: a proxy's error page */ }
    if (xhr.status === 401) { fail("Your session has ended: log in again, then upload."); return; }
    if (xhr.status === 429) { fail("Too many uploads at once: wait a minute and try again."); return; }
    if (xhr.status >= 400) { fail(body.error?.message || `The server refused the file (${xhr.status}).`); return; }
    li.querySelector("progress")?.remove();
    poll(body.id, li);
  };
  xhr.send(fd);
}

async function showUpload(up, li) {
  const span = li.querySelector(".state");
  if (up.status === "ready" && up.track) {
    const t = await api("/v1/tracks/" + encodeURIComponent(up.track.id));  // the upload names only its id
    span.innerHTML = `<span class="ok">Ready</span> <button class="play-upload" aria-label="Play ${esc(t.name)}">▶ Play</button> <a href="#/track/${esc(t.id)}">${esc(t.name)}</a>`;
    span.querySelector("button").onclick = () => playTracks([t], 0);
    return true;
  }
  if (up.status === "failed") { span.innerHTML = `<span class="error">${esc(up.error?.message || "Processing failed.")}</span>`; return true; }
  span.textContent = STAGES[up.stage] || STAGES[up.status] || "Processing…";
  return false;
}
async function poll(id, li, delay = 500) {
  try {
    if (await showUpload(await api("/v1/me/uploads/" + encodeURIComponent(id)), li)) return;
  } catch (err) {
    if (err.status && err.status !== 0 && err.status < 500) { li.querySelector(".state").innerHTML = `<span class="error">${esc(err.message)}</span>`; return; }
  }
  if (document.body.contains(li)) setTimeout(() => poll(id, li, Math.min(delay * 1.5, 3000)), delay);
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
    data = await api("/v1/search?type=track,artist,album,playlist&limit=12&q=" + encodeURIComponent(q));
  } catch (err) {
    if (mine === searchSeq) view.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    return;
  }
  if (mine !== searchSeq) return;
  const tracks = data.tracks?.items || [], artists = data.artists?.items || [], albums = data.albums?.items || [];
  const playlists = (data.playlists?.items || []).filter(Boolean);
  if (!tracks.length && !artists.length && !albums.length && !playlists.length) {
    view.innerHTML = `<h1 class="sr-only">Search</h1><p class="muted">Nothing found for “${esc(q)}”. Check the spelling, or try fewer words.</p>`;
    return;
  }
  view.innerHTML = `<h1 class="sr-only">Results for “${esc(q)}”</h1>
    ${tracks.length ? `<h2>Songs</h2>${trackTable(tracks, { art: true, cls: "results" })}` : ""}
    ${artists.length ? `<h2>Artists</h2><div class="grid">${artists.map((a) => `<a class="card" href="#/artist/${esc(a.id)}">
      <img loading="lazy" class="round" src="${esc(img(a.images, 300))}" alt=""><div class="t">${esc(a.name)}</div><div class="s">${esc((a.genres || []).slice(0, 2).join(", ") || "Artist")}</div></a>`).join("")}</div>` : ""}
    ${albums.length ? `<h2>Albums</h2><div class="grid">${albums.map((a) => `<a class="card" href="#/album/${esc(a.id)}">
      <img loading="lazy" src="${esc(img(a.images, 300))}" alt=""><div class="t">${esc(a.name)}</div><div class="s">${esc(names(a.artists))} · ${esc((a.release_date || "").slice(0, 4))}</div></a>`).join("")}</div>` : ""}
    ${playlists.length ? `<h2>Playlists</h2><div class="grid">${playlists.map((p) => `<a class="card" href="#/playlist/${esc(p.id)}">
      <img loading="lazy" src="${esc(img(p.images, 300))}" alt=""><div class="t">${esc(p.name)}</div><div class="s">By ${esc(p.owner?.display_name || "")}</div></a>`).join("")}</div>` : ""}`;
  if (tracks.length) await wireTracks(view, tracks);
}

async function artist(id) {
  const at = nav.seq;
  const q = encodeURIComponent(id);
  const [a, top, albums] = await Promise.all([
    api("/v1/artists/" + q), api(`/v1/artists/${q}/top-tracks`), api(`/v1/artists/${q}/albums?limit=50`),
  ]);
  if (at !== nav.seq) return;
  view.innerHTML = `<div class="album-head"><img class="round" src="${esc(img(a.images, 640))}" alt="${esc(a.name)}"><div><div class="muted">Artist</div><h1>${esc(a.name)}</h1>
    <div class="muted">${esc((a.genres || []).join(", "))}${a.followers ? ` · ${a.followers.total} followers` : ""}</div>${headActions(a.name, "artist", a.id)}</div></div>
    ${top.tracks.length ? `<h2>Popular</h2>${trackTable(top.tracks, { art: true })}` : ""}
    <h2>Albums</h2><div class="grid">${albums.items.map((x) => `
    <a class="card" href="#/album/${esc(x.id)}"><img loading="lazy" src="${esc(img(x.images, 300))}" alt=""><div class="t">${esc(x.name)}</div>
    <div class="s">${esc((x.release_date || "").slice(0, 4))} · ${esc(x.album_type)}</div></a>`).join("")}</div>`;
  await Promise.all([wireTracks(view, top.tracks), wireHead("artist", a.id, a.name, top.tracks)]);
}

// A track's own page (a shared link's target in the app): cover, credits, the album's other tracks.
async function trackPage(id) {
  const at = nav.seq;
  const t = await api("/v1/tracks/" + encodeURIComponent(id));
  if (at !== nav.seq) return;
  view.innerHTML = `<div class="album-head"><img src="${esc(img(t.album?.images, 640))}" alt="Cover of ${esc(t.album?.name)}">
    <div><div class="muted">Song</div><h1>${esc(t.name)}</h1>
    <div>${t.artists.map((x) => `<a href="#/artist/${esc(x.id)}">${esc(x.name)}</a>`).join(", ")} · <a href="#/album/${esc(t.album?.id)}">${esc(t.album?.name)}</a> · ${fmt(t.duration_ms)}</div>
    ${t.description ? `<p class="muted">${esc(t.description)}</p>` : ""}${headActions(t.name, "track", t.id)}</div></div>
    ${trackTable([t], { art: false })}`;
  await Promise.all([wireTracks(view, [t]), wireHead("track", t.id, t.name, [t])]);
}

// An invitation link (/join/<code> redirects here): what it is for, and a button to join.
async function joinView(code) {
  const at = nav.seq;
  if (!state.me) { sessionStorage.setItem("tonearm.after-login", location.hash); location.hash = "#/login"; return; }
  const inv = await api("/v1/invitations/" + encodeURIComponent(code));
  if (at !== nav.seq) return;
  view.innerHTML = `<h1>Join ${esc(inv.plan?.name || "a Premium plan")}</h1>
    <p>${esc(inv.manager?.display_name || "Someone")} invites you to their plan${inv.status === "valid" ? "" : ` (this invitation is ${esc(inv.status)})`}.</p>
    <button class="primary" id="join">Join</button><div class="error" id="err"></div>`;
  $("#join").addEventListener("click", async () => {
    try {
      await api(`/v1/invitations/${encodeURIComponent(code)}/accept`, { method: "POST" });
      await loadMe(); view.innerHTML = `<h1>Welcome to ${esc(inv.plan?.name || "Premium")}</h1><p>You are Premium now.</p>`;
    } catch (err) { $("#err").textContent = err.message; }
  });
}

Object.assign(routes, {
  "": home,
  search: (q) => searchView(q || ""),
  artist,
  album,
  track: trackPage,
  playlist: playlistView,
  library,
  login: () => loginView(false),
  signup: () => loginView(true),
  upload: uploadView,
  join: (code) => joinView(code || ""),
});
