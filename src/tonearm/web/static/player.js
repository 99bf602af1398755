// The player: the bar, the queue, and playback. A track plays from a playback grant: its HLS master
// through hls.js (adaptive AAC 96/160/320), natively where the browser plays HLS itself, else the
// best progressive rendition it can decode; a downloaded track plays from offline.js. Player events
// are reported in batches. hls.js is vendored from npm and loaded as a classic script (window.Hls).
//
// Choices: "gapless-ish" = ~10 s before a track ends the next one's grant is fetched and its first
// segment warmed, so the next track starts without a round trip to the API; no crossfade (two media
// pipelines for a rarely used setting did not pay for their bytes). Queue semantics follow Spotify:
// shuffle reorders what comes after the current track and off restores the original order; repeat
// cycles off → all → one; "previous" after 3 s restarts the track; a user's "next" during repeat-one
// moves on and turns repeat to "all". Only the next button / N / media key is a skip (the `skip`
// event, sent at once so the server's skip limit decides); picking another track is not.
import { $, api, state, img, esc, fmt, names, routes, view, bus, toast } from "./core.js";
import { offlineSource } from "./offline.js";

const audio = $("#audio");
const bar = $("#player");
let volume = 1;  // the listener's, 0..1
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// mode: "hls.js", "native" (the browser plays HLS itself), "progressive" or "offline".
const player = {
  trackId: null, grant: null, mode: null, hls: null, rendition: null, refreshing: false, refreshes: 0,
  gain: 1, loaded: false, seq: 0, prefetch: null, ad: null, recovering: false, mediaFails: 0, mediaRecoveries: 0,
};
const HLS_CONFIG = {
  // A short forward buffer keeps segments coming, so ABR keeps measuring the network (the default
  // 30 s would fill up on a fast start and then hear nothing of a connection that got slow).
  maxBufferLength: 15,
  maxMaxBufferLength: 30,
  // startLevel unset: the first variant of the master, which the server lists as the quick-start one.
  startLevel: undefined,
};

// The queue ------------------------------------------------------------------------------------
// list: track objects in play order (each with a `uid`), index: the current one; original: the uids
// in the order before shuffling (null when shuffle is off). Persisted in localStorage.
const Q = { list: [], index: -1, shuffle: false, repeat: "off", original: null, position: 0 };
let uids = 0;
const slim = (t) => ({
  uid: ++uids, id: t.id, name: t.name, duration_ms: t.duration_ms,
  artists: (t.artists || []).map((a) => ({ id: a.id, name: a.name })),
  album: t.album ? { id: t.album.id, name: t.album.name, images: t.album.images || [] } : null,
});
const current = () => Q.list[Q.index] || null;
function save() {
  if (player.loaded && !player.ad && player.trackId === current()?.id) Q.position = audio.currentTime || 0;
  try {
    localStorage.setItem("tonearm.queue", JSON.stringify({
      user: state.me?.id, list: Q.list, index: Q.index, shuffle: Q.shuffle, repeat: Q.repeat, original: Q.original, position: Q.position,
    }));
  } catch { /* storage full or off: the queue lives on in memory */ }
}
function changed() { save(); bus.dispatchEvent(new CustomEvent("queue", { detail: Q })); renderBar(); }
function restore() {
  let s;
  try { s = JSON.parse(localStorage.getItem("tonearm.queue") || "null"); } catch { s = null; }
  if (!s || !Array.isArray(s.list) || !s.list.length || (s.user && state.me && s.user !== state.me.id)) return;
  Q.list = s.list.map((t) => Object.assign({}, t, { uid: ++uids }));
  const byOld = new Map(s.list.map((t, k) => [t.uid, Q.list[k].uid]));
  Object.assign(Q, { index: Math.min(Math.max(0, s.index | 0), Q.list.length - 1), shuffle: !!s.shuffle, repeat: s.repeat || "off", position: +s.position || 0 });
  Q.original = s.shuffle && Array.isArray(s.original) ? s.original.map((u) => byOld.get(u)).filter(Boolean) : null;
  if (Q.shuffle && !Q.original) Q.original = Q.list.map((t) => t.uid);
  showTrack(current());
  renderBar();
}
function nextIndex() {
  if (Q.index + 1 < Q.list.length) return Q.index + 1;
  return Q.repeat === "all" && Q.list.length ? 0 : -1;
}
function shuffleRest() {
  const rest = Q.list.slice(Q.index + 1);
  for (let i = rest.length - 1; i > 0; i--) { const j = Math.floor(Math.random() * (i + 1)); [rest[i], rest[j]] = [rest[j], rest[i]]; }
  Q.list.splice(Q.index + 1, rest.length, ...rest);
}
export function setShuffle(on) {
  if (on === Q.shuffle) return;
  Q.shuffle = on;
  if (on) { Q.original = Q.list.map((t) => t.uid); shuffleRest(); }
  else {
    // Back to the original order, going on from the current track; tracks added meanwhile follow it.
    const cur = current(), order = new Map((Q.original || []).map((u, i) => [u, i]));
    const known = Q.list.filter((t) => order.has(t.uid)).sort((a, b) => order.get(a.uid) - order.get(b.uid));
    const added = Q.list.filter((t) => !order.has(t.uid) && t !== cur);
    const at = cur ? known.indexOf(cur) : -1;
    Q.list = at >= 0 ? [...known.slice(0, at + 1), ...added, ...known.slice(at + 1)] : [...known, ...added];
    Q.index = cur ? Q.list.indexOf(cur) : -1;
    Q.original = null;
  }
  player.prefetch = null;
  changed();
}
export function cycleRepeat() { Q.repeat = { off: "all", all: "one", one: "off" }[Q.repeat]; player.prefetch = null; changed(); }

