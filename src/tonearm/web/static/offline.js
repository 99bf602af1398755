// Offline playback for Premium listeners (docs/offline.md): this browser registers as one of the
// listener's five devices, downloads tracks as encrypted .tenc files with a licence each, keeps
// them in IndexedDB, and decrypts one with WebCrypto when it is played, as long as its licence
// has not expired by this device's clock. Also registers the Service Worker (sw.js) that lets the
// app start without a network, and the #/downloads page.
//
// IndexedDB "tonearm-offline":
//   devices   {user_id, id, name, key (a non-extractable AES-GCM CryptoKey), pending_removals}
//   downloads {user_id, track_id, track, rendition, content_type, size, gain_db, licence,
//              expires_at, file (the encrypted Blob, as downloaded), cover, downloaded_at}
//   covers    {url, blob}: cover art, so the downloads page has it offline
// The plaintext only ever lives in memory, as the blob: URL handed to the player.
import { $, api, bus, esc, fmt, loadMe, names, needLogin, routes, state, toast, view } from "./core.js";
import { playTracks } from "./player.js";

const PREMIUM_REQUIRED = "Offline downloads are a Premium feature";
const RENEW_WITHIN_S = 7 * 86400;
const enc = new TextEncoder();

// IndexedDB --------------------------------------------------------------------------------------
let dbPromise = null;
function db() {
  dbPromise = dbPromise || new Promise((resolve, reject) => {
    const req = indexedDB.open("tonearm-offline", 1);
    req.onupgradeneeded = () => {
      const d = req.result;
      d.createObjectStore("devices", { keyPath: "user_id" });
      d.createObjectStore("downloads", { keyPath: ["user_id", "track_id"] }).createIndex("user", "user_id");
      d.createObjectStore("covers", { keyPath: "url" });
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => { dbPromise = null; reject(req.error); };
  });
  return dbPromise;
}
async function tx(store, mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(store, mode);
    const req = fn(t.objectStore(store));
    t.oncomplete = () => resolve(req ? req.result : undefined);
    t.onerror = t.onabort = () => reject(t.error || new Error("IndexedDB transaction failed"));
  });
}
const dbGet = (store, key) => tx(store, "readonly", (s) => s.get(key));
const dbPut = (store, value) => tx(store, "readwrite", (s) => s.put(value));
const dbDelete = (store, key) => tx(store, "readwrite", (s) => s.delete(key));
const localDownloads = (userId) => tx("downloads", "readonly", (s) => s.index("user").getAll(userId));

// Who is listening: the logged-in listener, or (offline) the last one seen with this session ----
const ME_KEY = "tonearm.offline.me";
function userId() { return state.me?.id || null; }

// Cryptography (docs/offline.md "Formats") -----------------------------------------------------
function b64d(text) {
  const s = atob(String(text).replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}
function b64e(bytes) { return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""); }
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
const u32 = (i) => new Uint8Array([i >>> 24, (i >>> 16) & 255, (i >>> 8) & 255, i & 255]);
const equal = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
async function keyIdOf(raw) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(enc.encode("tonearm-key-id|"), raw))).slice(0, 8);
}

// The licence's content key, unwrapped with this device's key. The AAD binds it to the device,
// the track, the rendition and the expiry: an edited licence does not open.
async function unwrap(licence, deviceKey) {
  const wrapped = b64d(licence.wrapped_key);
  const aad = enc.encode(`tonearm-licence-v1|${licence.device_id}|${licence.track_id}|${licence.rendition}|${licence.expires_at}`);
  const raw = new Uint8Array(await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: wrapped.slice(0, 12), additionalData: aad }, deviceKey, wrapped.slice(12)));
  const kid = await keyIdOf(raw);
  if (b64e(kid) !== licence.key_id) throw new Error("the licence's key does not match its key id");
  return { key: await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["decrypt"]), kid };
}

