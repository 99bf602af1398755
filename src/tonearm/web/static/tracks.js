// Track rows and cards: album, playlist and Liked Songs pages share one table; home shelves are rows
// of cards.
import { $, $$, api, state, esc, img, fmt, names, toast } from "./core.js";
import { play, playTracks, enqueue } from "./player.js";
import { openShare } from "./share.js";

// The home feed's shelves (/v1/me/home): rows of cards; a track card plays, playlists, albums and
// artists open their pages.
export function shelvesHtml(feed) {
  const notice = feed.notice ? `<p class="muted notice">${esc(feed.notice)}</p>` : "";
  return notice + feed.shelves.map((s) => `<section class="shelf" data-shelf="${esc(s.id)}" aria-label="${esc(s.title)}">
    <h2>${esc(s.title)}</h2><div class="row">${s.items.map(shelfCard).join("")}</div></section>`).join("");
}
function shelfCard(x) {
  const names = (xs) => esc((xs || []).map((a) => a.name).join(", "));
  if (x.type === "track") return `<a class="card" href="#/album/${esc(x.album?.id)}" data-play="${esc(x.id)}">
    <img src="${esc(img(x.album?.images, 300))}" alt=""><div class="t"><span class="sr-only">Play </span>${esc(x.name)}</div><div class="s">${names(x.artists)}</div></a>`;
  if (x.type === "album") return `<a class="card" href="#/album/${esc(x.id)}"><img src="${esc(img(x.images, 300))}" alt="">
    <div class="t">${esc(x.name)}</div><div class="s">${names(x.artists)}</div></a>`;
  if (x.type === "artist") return `<a class="card" href="#/artist/${esc(x.id)}"><img class="round" src="${esc(img(x.images, 300))}" alt="">
    <div class="t">${esc(x.name)}</div><div class="s">Artist</div></a>`;
  if (x.type === "playlist") return `<a class="card" href="#/playlist/${esc(x.id)}">
    <img src="${esc(img(x.images, 300))}" alt=""><div class="t">${esc(x.name)}</div><div class="s">${esc(x.description || "Playlist")}</div></a>`;
  return "";
}