export async function playTracks(tracks, index = 0) {
  Q.list = tracks.map(slim); Q.index = index; Q.original = null;
  if (Q.shuffle) { Q.original = Q.list.map((t) => t.uid); shuffleRest(); }
  player.prefetch = null;
  changed();
  await startItem(Q.index, { clickedAt: performance.now() });
}
// One track by id (home cards, search, uploads): it becomes the queue; its details come with the grant.
export async function play(trackId) {
  if (!state.token) { location.hash = "#/login"; return; }
  const clickedAt = performance.now();
  Q.list = [slim({ id: trackId, name: "" })]; Q.index = 0; Q.original = Q.shuffle ? [Q.list[0].uid] : null;
  player.prefetch = null;
  await startItem(0, { clickedAt });
}
export function enqueue(tracks, { next = false } = {}) {
  const items = tracks.map(slim);
  Q.list.splice(next ? Q.index + 1 : Q.list.length, 0, ...items);
  if (Q.index < 0) Q.index = 0;
  if (Q.original) Q.original.push(...items.map((t) => t.uid));
  player.prefetch = null;
  changed();
  toast(items.length === 1 ? "Added to queue" : `Added ${items.length} tracks to queue`);
  if (!player.loaded && Q.list.length === items.length) showTrack(current());
}
function move(from, to) {  // indexes into Q.list
  if (from === to || from < 0 || to < 0 || from >= Q.list.length || to >= Q.list.length) return;
  const cur = current();
  const [t] = Q.list.splice(from, 1);
  Q.list.splice(to, 0, t);
  Q.index = Q.list.indexOf(cur);
  player.prefetch = null;
  changed();
}
function removeAt(i) {
  if (i === Q.index || i < 0 || i >= Q.list.length) return;
  const [t] = Q.list.splice(i, 1);
  if (i < Q.index) Q.index -= 1;
  if (Q.original) Q.original = Q.original.filter((u) => u !== t.uid);
  player.prefetch = null;
  changed();
}
function clearNext() {
  const cur = current();
  Q.list = cur ? [cur] : []; Q.index = cur ? 0 : -1; Q.original = Q.shuffle && cur ? [cur.uid] : null;
  player.prefetch = null;
  changed();
}

