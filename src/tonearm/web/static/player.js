// The player: a playback grant, then its HLS master through hls.js (adaptive AAC 96/160/320), natively
// where the browser plays HLS itself, else the best progressive rendition it can decode; and the
// player-events reporter. hls.js is vendored from npm and loaded as a classic script (window.Hls).
import { $, api, state, img } from "./core.js";

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

export async function play(trackId) {
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

// Logging out: the open listening is closed and reported, and the bar is hidden.
export async function stopPlayback() {
  reporter.finish("pause"); stopHls(); audio.pause(); $("#player").hidden = true;
  await reporter.flush();
}

// The queue (stub: the player work replaces it). playTracks plays `tracks` (track objects) from
// `index` on; enqueue adds after the current track (next) or at the end.
const queue = { tracks: [], index: -1 };
export async function playTracks(tracks, index = 0) {
  queue.tracks = tracks.slice(); queue.index = index;
  await play(tracks[index].id);
}
export function enqueue(tracks, { next = false } = {}) {
  queue.tracks.splice(next ? queue.index + 1 : queue.tracks.length, 0, ...tracks);
}
