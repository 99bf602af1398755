// The pages: home, album, artist, playlist, library, search, log in / sign up, upload, invitations.
import { $, view, state, esc, img, fmt, api, token, routes, loadMe, needLogin } from "./core.js";
import { play } from "./player.js";
import { shelvesHtml, trackTable, wireTracks } from "./tracks.js";

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

async function album(id) {
  const a = await api("/v1/albums/" + encodeURIComponent(id));
  view.innerHTML = `<div class="album-head"><img src="${esc(img(a.images, 640))}" alt="">
    <div><div class="muted">${esc(a.album_type)}</div><h1>${esc(a.name)}</h1><div>${esc(a.artists.map((x) => x.name).join(", "))} · ${esc(a.release_date)} · ${a.total_tracks} tracks</div>
    <div class="muted">${esc(a.genres.join(", "))}</div></div></div>
    ${trackTable(a.tracks.items, { numbers: a.tracks.items.map((t) => t.track_number) })}`;
  await wireTracks(view, a.tracks.items);
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
      await loadMe(); view.innerHTML = `<h1>Welcome to ${esc(inv.plan?.name || "Premium")}</h1><p>You are Premium now.</p>`;
    } catch (err) { $("#err").textContent = err.message; }
  });
}

Object.assign(routes, {
  "": home,
  search: (q) => searchView(q || ""),
  artist,
  album,
  playlist: playlistView,
  library,
  login: () => loginView(false),
  signup: () => loginView(true),
  upload: uploadView,
  join: (code) => joinView(code || ""),
});