// Moving through the queue ----------------------------------------------------------------------
// A skip (next button, N, Shift+→, the media key): the server's skip accounting decides first.
export async function next() {
  if (player.ad) { toast("Ads can't be skipped; your music comes right after."); return; }
  if (player.skipping) return;  // one skip at a time: the server is still deciding the last one
  if (reporter.pb && !reporter.pb.ended && player.loaded) {
    player.skipping = true;
    const refusal = await reporter.skip(state.me?.product !== "premium").finally(() => { player.skipping = false; });
    if (refusal) { skipRefused(refusal); return; }
  }
  if (Q.repeat === "one") { Q.repeat = "all"; changed(); }
  const j = nextIndex();
  if (j < 0) { stopAtEnd(); return; }
  await startItem(j, { clickedAt: performance.now() });
}
function skipRefused(r) {
  if (r.reason === "ad_unskippable" || r.reason === "ad_playing") { toast("Ads can't be skipped; your music comes right after."); return; }
  const n = /(\d+) skips/.exec(r.message || "")?.[1];
  const at = r.next_skip_at ? new Date(r.next_skip_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : null;
  toast(at
    ? `You've used your ${n ? n + " " : ""}skips this hour. Next skip at ${at} — or go Premium for unlimited skips.`
    : "Your plan has no skips — go Premium for unlimited skips.", "error");
}
export async function previous() {
  if (player.ad) return;
  if (player.loaded && audio.currentTime > 3) { audio.currentTime = 0; return; }
  const i = Q.index > 0 ? Q.index - 1 : Q.repeat === "all" ? Q.list.length - 1 : Q.index;
  if (i < 0) return;
  if (i === Q.index && player.loaded) { audio.currentTime = 0; return; }
  await startItem(i, { clickedAt: performance.now() });
}
function trackEnded() {
  if (player.ad) { adDone(); return; }
  const i = Q.repeat === "one" ? Q.index : nextIndex();
  if (i < 0) { stopAtEnd(); return; }
  startItem(i, { clickedAt: performance.now() });
}
function stopAtEnd() {
  // The queue is over (repeat off): stop on the last track, at its start.
  audio.pause(); reporter.finish("progress"); stopHls(); audio.removeAttribute("src"); audio.load();
  player.loaded = false; Q.position = 0;
  changed();
}
export async function togglePlay() {
  if (player.ad || player.loaded) { if (audio.paused) audio.play().catch(() => {}); else audio.pause(); return; }
  if (current()) await startItem(Q.index, { position: Q.position, clickedAt: performance.now() });
}

// Starting a track: the offline copy, else a grant (prefetched or asked now), then its ad if any.
async function startItem(i, { position = 0, clickedAt = performance.now() } = {}) {
  if (!state.token) { location.hash = "#/login"; return; }
  const item = Q.list[i];
  if (!item) return;
  const seq = ++player.seq;
  reporter.finish("progress");
  endAd();
  Q.index = i; Q.position = position; save();
  showTrack(item);
  bar.hidden = false;
  const local = await offlineSource(item.id).catch(() => null);
  if (seq !== player.seq) return;
  if (local) {
    if (local.track) fill(item, local.track);
    showTrack(item);
    if (local.cover) el("art").src = local.cover;
    begin(item, { offline: local }, position, clickedAt);
    return;
  }
  let grant;
  try {
    const pre = player.prefetch;
    player.prefetch = null;
    const fresh = pre?.grant && pre.id === item.id && pre.grant.expires_at - Date.now() / 1000 > 60;
    const [g, t] = await Promise.all([
      fresh ? pre.grant : grantFor(item.id, seq),
      item.name && item.album ? null : api("/v1/tracks/" + encodeURIComponent(item.id)).catch(() => null),  // an album's tracks lack `album`
    ]);
    grant = g;
    if (t) fill(item, t);
  } catch (err) {
    if (seq !== player.seq) return;
    if (err.status === 0) { recover(); return; }  // the server is away: retry until it answers
    toast(`“${item.name || "This track"}” could not be played: ${err.message}`, "error");
    return;
  }
  if (seq !== player.seq || !grant) return;
  showTrack(item);
  if (grant.ad) playAd(grant, item, position, seq);
  else begin(item, { grant }, position, clickedAt);
}
function fill(item, t) { Object.assign(item, slim(t), { uid: item.uid }); save(); bus.dispatchEvent(new CustomEvent("queue", { detail: Q })); }
async function grantFor(trackId, seq) {
  // While an ad plays (say, one served with a prefetched grant), other tracks wait for its end.
  for (let tries = 0; ; tries++) {
    try { return await api(`/v1/tracks/${encodeURIComponent(trackId)}/playback`); } catch (err) {
      if (err.reason !== "ad_playing" || tries > 3 || seq !== player.seq) throw err;
      const ends = Date.parse(err.body?.error?.ad_ends_at || "") || Date.now() + 5000;
      status(`Waiting for the ad to end…`);
      await sleep(Math.min(130000, Math.max(500, ends - Date.now() + 300)));
      status("");
    }
  }
}
function begin(item, { grant = null, offline = null }, position, clickedAt) {
  stopHls();
  audio.removeAttribute("src");
  Object.assign(player, { trackId: item.id, grant, rendition: null, refreshing: false, refreshes: 0, loaded: true, mediaFails: 0, mediaRecoveries: 0 });
  reporter.begin(item.id, clickedAt);
  if (offline) {
    player.mode = "offline"; player.gain = gainOf(offline.gain_db);
    audio.src = offline.url;
    if (position) audio.currentTime = position;
    $("#np-quality").textContent = "Downloaded";
  } else {
    player.gain = gainOf(grant.loudness?.gain_db);
    playGrant(grant, position);
  }
  applyVolume();
  audio.play().catch(() => {});
  renderBar();
}
const gainOf = (db) => Math.pow(10, (db || 0) / 20);
function playGrant(grant, position = 0) {
  if (window.Hls && Hls.isSupported() && grant.hls) {
    startHls(grant.hls.master_url, position);
    $("#np-quality").textContent = "AAC adaptive";
  } else if (grant.hls && audio.canPlayType("application/vnd.apple.mpegurl")) {
    playNative(grant.hls.master_url, position);
  } else {
    playProgressive(source(grant), position);
  }
}

// Ads (free listeners): the grant's `ad` plays first, cannot be skipped or seeked, is reported
// complete, then the track starts.
function playAd(grant, item, position, seq) {
  const ad = grant.ad;
  player.ad = { ad, grant, item, position, seq, maxTime: 0, started: Date.now() };
  bar.dataset.ad = "true";
  stopHls(); audio.removeAttribute("src");
  Object.assign(player, { trackId: null, grant: null, loaded: true });
  $("#np-title").textContent = ad.name; $("#np-title").removeAttribute("href");
  $("#np-artist").textContent = ad.advertiser;
  $("#np-art").removeAttribute("src");
  player.gain = gainOf(ad.loudness?.gain_db);
  playGrant(ad, 0);
  applyVolume();
  audio.play().catch(() => {});
  adTick();
  renderBar();
}
function adTick() {
  const a = player.ad;
  if (!a) return;
  const left = Math.max(0, Math.ceil((a.ad.duration_ms || 0) / 1000 - (audio.currentTime || 0)));
  status(`Advertisement · ${left} s`);
}
function endAd() { if (player.ad) { player.ad = null; delete bar.dataset.ad; status(""); } }
async function adDone() {
  const a = player.ad;
  if (!a || a.done) return;
  a.done = true;
  // The server believes the completion once the ad could have played: wait out what is left.
  const left = a.started + (a.ad.duration_ms || 0) - 1500 - Date.now();
  if (left > 0) await sleep(left);
  for (let tries = 0; tries < 5; tries++) {
    try { await api(`/v1/me/ads/${encodeURIComponent(a.ad.impression_id)}/complete`, { method: "POST" }); break; } catch (err) {
      if (err.status === 404) break;
      await sleep(1000 * (tries + 1));
    }
  }
  if (a.seq !== player.seq) return;
  endAd();
  showTrack(a.item);
  begin(a.item, { grant: a.grant }, a.position, performance.now());
}

// HLS and the other sources ----------------------------------------------------------------------
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
    if (hls !== player.hls) return;
    if (player.ad) { if (d.fatal) adFailed(); return; }
    if (d.type === Hls.ErrorTypes.NETWORK_ERROR && d.response?.code === 403) {
      // The signed URLs expired (a long pause): get a fresh grant and go on where we were.
      renewGrant();
    } else if (d.fatal && d.type === Hls.ErrorTypes.NETWORK_ERROR) {
      reporter.emit("error", { message: `${d.type}: ${d.details}`.slice(0, 300) });
      recover();
    } else if (d.fatal && d.type === Hls.ErrorTypes.MEDIA_ERROR && player.mediaRecoveries++ < 2) {
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
function adFailed() {
  // An ad that cannot play still has to run its length before the server lets the track start.
  const a = player.ad;
  if (!a || a.done) return;
  stopHls(); audio.removeAttribute("src");
  const timer = setInterval(() => {
    if (player.ad !== a) { clearInterval(timer); return; }
    const left = Math.max(0, Math.ceil((a.started + a.ad.duration_ms - Date.now()) / 1000));
    status(`Advertisement · ${left} s`);
    if (!left) { clearInterval(timer); adDone(); }
  }, 500);
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
    if (err.status === 0) recover();
  } finally { player.refreshing = false; }
}

// A fatal network or media failure: ask the server for a new grant (with backoff while it does not
// answer: "Reconnecting…"), then go on at the same position. A track that fails again although the
// server answers is skipped, with a message.
async function recover() {
  if (player.recovering || !current()) return;
  player.recovering = true;
  const item = current(), seq = player.seq;
  let grant = null, away = false;
  try {
    for (let delay = 1000; seq === player.seq; delay = Math.min(delay * 2, 30000)) {
      try { grant = await api(`/v1/tracks/${encodeURIComponent(item.id)}/playback`); break; } catch (err) {
        if (err.status !== 0 && err.status < 500) throw err;
        away = true;
        status("Reconnecting…");
        await sleep(delay);
      }
    }
  } catch (err) {
    grant = null;
  } finally { player.recovering = false; status(""); }
  if (seq !== player.seq) return;
  const fails = away ? 0 : player.mediaFails + 1;
  if (!grant || fails >= 2) { failed(item); return; }
  // Where it was (what played from the buffer meanwhile counts).
  const live = player.loaded && player.trackId === item.id, position = live ? audio.currentTime || Q.position : Q.position;
  if (grant.ad) { playAd(grant, item, position, seq); return; }
  if (!live) { begin(item, { grant }, position, performance.now()); return; }
  player.grant = grant; player.mediaFails = fails; player.mediaRecoveries = 0;
  reporter.restoring = true;
  playGrant(grant, position);
  audio.play().catch(() => {});
}
function failed(item) {
  toast(`“${item.name || "This track"}” could not be played; skipping`, "error");
  reporter.finish("progress");
  const i = nextIndex();
  if (i < 0 || i === Q.index) stopAtEnd(); else startItem(i);
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

audio.addEventListener("error", () => {
  // The element does not tell a 403 from other failures; a progressive or native-HLS URL past the
  // grant's expiry is renewed (at most 3 times a track), anything else goes to recover().
  if (player.mode === "hls.js" || !audio.getAttribute("src")) return;
  if (player.ad) { adFailed(); return; }
  if (!player.trackId) return;
  const expired = player.grant && Date.now() / 1000 >= player.grant.expires_at - 5;
  if (expired && player.refreshes < 3) { renewGrant(); return; }
  reporter.emit("error", { message: `media error ${audio.error?.code}: ${audio.error?.message || ""}`.slice(0, 300) });
  if (player.mode !== "offline") recover(); else failed(current());
});

// Prefetch: ~10 s before the end, the next track's grant, its master playlist and first segment.
async function prefetchNext() {
  const i = Q.repeat === "one" ? Q.index : nextIndex();
  const item = Q.list[i];
  const pre = player.prefetch;
  if (!item || player.ad || !state.token || (pre && (pre.grant || Date.now() - pre.at < 5000))) return;
  player.prefetch = { id: item.id, grant: null, at: Date.now() };
  try {
    if (await offlineSource(item.id).catch(() => null)) return;
    const grant = await api(`/v1/tracks/${encodeURIComponent(item.id)}/playback`);
    if (player.prefetch?.id !== item.id) return;
    player.prefetch.grant = grant;
    player.prefetch.at = Date.now();
    const warm = grant.ad || grant;
    if (warm.hls?.start) fetch(warm.hls.start.url, { headers: { Range: warm.hls.start.range } }).catch(() => {});
    if (warm.hls) fetch(warm.hls.master_url).catch(() => {});
  } catch { /* tried again in 5 s */ }
}

// Player events ----------------------------------------------------------------------------------
// One playback_id per listening; events are queued and POSTed in batches to /v1/me/player/events
// every 10 s and when the page goes away. A batch that failed is sent again as it was (same ids:
// the server counts repeats as duplicates). ms_played adds up the media time that advanced while
// playing, so seeks, pauses and stalls do not count as heard. A skip is sent at once: the server's
// answer (`rejected` with reason skip_limit) decides whether the player moves on.
const reporter = {
  queue: [], pending: null, sending: false, sent: [], seq: 0, pb: null, restoring: false, rejected: new Map(), failing: false,

  begin(trackId, clickedAt) {
    this.pb = {
      id: crypto.randomUUID(), trackId, clickedAt, started: false, ended: false,
      msPlayed: 0, lastPos: null, lastProgress: 0, waitingSince: null, paused: false,
    };
  },
  emit(type, extra = {}) {
    const pb = this.pb;
    if (!pb) return null;
    const e = Object.assign({
      id: `${pb.id}:${++this.seq}`, type, track_id: pb.trackId, playback_id: pb.id,
      timestamp: new Date().toISOString(), position_ms: Math.round((audio.currentTime || 0) * 1000),
      ms_played: Math.round(pb.msPlayed),
    }, currentRendition() ? { rendition: currentRendition() } : {}, extra);
    this.queue.push(e);
    return e;
  },
  finish(type) {  // the listener moved on (another track): close the open playback
    if (this.pb && this.pb.started && !this.pb.ended) { this.tick(); this.emit(type); }
    this.pb = null;
  },
  async skip(wait) {  // a skip: sent now; resolves to the server's refusal, or null
    this.tick();
    const e = this.emit("skip");
    const pb = this.pb;
    if (!wait) { this.pb = null; this.flush(); return null; }
    for (let i = 0; i < 50 && !this.failing; i++) {
      await this.flush();
      const r = this.rejected.get(e.id);
      if (r) return r;
      if (this.sent.includes(e)) break;
      await sleep(100);
    }
    if (this.pb === pb) this.pb = null;
    return null;
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
      this.failing = false;
    } catch (err) {
      this.failing = true;
      console.warn("player events not sent; the same batch goes again next time:", err.message);
    } finally { this.sending = false; }
  },
  async post(batch, keepalive) {
    const res = await api("/v1/me/player/events", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ events: batch }), keepalive,
    });
    for (const r of res.rejected || []) {
      this.rejected.set(r.id, r);
      if (this.rejected.size > 100) this.rejected.delete(this.rejected.keys().next().value);
    }
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
// (hlsConfig: what the next hls.js instance starts with; the tests shrink its buffer.)
window.__tonearm = { hls: null, audio, events: reporter, levelHistory: [], queue: Q, hlsConfig: HLS_CONFIG };

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
  if (player.ad) {  // ads cannot be seeked
    if (Math.abs(audio.currentTime - player.ad.maxTime) > 1) audio.currentTime = player.ad.maxTime;
    return;
  }
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
audio.addEventListener("ended", trackEnded);
setInterval(() => reporter.flush(), 10000);
window.addEventListener("pagehide", () => { save(); reporter.pagehide(); });

