// The share dialog: a link, the tonearm: URI and the embed code of a track, album, playlist or artist
// (a profile has no embeddable player: link and URI only).
import { api, state, esc } from "./core.js";

const EMBED_WIDTH = 456;
const EMBED_HEIGHT = { track: 152, album: 352, artist: 352, playlist: 352 };
const NOUN = { track: "track", album: "album", playlist: "playlist", artist: "artist", user: "profile" };

function field(name, label, value) {
  return `<div class="copyfield" data-field="${name}"><label>${esc(label)}
    ${name === "embed" ? `<textarea readonly rows="3" spellcheck="false">${esc(value)}</textarea>` : `<input readonly value="${esc(value)}" spellcheck="false">`}</label>
    <button type="button" class="copy" aria-label="Copy the ${esc(label.toLowerCase())}">Copy</button></div>`;
}

async function copy(input, status) {
  try {
    await navigator.clipboard.writeText(input.value);
    status.textContent = "Copied.";
  } catch {
    // No clipboard access (an insecure origin, or permission refused): select it for Ctrl+C.
    input.focus(); input.select();
    let done = false;
    try { done = document.execCommand("copy"); } catch { done = false; }
    status.textContent = done ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

function fallbackIframe(type, id) {
  const src = `${location.origin}/embed/${type}/${id}`;
  return `<iframe src="${esc(src)}" width="${EMBED_WIDTH}" height="${EMBED_HEIGHT[type]}" title="Tonearm ${esc(type)}" style="border:0;border-radius:12px" allow="autoplay; encrypted-media" loading="lazy"></iframe>`;
}

// Opens the dialog at once and fills the link and embed code as the server answers. Resolves to
// the <dialog> once they are in.
export async function openShare(type, id) {
  if (!NOUN[type]) throw new Error(`cannot share a ${type}`);
  document.querySelector("dialog.share")?.close();
  const before = document.activeElement;
  const uri = `tonearm:${type}:${id}`;
  const embeddable = type in EMBED_HEIGHT;
  const dlg = document.createElement("dialog");
  dlg.className = "share";
  dlg.setAttribute("aria-label", "Share");
  dlg.innerHTML = `<h2>Share this ${NOUN[type]}</h2>
    ${field("link", "Link", "Creating a link…")}
    ${field("uri", "Tonearm URI", uri)}
    ${embeddable ? field("embed", "Embed code", "Loading…") : ""}
    <p class="error" role="alert"></p><p class="muted share-status" role="status"></p>
    <div class="buttons"><a class="open" target="_blank" rel="noopener" hidden>Open the public page</a> <button type="button" class="close">Close</button></div>`;
  document.body.appendChild(dlg);
  const status = dlg.querySelector(".share-status"), error = dlg.querySelector(".error");
  dlg.querySelectorAll(".copyfield").forEach((f) => f.querySelector(".copy").addEventListener("click", () => copy(f.querySelector("input, textarea"), status)));
  dlg.querySelector(".close").addEventListener("click", () => dlg.close());
  dlg.addEventListener("close", () => { dlg.remove(); if (before && document.contains(before)) before.focus(); });
  dlg.showModal();  // Escape closes a modal dialog by itself
  const linkInput = dlg.querySelector("[data-field=link] input");
  linkInput.focus();

  const pageUrl = `${location.origin}/${type}/${id}`;
  const setLink = (url) => {
    linkInput.value = url;
    const open = dlg.querySelector("a.open");
    open.href = url; open.hidden = false;
  };
  const link = (async () => {
    if (!state.me) { setLink(pageUrl); return; }
    try {
      const share = await api("/v1/me/shares", { method: "POST", json: { uri } });
      setLink(share.url);
    } catch (err) {
      if (err.status === 403 || err.status === 404) {
        linkInput.value = "";
        error.textContent = err.status === 403 ? `This ${NOUN[type]} is private: make it public to share it.` : `This ${NOUN[type]} cannot be found.`;
      } else {
        setLink(pageUrl);  // e.g. the hourly limit of short links: the page's own address still works
      }
    }
  })();
  const embed = (async () => {
    if (!embeddable) return;
    const box = dlg.querySelector("[data-field=embed] textarea");
    try {
      const o = await api(`/oembed?format=json&url=${encodeURIComponent(uri)}`);
      box.value = o.html;
    } catch (err) {
      box.value = err.status === 404 ? "" : fallbackIframe(type, id);
    }
  })();
  await Promise.all([link, embed]);
  if (linkInput.value && document.activeElement === linkInput) linkInput.select();
  return dlg;
}
