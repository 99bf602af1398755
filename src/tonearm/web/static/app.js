// Tonearm's web app: the shell (navigation and the hash router) that the page modules plug into.
// Plain ES2020 modules, no build step; hls.js is vendored from npm.
import { $, view, state, esc, routes, bus, loadMe, logoutLocal, toast, nav } from "./core.js";
import { stopPlayback } from "./player.js";
import "./pages.js";
import "./account.js";
import "./offline.js";

function renderNav() {
  const me = state.me;
  $("#nav").innerHTML = me
    ? `<a href="#/">Home</a><a href="#/library">Library</a><a href="#/history">History</a><a href="#/upload">Upload</a>
       <a href="#/account" class="badge" aria-label="Account: ${esc(me.display_name)}, ${esc(me.product)} plan">${esc(me.product)}</a>
       <button id="logout">Log out</button>`
    : `<a href="#/login">Log in</a><a href="#/signup">Sign up</a>`;
  $("#logout")?.addEventListener("click", async () => {
    await stopPlayback();
    await fetch("/api/token/revoke", { method: "POST", body: new URLSearchParams({ token: state.refresh || "" }) }).catch(() => {});
    logoutLocal(); bus.dispatchEvent(new CustomEvent("auth", { detail: null }));
    location.hash = "#/login";
  });
}
bus.addEventListener("auth", renderNav);

async function route() {
  const [, page = "", ...rest] = location.hash.split("/");
  const arg = rest.length ? decodeURIComponent(rest[0]) : undefined;
  const show = routes[page] || routes[""];
  const mine = ++nav.seq;
  try {
    await show(arg, rest.map(decodeURIComponent));
  } catch (err) {
    if (mine === nav.seq) view.innerHTML = `<p class="error">${esc(err.message)}</p>`;
  }
  if (mine !== nav.seq) return;
  // Keyboard and screen-reader users land on the new page's heading.
  if (page !== "search") $("h1", view)?.setAttribute("tabindex", "-1");
}
window.addEventListener("hashchange", route);
window.addEventListener("online", () => toast("Back online."));
window.addEventListener("offline", () => toast("You are offline: downloaded tracks still play.", "error"));
loadMe().then(route);