// Logging out: the open listening is closed and reported, and the bar is hidden (the queue stays
// in localStorage for the next log-in of the same listener).
export async function stopPlayback() {
  save();
  player.seq++; endAd();
  reporter.finish("pause"); stopHls(); audio.pause(); player.loaded = false; bar.hidden = true;
  await reporter.flush();
}

// The bar ------------------------------------------------------------------------------------------
const el = (id) => $("#np-" + id);
function status(text) { el("status").textContent = text; el("status").hidden = !text; }
function showTrack(t) {
  if (!t) return;
  bar.hidden = false;
  const title = el("title");
  title.textContent = t.name || "…";
  if (t.album?.id) title.setAttribute("href", "#/album/" + encodeURIComponent(t.album.id)); else title.removeAttribute("href");
  const artist = el("artist");
  artist.textContent = "";
  (t.artists || []).forEach((a, k) => {
    if (k) artist.append(", ");
    const link = document.createElement("a");
    link.href = "#/artist/" + encodeURIComponent(a.id); link.textContent = a.name;
    artist.append(link);
  });
  const art = img(t.album?.images, 64);
  if (art) el("art").src = art; else el("art").removeAttribute("src");
  el("total").textContent = fmt(t.duration_ms);
  mediaSession(t);
}
// Icons: inline SVG (Material Design paths), as symbol fonts are not everywhere and fonts are not fetched.
const R = "M7 7h10v3l4-4-4-4v3H5v6h2V7zm10 10H7v-3l-4 4 4 4v-3h12v-6h-2v4z";
const ICONS = {
  play: "M8 5v14l11-7z", pause: "M6 19h4V5H6v14zm8-14v14h4V5h-4z",
  prev: "M6 6h2v12H6zm3.5 6l8.5 6V6z", next: "M6 18l8.5-6L6 6v12zM16 6v12h2V6h-2z",
  shuffle: "M10.59 9.17L5.41 4 4 5.41l5.17 5.17 1.42-1.41zM14.5 4l2.04 2.04L4 18.59 5.41 20 17.96 7.46 20 9.5V4h-5.5zm.33 9.41l-1.41 1.41 3.13 3.13L14.5 20H20v-5.5l-2.04 2.04-3.13-3.13z",
  repeat: R, repeat1: R + "m-4-2V9h-1l-2 1v1h1.5v4H13z",
  vol: "M3 9v6h4l5 5V4L7 9H3zm13.5 3c0-1.77-1.02-3.29-2.5-4.03v8.05c1.48-.73 2.5-2.25 2.5-4.02zM14 3.23v2.06c2.89.86 5 3.54 5 6.71s-2.11 5.85-5 6.71v2.06c4.01-.91 7-4.49 7-8.77s-2.99-7.86-7-8.77z",
  mute: "M3 9v6h4l5 5V4L7 9H3zm13.59 3L19 9.41 17.59 8 15.17 10.41 12.76 8l-1.42 1.41L13.76 12l-2.42 2.41 1.42 1.42 2.41-2.42 2.42 2.42L19 14.41z",
  queue: "M15 6H3v2h12V6zm0 4H3v2h12v-2zM3 16h8v-2H3v2zM17 6v8.18c-.31-.11-.65-.18-1-.18-1.66 0-3 1.34-3 3s1.34 3 3 3 3-1.34 3-3V8h3V6h-5z",
};
function icon(id, name) {
  const b = el(id);
  if (b.dataset.icon !== name) { b.dataset.icon = name; b.innerHTML = `<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true" focusable="false"><path fill="currentColor" d="${ICONS[name]}"/></svg>`; }
}
for (const [id, name] of [["prev", "prev"], ["next", "next"], ["shuffle", "shuffle"], ["queue-btn", "queue"]]) icon(id, name);
const REPEAT = { off: ["Repeat: off", "repeat"], all: ["Repeat: all", "repeat"], one: ["Repeat: one", "repeat1"] };
function renderBar() {
  const ad = !!player.ad, playing = !audio.paused && player.loaded;
  icon("play", playing ? "pause" : "play");
  el("play").setAttribute("aria-label", playing ? "Pause" : "Play");
  el("shuffle").setAttribute("aria-pressed", String(Q.shuffle));
  el("repeat").setAttribute("aria-label", REPEAT[Q.repeat][0]);
  icon("repeat", REPEAT[Q.repeat][1]);
  el("repeat").dataset.state = Q.repeat;
  el("repeat").setAttribute("aria-pressed", String(Q.repeat !== "off"));
  for (const id of ["prev", "next", "seek"]) el(id).disabled = ad;
  el("mute").setAttribute("aria-pressed", String(audio.muted));
  icon("mute", audio.muted || !volume ? "mute" : "vol");
  el("mute").setAttribute("aria-label", audio.muted ? "Unmute" : "Mute");
}
function renderTime() {
  const d = isFinite(audio.duration) && audio.duration > 0 ? audio.duration : (current()?.duration_ms || 0) / 1000;
  const t = player.loaded ? audio.currentTime : Q.position;
  const seek = el("seek");
  seek.max = String(d || 0);
  if (!seek.dragging) { seek.value = String(t); el("elapsed").textContent = fmt(t * 1000); }
  el("total").textContent = fmt(d * 1000);
  let buffered = 0;
  for (let i = 0; i < audio.buffered.length; i++) if (audio.buffered.start(i) <= t + 0.5) buffered = Math.max(buffered, audio.buffered.end(i));
  el("buffered").style.width = d ? `${Math.min(100, (100 * buffered) / d)}%` : "0";
}
let lastSave = 0;
audio.addEventListener("timeupdate", () => {
  renderTime();
  if (player.ad) { player.ad.maxTime = Math.max(player.ad.maxTime, audio.currentTime); adTick(); return; }
  if (Date.now() - lastSave > 5000) { lastSave = Date.now(); save(); }
  if (isFinite(audio.duration) && audio.duration - audio.currentTime < 10) prefetchNext();
  if ("mediaSession" in navigator && isFinite(audio.duration) && audio.duration > 0) {
    try { navigator.mediaSession.setPositionState({ duration: audio.duration, position: Math.min(audio.currentTime, audio.duration), playbackRate: audio.playbackRate || 1 }); } catch { /* not supported */ }
  }
});
for (const ev of ["play", "pause", "playing", "emptied", "volumechange"]) audio.addEventListener(ev, renderBar);
audio.addEventListener("progress", renderTime);
audio.addEventListener("durationchange", renderTime);
audio.addEventListener("pause", save);

