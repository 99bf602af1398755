// Track rows and cards: album, playlist and Liked Songs pages share one table; home shelves are rows
// of cards.
import { $, api, state, esc, img, fmt } from "./core.js";
import { play } from "./player.js";

// The home feed's shelves (/v1/me/home): rows of cards; a track card plays, playlists, albums and
// artists open their pages.
export function shelvesHtml(feed) {
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

// Track rows ---------------------------------------------------------------------------------------
// Album, playlist and Liked Songs pages share one table: a click plays the track, ♥ likes it, + adds
// it to a playlist; in a playlist you may edit, ↑ ↓ move a track (the keyboard's way), rows can be
// dragged, and ✕ removes one.
export function trackTable(tracks, { numbers = null, editable = false } = {}) {
  return `<table class="tracks">${tracks.map((t, i) => `<tr class="track" data-id="${esc(t.id)}" data-pos="${i}"${editable ? ' draggable="true"' : ""}>
    <td class="muted">${numbers ? numbers[i] : i + 1}</td>
    <td>${esc(t.name)} ${t.explicit ? '<span class="badge">E</span>' : ""}<div class="muted">${esc(t.artists.map((x) => x.name).join(", "))}</div></td>
    <td class="muted">${fmt(t.duration_ms)}</td>
    <td class="actions"><button class="icon like" aria-label="Like ${esc(t.name)}" aria-pressed="false">♡</button><button class="icon add" aria-label="Add ${esc(t.name)} to a playlist">+</button>${editable ? `<button class="icon up" aria-label="Move ${esc(t.name)} up">↑</button><button class="icon down" aria-label="Move ${esc(t.name)} down">↓</button><button class="icon remove" aria-label="Remove ${esc(t.name)}">✕</button>` : ""}</td></tr>`).join("")}</table>`;
}
export function setLiked(button, on) {
  button.setAttribute("aria-pressed", String(on));
  button.textContent = on ? "♥" : "♡";
  button.setAttribute("aria-label", button.getAttribute("aria-label").replace(/^(Like|Unlike) /, on ? "Unlike " : "Like "));
}
export async function wireTracks(root, tracks, { playlist = null, changed = null } = {}) {
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