// A whole .tenc file's plaintext, as a list of chunks: every chunk's tag, order and the end checked.
async function decryptFile(buffer, key, kid) {
  const data = new Uint8Array(buffer);
  if (data.length < 36 || String.fromCharCode(...data.slice(0, 4)) !== "TENC") throw new Error("not an offline file");
  const view = new DataView(buffer, 0, 36);
  if (data[4] !== 1) throw new Error(`unsupported offline file version ${data[4]}`);
  const chunk = view.getUint32(8);
  const size = Number(view.getBigUint64(28));
  if (!equal(data.slice(12, 20), kid)) throw new Error("this file was encrypted with another key");
  const header = data.slice(0, 36), prefix = data.slice(20, 28);
  const n = Math.max(1, Math.ceil(size / chunk));
  if (!chunk || data.length !== 36 + size + 16 * n) throw new Error("the file is incomplete (its length does not match its header)");
  const parts = [];
  for (let i = 0; i < n; i++) {
    const start = 36 + i * (chunk + 16);
    const sealed = data.subarray(start, Math.min(start + chunk + 16, data.length));
    parts.push(crypto.subtle.decrypt(
      { name: "AES-GCM", iv: concat(prefix, u32(i)), additionalData: concat(header, u32(i), new Uint8Array([i === n - 1 ? 1 : 0])) },
      key, sealed));
  }
  return Promise.all(parts);
}

// This browser as a device ------------------------------------------------------------------------
function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chromium" : /Safari\//.test(ua) ? "Safari" : "Browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Mac OS X/.test(ua) ? "macOS" : /Windows/.test(ua) ? "Windows" : /Linux/.test(ua) ? "Linux" : "";
  return `${browser}${os ? " on " + os : ""} (web player)`;
}
async function device({ register = false } = {}) {
  const uid = userId();
  if (!uid) return null;
  const known = await dbGet("devices", uid);
  if (known || !register) return known || null;
  const d = await api("/v1/me/devices", { method: "POST", json: { name: deviceName(), kind: "browser" } });
  // Kept as a non-extractable CryptoKey: page scripts can use it but never read it out.
  const key = await crypto.subtle.importKey("raw", b64d(d.device_key), "AES-GCM", false, ["decrypt"]);
  const rec = { user_id: uid, id: d.id, name: d.name, key, pending_removals: [] };
  await dbPut("devices", rec);
  return rec;
}
// The server no longer knows this device (removed from the account): its downloads are void.
async function forgetDevice(uid) {
  await dbDelete("devices", uid);
  for (const r of await localDownloads(uid)) await dbDelete("downloads", [uid, r.track_id]);
  changed();
}