// Volume: the listener's (persisted) times the grant's loudness-normalisation gain.
try { const v = JSON.parse(localStorage.getItem("tonearm.volume") || "null"); if (v) { volume = Math.min(1, Math.max(0, +v.volume)); audio.muted = !!v.muted; } } catch { /* default */ }
if (!Number.isFinite(volume)) volume = 1;
function applyVolume() {
  audio.volume = Math.min(1, Math.max(0, volume * player.gain));
  el("volume").value = String(volume);
  try { localStorage.setItem("tonearm.volume", JSON.stringify({ volume, muted: audio.muted })); } catch { /* ignore */ }
  renderBar();
}
export function setVolume(v) { volume = Math.min(1, Math.max(0, v)); if (volume > 0) audio.muted = false; applyVolume(); }
function toggleMute() { audio.muted = !audio.muted; applyVolume(); }
function seekBy(s) {
  if (!player.loaded || player.ad) return;
  audio.currentTime = Math.max(0, Math.min((audio.duration || 0) - 0.1, audio.currentTime + s));
}

el("play").addEventListener("click", togglePlay);
el("next").addEventListener("click", next);
el("prev").addEventListener("click", previous);
el("shuffle").addEventListener("click", () => setShuffle(!Q.shuffle));
el("repeat").addEventListener("click", cycleRepeat);
el("mute").addEventListener("click", toggleMute);
el("volume").addEventListener("input", (e) => setVolume(+e.target.value));
el("queue-btn").addEventListener("click", () => { location.hash = location.hash === "#/queue" ? (sessionStorage.getItem("tonearm.before-queue") || "#/") : "#/queue"; });
el("keys").addEventListener("click", shortcuts);
const seek = el("seek");
seek.addEventListener("input", () => { seek.dragging = true; el("elapsed").textContent = fmt(+seek.value * 1000); });
seek.addEventListener("change", () => {
  seek.dragging = false;
  if (player.ad) return;
  if (player.loaded) audio.currentTime = +seek.value;
  else { Q.position = +seek.value; save(); }
});
applyVolume();