// Track rows ---------------------------------------------------------------------------------------
// Album, playlist and Liked Songs pages share one table: a click plays the track, ♥ likes it, + adds
// it to a playlist; in a playlist you may edit, ↑ ↓ move a track (the keyboard's way), rows can be
// dragged, and ✕ removes one.
export function trackTable(tracks, { numbers = null, editable = false, art = false, cls = "" } = {}) {
  return `<table class="tracks ${cls}">${tracks.map((t, i) => `<tr class="track" data-id="${esc(t.id)}" data-pos="${i}"${editable ? ' draggable="true"' : ""}>
    <td class="num"><span class="muted">${numbers ? numbers[i] : i + 1}</span><button class="icon play" aria-label="Play ${esc(t.name)}">▶</button></td>
    ${art ? `<td class="art"><img loading="lazy" src="${esc(img(t.album?.images, 64))}" alt=""></td>` : ""}
    <td class="title"><a href="#/track/${esc(t.id)}" class="name">${esc(t.name)}</a> ${t.explicit ? '<span class="badge" title="Explicit">E</span>' : ""}<div class="muted">${t.artists.map((x) => `<a href="#/artist/${esc(x.id)}">${esc(x.name)}</a>`).join(", ")}</div></td>
    ${art && t.album ? `<td class="muted album"><a href="#/album/${esc(t.album.id)}">${esc(t.album.name)}</a></td>` : ""}
    <td class="muted dur">${fmt(t.duration_ms)}</td>
    <td class="actions"><button class="icon like" aria-label="Like ${esc(t.name)}" aria-pressed="false">♡</button><button class="icon add" aria-label="Add ${esc(t.name)} to a playlist">+</button>${editable ? `<button class="icon up" aria-label="Move ${esc(t.name)} up">↑</button><button class="icon down" aria-label="Move ${esc(t.name)} down">↓</button><button class="icon remove" aria-label="Remove ${esc(t.name)}">✕</button>` : ""}<button class="icon more" aria-label="More options for ${esc(t.name)}" aria-haspopup="menu" aria-expanded="false">⋯</button></td></tr>`).join("")}</table>`;
}
export function setLiked(button, on) {
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? "♥" : "♡";
  button.setAttribute("aria-label", button.getAttribute("aria-label").replace(/^(Like|Unlike) /, on ? "Unlike " : "Like "));
}
export async function wireTracks(root, tracks, { playlist = null, changed = null } = {}) {
  const rows = [...root.querySelectorAll("tr.track")];
  // A click on a row (or its ▶) plays the list from there: the rest of it is next in the queue.
  rows.forEach((tr, i) => tr.addEventListener("click", (e) => {
    if (e.target.closest("button:not(.play), a")) return;
    playTracks(tracks, i);
  }));
  root.querySelectorAll(".more").forEach((b) => b.addEventListener("click", (e) => {
    const i = rows.indexOf(b.closest("tr"));
    trackMenu(b, tracks[i]);
  }));
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
export async function addToPlaylist(trackId) {
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

// The ⋯ menu of a track: queue it, add it to a playlist, share it, go to its album or artist.
// A menu in the ARIA sense: arrow keys move, Escape closes and gives focus back to the button.
export function trackMenu(button, t) {
  document.querySelector(".menu")?.remove();
  const items = [
    ["Play next", () => enqueue([t], { next: true })],
    ["Add to queue", () => enqueue([t])],
    ["Add to playlist", () => addToPlaylist(t.id)],
    ["Start radio", () => startRadio("track", t.id, t.name)],
    ["Share", () => openShare("track", t.id)],
    ["Not interested", async () => {  // kept out of recommendations, radio and made-for-you lists
      await api("/v1/me/recommendations/hidden?ids=" + encodeURIComponent(t.id), { method: "PUT" });
      toast(`You won't be recommended “${t.name}” again.`);
    }],
    ...(t.album ? [["Go to album", () => { location.hash = "#/album/" + t.album.id; }]] : []),
    ...(t.artists?.length ? [["Go to artist", () => { location.hash = "#/artist/" + t.artists[0].id; }]] : []),
  ];
  const menu = document.createElement("div");
  menu.className = "menu";
  menu.setAttribute("role", "menu");
  menu.setAttribute("aria-label", `Options for ${t.name}`);
  menu.innerHTML = items.map(([label]) => `<button role="menuitem" tabindex="-1">${esc(label)}</button>`).join("");
  document.body.appendChild(menu);
  const r = button.getBoundingClientRect();
  menu.style.top = `${Math.min(window.scrollY + r.bottom + 4, window.scrollY + window.innerHeight - menu.offsetHeight - 8)}px`;
  menu.style.left = `${Math.max(8, window.scrollX + r.right - menu.offsetWidth)}px`;
  button.setAttribute("aria-expanded", "true");
  const entries = $$("[role=menuitem]", menu);
  const close = (refocus = true) => {
    menu.remove(); button.setAttribute("aria-expanded", "false");
    document.removeEventListener("click", outside, true);
    if (refocus) button.focus();
  };
  const outside = (e) => { if (!menu.contains(e.target)) close(false); };
  setTimeout(() => document.addEventListener("click", outside, true));
  entries.forEach((el, k) => el.addEventListener("click", async () => {
    close();
    try { await items[k][1](); } catch (err) { toast(err.message, "error"); }
  }));
  menu.addEventListener("keydown", (e) => {
    const at = entries.indexOf(document.activeElement);
    if (e.key === "ArrowDown") { e.preventDefault(); entries[(at + 1) % entries.length].focus(); }
    else if (e.key === "ArrowUp") { e.preventDefault(); entries[(at - 1 + entries.length) % entries.length].focus(); }
    else if (e.key === "Home") { e.preventDefault(); entries[0].focus(); }
    else if (e.key === "End") { e.preventDefault(); entries[entries.length - 1].focus(); }
    else if (e.key === "Escape" || e.key === "Tab") { e.preventDefault(); close(); }
  });
  entries[0].focus();
}

// Radio: an endless station from a track, artist or genre (/v1/radio); the first page is queued.
export async function startRadio(type, id, label) {
  const page = await api(`/v1/radio?seed=${encodeURIComponent(`tonearm:${type}:${id}`)}&limit=50`);
  const tracks = page.items || page.tracks || [];
  if (!tracks.length) { toast("Nothing to play on this station yet."); return; }
  toast(`Radio from “${label}”`);
  await playTracks(tracks, 0);
}
