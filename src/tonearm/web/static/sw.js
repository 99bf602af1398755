// Tonearm's Service Worker: lets the installed app start without a network (downloaded tracks then
// play from IndexedDB, see offline.js). Served at /sw.js so that its scope is the whole app.
//
// Only the app shell goes through it: "/" and /static/* (plus the manifest), network first with
// the cache as the fallback, so a new deploy is used at once and development never sees stale
// files. API calls, images, streams, HLS segments and encrypted downloads never touch the cache;
// where the browser supports static routing they do not even wake the worker.
const VERSION = "v1";
const CACHE = `tonearm-shell-${VERSION}`;
// What index.html does not name (its <link> and <script> URLs are added from it at install).
const EXTRA = [
  "/",
  "/manifest.webmanifest",
  "/static/icon.svg",
  "/static/icon-192.png",
  "/static/icon-512.png",
  "/static/icon-maskable-512.png",
  "/static/apple-touch-icon.png",
];

function isShell(url) {
  return url.origin === self.location.origin &&
    (url.pathname === "/" || url.pathname === "/index.html" || url.pathname === "/manifest.webmanifest" || url.pathname.startsWith("/static/"));
}

self.addEventListener("install", (event) => {
  if (event.addRoutes) {
    // Static routing (Chromium): everything but the shell goes straight to the network.
    try {
      Promise.resolve(event.addRoutes([
        { condition: { urlPattern: new URLPattern({ pathname: "/" }) }, source: "fetch-event" },
        { condition: { urlPattern: new URLPattern({ pathname: "/static/*" }) }, source: "fetch-event" },
        { condition: { urlPattern: new URLPattern({ pathname: "/manifest.webmanifest" }) }, source: "fetch-event" },
        { condition: { urlPattern: new URLPattern({ pathname: "/*" }) }, source: "network" },
      ])).catch(() => {});
    } catch (err) { /* an older implementation: the fetch handler below sorts requests instead */ }
  }
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const urls = new Set(EXTRA);
    try {
      // The shell's stylesheets, modules and scripts, as the current index.html lists them.
      const html = await (await fetch("/", { cache: "no-cache" })).text();
      for (const m of html.matchAll(/(?:href|src)="(\/static\/[^"?#]+)"/g)) urls.add(m[1]);
    } catch (err) { /* offline while installing: the fixed list still goes in */ }
    // One missing file (e.g. no vendored hls.js in a bare checkout) must not fail the install.
    await Promise.allSettled([...urls].map((u) => cache.add(new Request(u, { cache: "no-cache" }))));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith("tonearm-shell-") && n !== CACHE).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

async function networkFirst(event) {
  const request = event.request;
  const cache = await caches.open(CACHE);
  try {
    // Revalidated with the server every time (a 304 costs no body), never a stale HTTP-cache copy.
    // (A navigation to "/" is no-cache anyway, and a navigate-mode request cannot be re-made.)
    const response = await fetch(request.mode === "navigate" ? request : new Request(request, { cache: "no-cache" }));
    if (response.ok && response.type === "basic") {
      // Kept for offline starts; written again only when it changed (hls.js alone is ~600 KB).
      event.waitUntil((async () => {
        const kept = await cache.match(request);
        const etag = response.headers.get("etag");
        if (!kept || !etag || kept.headers.get("etag") !== etag) await cache.put(request, response.clone());
      })().catch(() => {}));
    }
    return response;
  } catch (err) {
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return hit;
    // Starting offline at any app URL: the shell ("/" with its hash routes) still opens.
    if (request.mode === "navigate") {
      const shell = await cache.match("/");
      if (shell) return shell;
    }
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!isShell(url) || request.headers.has("range")) return;  // API, media, images: the network alone
  event.respondWith(networkFirst(event));
});