// Keyboard shortcuts (not while typing) ------------------------------------------------------------
const KEYS = [
  ["Space", "Play / pause"], ["← / →", "Seek 5 s back / forward"], ["Shift + ← / →", "Previous / next track"],
  ["↑ / ↓", "Volume up / down"], ["M", "Mute"], ["S", "Shuffle"], ["R", "Repeat: off, all, one"],
  ["N", "Next track"], ["/", "Search"], ["?", "This list"],
];
let keysDialog = null;
function shortcuts() {
  if (!keysDialog) {
    keysDialog = document.createElement("dialog");
    keysDialog.id = "shortcuts";
    keysDialog.setAttribute("aria-label", "Keyboard shortcuts");
    keysDialog.innerHTML = `<h2>Keyboard shortcuts</h2><dl>${KEYS.map(([k, d]) => `<dt><kbd>${esc(k)}</kbd></dt><dd>${esc(d)}</dd>`).join("")}</dl>
      <button class="close">Close</button>`;
    keysDialog.querySelector(".close").addEventListener("click", () => keysDialog.close());
    document.body.append(keysDialog);
  }
  if (!keysDialog.open) keysDialog.showModal();
}
const TYPING = /^(text|search|email|password|number|tel|url|date|datetime-local|month|time|week)$/;
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
  if (t.isContentEditable || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || (t.tagName === "INPUT" && TYPING.test(t.type))) return;
  if (document.querySelector("dialog[open]") && e.key !== "?") return;
  const onControl = t.closest?.("button, a, summary, [role=menuitem]"), onRange = t.tagName === "INPUT";
  const k = e.key;
  let done = true;
  if (k === " " && !onControl) togglePlay();
  else if (k === "ArrowLeft" && e.shiftKey) previous();
  else if (k === "ArrowRight" && e.shiftKey) next();
  else if (k === "ArrowLeft" && !onRange) seekBy(-5);
  else if (k === "ArrowRight" && !onRange) seekBy(5);
  else if (k === "ArrowUp" && !onRange) setVolume(volume + 0.05);
  else if (k === "ArrowDown" && !onRange) setVolume(volume - 0.05);
  else if (k === "m" || k === "M") toggleMute();
  else if (k === "s" || k === "S") setShuffle(!Q.shuffle);
  else if (k === "r" || k === "R") cycleRepeat();
  else if (k === "n" || k === "N") next();
  else if (k === "/") $("#search")?.focus();
  else if (k === "?") shortcuts();
  else done = false;
  if (done) e.preventDefault();
});