function plainError(err) {
  if (err.status === 403 && /premium/i.test(err.message)) return PREMIUM_REQUIRED;
  if (err.status === 0 || err instanceof TypeError) return "You are offline or the server cannot be reached; try again when you are back online.";
  if (err.name === "QuotaExceededError") return "This browser has no room left for downloads; remove some first.";
  if (err.name === "OperationError") return "A downloaded file did not decrypt (damaged in transit); try again.";
  return err.message || String(err);
}
function changed() { bus.dispatchEvent(new CustomEvent("downloads")); if (/^#\/downloads/.test(location.hash)) downloadsPage(); }

// Downloading ------------------------------------------------------------------------------------
let busy = null;
// Downloads `tracks` (track objects) to this browser. Resolves to {downloaded, failed: [{track, message}]}
// or {error} (also shown as a toast), and never throws. Progress is a toast and "downloads" events on
// the bus ({detail: {done, total}}).
export async function download(tracks) {
  if (busy) await busy.catch(() => {});
  busy = downloadNow(tracks);
  return busy;
}
async function downloadNow(tracks) {
  const list = [...new Map((tracks || []).filter((t) => t && t.id).map((t) => [t.id, t])).values()];
  const fail = (message) => { toast(message, "error"); return { error: message, downloaded: 0, failed: [] }; };
  if (!list.length) return fail("Nothing to download.");
  if (!state.me) return fail("Log in to download tracks.");
  if (state.me.product === "free") return fail(PREMIUM_REQUIRED);
  if (!window.isSecureContext || !crypto.subtle || !window.indexedDB) return fail("Offline downloads need a secure (HTTPS) connection to Tonearm.");
  const uid = state.me.id;
  let res, dev;
  try {
    navigator.storage?.persist?.().catch(() => {});  // ask not to be evicted under storage pressure
    toast(`Preparing ${list.length === 1 ? "1 track" : list.length + " tracks"} for offline play…`);
    dev = await device({ register: true });
    const ask = () => api(`/v1/me/devices/${encodeURIComponent(dev.id)}/downloads`, { method: "POST", json: { ids: list.map((t) => t.id) } });
    try {
      res = await ask();
    } catch (err) {
      if (err.status !== 404) throw err;
      await forgetDevice(uid);  // unknown to the server now: register again
      dev = await device({ register: true });
      res = await ask();
    }
  } catch (err) {
    return fail(plainError(err));
  }
  const full = await fullTracks(list);
  const total = res.items.length;
  let done = 0;
  const failed = [];
  const progress = () => {
    toast(`Downloading for offline play: ${done} of ${total}${failed.length ? `, ${failed.length} failed` : ""}…`);
    bus.dispatchEvent(new CustomEvent("downloads", { detail: { done, total, failed: failed.length } }));
  };
  progress();
  const queue = [...res.items];
  const worker = async () => {
    for (let item; (item = queue.shift());) {
      try {
        await fetchOne(uid, item, full.get(item.track_id), dev.key);
      } catch (err) {
        failed.push({ track: full.get(item.track_id), message: plainError(err) });
      }
      done += 1; progress();
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  const ok = total - failed.length;
  if (failed.length) toast(`${ok} of ${total} tracks downloaded; ${failed[0].track?.name || "a track"}: ${failed[0].message}`, "error");
  else toast(`${ok === 1 ? "1 track" : ok + " tracks"} downloaded: they play offline until ${new Date(res.expires_at).toLocaleDateString(undefined, { day: "numeric", month: "short" })} and renew when you are online.`);
  changed();
  return { downloaded: ok, failed };
}

// Album pages give tracks without their album: the full objects carry the cover art.
async function fullTracks(list) {
  const out = new Map(list.map((t) => [t.id, t]));
  const thin = list.filter((t) => !t.album?.images?.length).map((t) => t.id);
  for (let i = 0; i < thin.length; i += 50) {
    try {
      const r = await api("/v1/tracks?ids=" + thin.slice(i, i + 50).map(encodeURIComponent).join(","));
      for (const t of r.tracks || []) if (t) out.set(t.id, t);
    } catch (err) { /* the thin objects will do */ }
  }
  return out;
}

async function fetchOne(uid, item, track, deviceKey) {
  const licence = item.licence;
  const { key, kid } = await unwrap(licence, deviceKey);
  const have = await dbGet("downloads", [uid, item.track_id]);
  if (have && have.rendition === item.rendition && have.licence.key_id === licence.key_id) {
    // Already here (the same file): only the licence is new.
    await dbPut("downloads", Object.assign(have, { licence, expires_at: licence.expires_at, track: track || have.track }));
    return;
  }
  const response = await fetch(item.url);  // a signed URL: no token needed (nor sent)
  if (!response.ok) throw new Error(response.status === 403 ? "the download link was refused (expired or revoked); try again" : `the server answered ${response.status}`);
  const buffer = await response.arrayBuffer();
  const plain = await decryptFile(buffer, key, kid);  // checked now, so a damaged file is never kept
  const gain = await api(`/v1/tracks/${encodeURIComponent(item.track_id)}/playback`).then((g) => g.loudness?.gain_db ?? 0, () => 0);
  const cover = await keepCover(track);
  await dbPut("downloads", {
    user_id: uid, track_id: item.track_id, track: track || { id: item.track_id, name: item.track_id, artists: [] },
    rendition: item.rendition, content_type: item.content_type || "audio/mp4",
    size: plain.reduce((n, p) => n + p.byteLength, 0), gain_db: gain, licence, expires_at: licence.expires_at,
    file: new Blob([buffer], { type: "application/vnd.tonearm.offline" }), cover, downloaded_at: Date.now(),
  });
}

function coverUrl(track) {
  const images = track?.album?.images || [];
  const fit = images.filter((i) => i.width >= 64);
  return (fit.length ? fit[fit.length - 1] : images[0])?.url || null;
}
async function keepCover(track) {
  const url = coverUrl(track);
  if (!url) return null;
  try {
    if (!(await dbGet("covers", url))) {
      const r = await fetch(url);
      if (r.ok) await dbPut("covers", { url, blob: await r.blob() });
    }
    return url;
  } catch (err) { return null; }
}

// Playing ------------------------------------------------------------------------------------------
const liveUrls = [];  // the last few blob: URLs handed out (the player may hold the next one ready)
function expiresAt(rec) { return Math.min(Number(rec.expires_at), Number(rec.licence?.expires_at)); }
const nowS = () => Date.now() / 1000;

// A local source for a downloaded track whose licence is still valid by this device's clock:
// {url (blob:), cover (blob: URL of the cover art, or null), track, gain_db, content_type, rendition,
// expires_at}, or null.
export async function offlineSource(trackId) {
  const uid = userId();
  if (!uid || !trackId || !window.indexedDB || !crypto.subtle) return null;
  try {
    const rec = await dbGet("downloads", [uid, trackId]);
    if (!rec || !(nowS() < expiresAt(rec))) return null;
    const dev = await dbGet("devices", uid);
    if (!dev || dev.id !== rec.licence.device_id) return null;
    const { key, kid } = await unwrap(rec.licence, dev.key);
    const plain = await decryptFile(await rec.file.arrayBuffer(), key, kid);
    const url = URL.createObjectURL(new Blob(plain, { type: rec.content_type }));
    const art = rec.cover ? await dbGet("covers", rec.cover).catch(() => null) : null;
    const cover = art ? URL.createObjectURL(art.blob) : null;
    liveUrls.push(url, ...(cover ? [cover] : []));
    while (liveUrls.length > 6) URL.revokeObjectURL(liveUrls.shift());
    return { url, cover, track: rec.track, gain_db: rec.gain_db || 0, content_type: rec.content_type, rendition: rec.rendition, expires_at: expiresAt(rec) };
  } catch (err) {
    console.warn("offline copy not playable:", err);
    return null;
  }
}

export async function isDownloaded(trackId) {
  const uid = userId();
  if (!uid || !window.indexedDB) return false;
  try { return !!(await dbGet("downloads", [uid, trackId])); } catch (err) { return false; }
}

// Deletes the local copy, and the download on the server (later, when offline now).
export async function removeDownload(trackId) {
  const uid = userId();
  if (!uid) return;
  await dbDelete("downloads", [uid, trackId]);
  const dev = await dbGet("devices", uid);
  if (dev) {
    try {
      await api(`/v1/me/devices/${encodeURIComponent(dev.id)}/downloads`, { method: "DELETE", json: { ids: [trackId] } });
    } catch (err) {
      if (err.status === 0) { dev.pending_removals = [...new Set([...(dev.pending_removals || []), trackId])]; await dbPut("devices", dev); }
    }
  }
  changed();
}

// Keeping licences fresh (when online) -----------------------------------------------------------
// On start: removals made offline are sent, downloads the server revoked are deleted, and when a
// licence expires within 7 days (or has), all are renewed. A device the server no longer knows, or
// a plan without offline play, takes the local downloads with it.
let syncing = null;
export function sync() { syncing = syncing || syncNow().finally(() => { syncing = null; }); return syncing; }
async function syncNow() {
  const uid = userId();
  if (!uid || state.me?.offline_copy || !navigator.onLine || !window.indexedDB) return;
  const dev = await dbGet("devices", uid);
  if (!dev) return;
  const base = `/v1/me/devices/${encodeURIComponent(dev.id)}`;
  try {
    if (dev.pending_removals?.length) {
      await api(base + "/downloads", { method: "DELETE", json: { ids: dev.pending_removals } });
      dev.pending_removals = []; await dbPut("devices", dev);
    }
    const held = await localDownloads(uid);
    if (!held.length) return;
    const revoked = await api(base + "/downloads?state=revoked&limit=1000");
    const gone = new Set(revoked.items.map((d) => d.track_id));  // (a download made again is active, not listed)
    let kept = held.filter((r) => !gone.has(r.track_id));
    for (const r of held) if (!kept.includes(r)) await dbDelete("downloads", [uid, r.track_id]);
    if (kept.some((r) => expiresAt(r) - nowS() < RENEW_WITHIN_S)) {
      const renewed = await api(base + "/licences/renew", { method: "POST" });
      const fresh = new Map(renewed.items.map((i) => [i.track_id, i]));
      for (const r of kept) {
        const item = fresh.get(r.track_id);
        if (!item || item.rendition !== r.rendition) { await dbDelete("downloads", [uid, r.track_id]); continue; }
        Object.assign(r, { licence: item.licence, expires_at: item.licence.expires_at });
        await dbPut("downloads", r);
      }
      kept = kept.filter((r) => fresh.has(r.track_id));
    }
    const n = held.length - kept.length;
    if (n) toast(`${n === 1 ? "1 downloaded track was" : n + " downloaded tracks were"} removed: no longer available offline.`);
    if (held.length) changed();
  } catch (err) {
    if (err.status === 404) {
      await forgetDevice(uid);
      toast("This browser was removed from your devices, so its downloads were deleted.", "error");
    } else if (err.status === 403) {
      for (const r of await localDownloads(uid)) await dbDelete("downloads", [uid, r.track_id]);
      changed();
      toast(`${PREMIUM_REQUIRED}: your plan no longer includes it, so this browser's downloads were deleted.`, "error");
    } else {
      console.warn("offline licences not renewed now:", err.message);
    }
  }
}

// The session while offline -----------------------------------------------------------------------
// Started without a network, /v1/me cannot answer: the last listener seen with this session is
// kept (state.me.offline_copy = true) so the downloads page and the player know whose downloads
// to play; the real one is loaded again when the network is back.
bus.addEventListener("auth", (e) => {
  const me = e.detail;
  if (me && !me.offline_copy) {
    localStorage.setItem(ME_KEY, JSON.stringify(me));
    sync().catch(() => {});
    return;
  }
  if (me) return;
  if (!state.token) { localStorage.removeItem(ME_KEY); return; }  // logged out
  let copy = null;
  try { copy = JSON.parse(localStorage.getItem(ME_KEY) || "null"); } catch (err) { /* ignore */ }
  if (!copy?.id) return;
  state.me = Object.assign(copy, { offline_copy: true });
  // Runs inside loadMe(): the shell's own listeners (the navigation) see the kept listener next.
  queueMicrotask(() => bus.dispatchEvent(new CustomEvent("auth", { detail: state.me })));
  if (!location.hash || location.hash === "#/" || location.hash === "#") location.hash = "#/downloads";
});
window.addEventListener("online", () => { if (state.me?.offline_copy) loadMe(); else sync().catch(() => {}); });

// The downloads page -----------------------------------------------------------------------------
let pageUrls = [];
const size = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} kB`);
async function downloadsPage() {
  if (!state.me && needLogin()) return;
  const uid = userId();
  let recs = [];
  try { recs = uid && window.indexedDB ? await localDownloads(uid) : []; } catch (err) { /* private mode without IndexedDB */ }
  if (!/^#\/downloads/.test(location.hash)) return;  // navigated away meanwhile
  recs.sort((a, b) => (a.track.album?.name || "").localeCompare(b.track.album?.name || "") || (a.track.track_number || 0) - (b.track.track_number || 0) || a.track.name.localeCompare(b.track.name));
  pageUrls.forEach((u) => URL.revokeObjectURL(u));
  pageUrls = [];
  const covers = new Map();
  for (const r of recs) {
    if (!r.cover || covers.has(r.cover)) continue;
    const c = await dbGet("covers", r.cover).catch(() => null);
    const u = c ? URL.createObjectURL(c.blob) : "";
    if (u) pageUrls.push(u);
    covers.set(r.cover, u);
  }
  const now = nowS();
  const refocus = view.contains(document.activeElement);  // (a removed row took the focus with it)
  const total = recs.reduce((n, r) => n + (r.size || 0), 0);
  const when = (s) => new Date(s * 1000).toLocaleDateString(undefined, { day: "numeric", month: "short", year: "numeric" });
  const intro = recs.length
    ? `<p class="muted">${recs.length === 1 ? "1 track" : recs.length + " tracks"} · ${size(total)} in this browser. They play without a connection until their licences expire, and renew whenever you are online.</p>`
    : state.me?.product === "free"
      ? `<p>${PREMIUM_REQUIRED}. <a href="#/account">See the plans</a>.</p>`
      : `<p class="muted">Nothing downloaded yet: the Download button on an album or a playlist keeps its tracks here for offline play.</p>`;
  view.innerHTML = `<h1>Downloads</h1>${intro}
    ${recs.length ? `<table class="downloads"><caption class="visually-hidden">Downloaded tracks</caption>${recs.map((r, i) => {
      const left = expiresAt(r) - now;
      const status = left <= 0 ? `<span class="error">Expired: go online to renew</span>` : `${left < RENEW_WITHIN_S ? "Renew soon: expires" : "Until"} ${esc(when(expiresAt(r)))}`;
      return `<tr class="dl" data-id="${esc(r.track_id)}" data-i="${i}">
      <td class="dl-art"><img src="${esc(covers.get(r.cover) || "/static/icon.svg")}" alt="" width="40" height="40"></td>
      <td>${esc(r.track.name)}<div class="muted">${esc(names(r.track.artists))}${r.track.album?.name ? " · " + esc(r.track.album.name) : ""}</div></td>
      <td class="muted dl-dur">${fmt(r.track.duration_ms)}</td>
      <td class="muted dl-size">${size(r.size || 0)}</td>
      <td class="muted dl-expiry">${status}</td>
      <td class="dl-actions"><button class="icon play" aria-label="Play ${esc(r.track.name)}"${left <= 0 ? " disabled" : ""}>▶</button><button class="icon remove" aria-label="Remove ${esc(r.track.name)} from downloads">✕</button></td></tr>`;
    }).join("")}</table>` : ""}`;
  const playable = recs.filter((r) => expiresAt(r) > now);
  view.querySelectorAll("tr.dl").forEach((tr) => {
    const rec = recs[Number(tr.dataset.i)];
    tr.querySelector(".play").addEventListener("click", () => {
      const tracks = playable.map((r) => r.track);
      playTracks(tracks, Math.max(0, playable.indexOf(rec))).catch((err) => toast(plainError(err), "error"));
    });
    tr.querySelector(".remove").addEventListener("click", async () => {
      await removeDownload(rec.track_id).catch((err) => toast(plainError(err), "error"));
      toast(`${rec.track.name} was removed from your downloads.`);
    });
  });
  if (refocus) { const h = $("h1", view); h.setAttribute("tabindex", "-1"); h.focus(); }
}
routes.downloads = downloadsPage;

// The Service Worker: the app starts offline, and can be installed ---------------------------------
if ("serviceWorker" in navigator && window.isSecureContext) {
  const register = () => navigator.serviceWorker.register("/sw.js").catch((err) => console.warn("no service worker:", err.message));
  if (document.readyState === "complete") register(); else window.addEventListener("load", register, { once: true });
}

// Skip to the content: the first Tab stop of every page (an accessibility aid of the shell).
(() => {
  if ($(".skip-link")) return;
  const a = document.createElement("a");
  a.className = "skip-link";
  a.href = "#view";
  a.textContent = "Skip to content";
  a.addEventListener("click", (e) => {
    e.preventDefault();  // the hash is the router's: focus the page instead of following the link
    const main = $("#view");
    const target = $("h1", main) || main;
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  });
  document.body.prepend(a);
})();