// Media Session: OS media keys, the lock screen, headphones -------------------------------------
function mediaSession(t) {
  if (!("mediaSession" in navigator) || !window.MediaMetadata) return;
  navigator.mediaSession.metadata = new MediaMetadata({
    title: t.name || "", artist: names(t.artists), album: t.album?.name || "",
    artwork: (t.album?.images || []).map((i) => ({ src: new URL(i.url, location.href).href, sizes: `${i.width}x${i.height}` })),
  });
}
if ("mediaSession" in navigator) {
  const handlers = {
    play: () => (player.loaded ? audio.play().catch(() => {}) : togglePlay()), pause: () => audio.pause(),
    previoustrack: previous, nexttrack: next,
    seekto: (d) => { if (player.loaded && !player.ad) audio.currentTime = d.seekTime; },
    seekbackward: (d) => seekBy(-(d.seekOffset || 5)), seekforward: (d) => seekBy(d.seekOffset || 5),
  };
  for (const [action, fn] of Object.entries(handlers)) { try { navigator.mediaSession.setActionHandler(action, fn); } catch { /* unsupported action */ } }
}

// The queue page (#/queue) ---------------------------------------------------------------------------
function queueRow(t, i, now) {
  const who = esc(names(t.artists)), name = esc(t.name || "…");
  return `<li class="q-item${now ? " now" : ""}" data-i="${i}"${now ? "" : ' draggable="true"'}>
    ${t.album?.images?.length ? `<img src="${esc(img(t.album.images, 64))}" alt="">` : '<span class="q-art"></span>'}<button class="q-play" aria-label="Play ${name}"><span class="t">${name}</span><span class="muted">${who}</span></button>
    <span class="muted">${fmt(t.duration_ms)}</span>${now ? "" : `<span class="q-actions"><button class="icon up" aria-label="Move ${name} up">↑</button><button class="icon down" aria-label="Move ${name} down">↓</button><button class="icon remove" aria-label="Remove ${name} from queue">✕</button></span>`}</li>`;
}
function renderQueue() {
  const cur = current(), rest = Q.list.slice(Q.index + 1);
  view.innerHTML = `<h1>Queue</h1>
    <h2>Now playing</h2>${cur ? `<ul class="queue" id="q-now">${queueRow(cur, Q.index, true)}</ul>` : `<p class="muted">Nothing is playing.</p>`}
    <h2>Next up ${rest.length ? `<button id="q-clear" class="small">Clear queue</button>` : ""}</h2>
    ${rest.length ? `<ul class="queue" id="q-next">${rest.map((t, k) => queueRow(t, Q.index + 1 + k, false)).join("")}</ul>` : `<p class="muted">Nothing next: add tracks with “Add to queue”.</p>`}`;
  $("#q-clear")?.addEventListener("click", clearNext);
  view.querySelectorAll(".q-item").forEach((li) => {
    const i = +li.dataset.i;
    li.querySelector(".q-play").addEventListener("click", () => { if (i !== Q.index || !player.loaded) startItem(i); });
    if (i === Q.index) return;
    li.querySelector(".up").addEventListener("click", () => { if (i - 1 > Q.index) { move(i, i - 1); focusRow(i - 1, ".up"); } });
    li.querySelector(".down").addEventListener("click", () => { if (i + 1 < Q.list.length) { move(i, i + 1); focusRow(i + 1, ".down"); } });
    li.querySelector(".remove").addEventListener("click", () => removeAt(i));
    li.addEventListener("dragstart", (e) => { e.dataTransfer.setData("text/plain", String(i)); li.classList.add("dragging"); });
    li.addEventListener("dragend", () => li.classList.remove("dragging"));
    li.addEventListener("dragover", (e) => e.preventDefault());
    li.addEventListener("drop", (e) => {
      e.preventDefault();
      const from = Number(e.dataTransfer.getData("text/plain"));
      if (Number.isInteger(from) && from > Q.index) move(from, i);  // dropped on a row: take its place
    });
  });
}
async function fillAlbums() {
  // An album's tracks come without their album: one request fills in the covers shown here.
  const ids = [...new Set(Q.list.filter((t) => !t.album && !t.tried).map((t) => t.id))].slice(0, 50);
  if (!ids.length) return;
  Q.list.forEach((t) => { if (ids.includes(t.id)) t.tried = true; });
  const got = await api("/v1/tracks?ids=" + ids.join(",")).catch(() => null);
  const byId = new Map((got?.tracks || []).filter(Boolean).map((t) => [t.id, t]));
  let any = false;
  Q.list.forEach((t) => { const full = byId.get(t.id); if (full && !t.album) { Object.assign(t, slim(full), { uid: t.uid }); any = true; } });
  if (any) { save(); if (location.hash.startsWith("#/queue")) renderQueue(); }
}
function focusRow(i, sel) { view.querySelector(`.q-item[data-i="${i}"] ${sel}`)?.focus(); }
routes.queue = async () => { renderQueue(); fillAlbums(); };
bus.addEventListener("queue", () => { if (location.hash.startsWith("#/queue")) renderQueue(); });
window.addEventListener("hashchange", () => { if (!location.hash.startsWith("#/queue")) sessionStorage.setItem("tonearm.before-queue", location.hash || "#/"); });

// The session: restore the queue (without playing) once the listener is known; hide on log-out.
let owner;
bus.addEventListener("auth", (e) => {
  const me = e.detail;
  if (!me) { if (!player.loaded) bar.hidden = true; return; }
  if (owner !== undefined && owner !== me.id) { stopPlayback(); Q.list = []; Q.index = -1; Q.original = null; }
  owner = me.id;
  if (!Q.list.length) restore(); else if (!player.loaded) showTrack(current());
});
