// Account (plan, checkout with the sandbox gateway, Duo/Family invitations, devices, invoices,
// password, data export), apps & API keys (Subsonic apps, scrobblers), history and yearly stats with hand-made SVG charts, and profiles.
import { $, $$, view, state, esc, img, api, token, logoutLocal, routes, loadMe, needLogin, toast, nav } from "./core.js";
import { trackTable, wireTracks } from "./tracks.js";
import { openShare } from "./share.js";

// Helpers ------------------------------------------------------------------------------------------
// An API error in plain words: the server's message without its "field: " prefix, capitalised.
export function plain(err) {
  if (err?.status === 0) return err.message;
  if (err?.status === 503) return "The payment service did not answer; nothing was charged twice. Please try again.";
  let msg = String(err?.message || "Something went wrong; please try again.").replace(/^[a-z_/]+: /, "");
  msg = msg.charAt(0).toUpperCase() + msg.slice(1);
  return /[.!?]$/.test(msg) ? msg : msg + ".";
}
const day = (iso) => (iso ? new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }) : "");
const when = (iso) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" }) : "never");
const initials = (name) => String(name || "?").trim().split(/\s+/).slice(0, 2).map((w) => w[0] || "").join("").toUpperCase() || "?";
const optional = (p) => p.catch((err) => (err.status === 404 ? null : Promise.reject(err)));

// A modal yes/no question; resolves true when confirmed.
export function confirmDialog(message, okLabel = "Confirm") {
  return new Promise((resolve) => {
    const before = document.activeElement;
    const dlg = document.createElement("dialog");
    dlg.className = "confirm";
    dlg.setAttribute("aria-label", "Confirm");
    dlg.innerHTML = `<p></p><div class="buttons"><button class="cancel" type="button">Cancel</button> <button class="primary ok" type="button"></button></div>`;
    dlg.querySelector("p").textContent = message;
    dlg.querySelector(".ok").textContent = okLabel;
    let answer = false;
    dlg.querySelector(".ok").addEventListener("click", () => { answer = true; dlg.close(); });
    dlg.querySelector(".cancel").addEventListener("click", () => dlg.close());
    dlg.addEventListener("close", () => { dlg.remove(); before?.focus?.(); resolve(answer); });
    document.body.appendChild(dlg);
    dlg.showModal();
    dlg.querySelector(".cancel").focus();
  });
}

// A read-only field with a Copy button (navigator.clipboard, else the text is selected).
export function copyField(label, value, cls = "") {
  return `<div class="copyfield ${esc(cls)}"><label>${esc(label)}<input readonly value="${esc(value)}" spellcheck="false"></label>
    <button type="button" class="copy" aria-label="Copy ${esc(label.toLowerCase())}">Copy</button></div>`;
}
export async function copyFrom(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    toast("Copied.");
  } catch {
    input.focus(); input.select();
    let done = false;
    try { done = document.execCommand("copy"); } catch { done = false; }
    toast(done ? "Copied." : "Selected: press Ctrl+C (⌘C) to copy.");
  }
}
export function wireCopy(root) {
  $$(".copyfield", root).forEach((f) => f.querySelector(".copy").addEventListener("click", () => copyFrom(f.querySelector("input"))));
}

// Account ------------------------------------------------------------------------------------------
// The sandbox gateway's test cards (adapters/payments/sandbox.py).
const TEST_CARDS = [
  ["4242 4242 4242 4242", "Visa: every payment succeeds"],
  ["5555 5555 5555 4444", "Mastercard: every payment succeeds"],
  ["4000 0000 0000 0002", "Declined (card declined)"],
  ["4000 0000 0000 9995", "Declined (insufficient funds)"],
  ["4000 0000 0000 0119", "A processing error, then success: payments alternate"],
];

function qualityText(q) {
  return q.lossless ? `Up to ${q.max_kbps} kbps, and lossless originals` : `Up to ${q.max_kbps} kbps`;
}
function includesHtml(ent) {
  if (!ent) return "";
  const skips = ent.skips.limit === null ? "Unlimited skips"
    : `${ent.skips.remaining} of ${ent.skips.limit} skips left this hour${ent.skips.next_skip_at ? ` (the next comes back at ${new Date(ent.skips.next_skip_at).toLocaleTimeString()})` : ""}`;
  const ads = ent.ads === null ? "No ads"
    : `An audio ad every ${ent.ads.every_tracks} tracks (${ent.ads.tracks_until_next_ad} ${ent.ads.tracks_until_next_ad === 1 ? "track" : "tracks"} before the next)`;
  const offline = ent.offline.allowed ? `Offline downloads on up to ${ent.offline.max_devices} devices` : "No offline downloads";
  return `<ul class="includes" aria-label="What your plan includes">
    <li data-k="skips">${esc(skips)}</li><li data-k="ads">${esc(ads)}</li>
    <li data-k="quality">${esc(qualityText(ent.quality))}</li><li data-k="offline">${esc(offline)}</li></ul>`;
}

function planHtml(sub, ent) {
  if (!sub) {
    return `<p class="plan-name"><strong>${esc(ent?.plan?.name || "Free")}</strong></p>${includesHtml(ent)}`;
  }
  const manager = sub.role === "manager";
  const status = {
    active: sub.cancel_at_period_end ? `Cancelled: Premium until ${day(sub.current_period_end)}` : `Renews on ${day(sub.current_period_end)}`,
    past_due: `Your last payment failed; Premium continues until ${day(sub.grace_until)}. Give another card below.`,
    incomplete: "Your first payment is being processed.",
  }[sub.status] || sub.status;
  return `<p class="plan-name"><strong>${esc(sub.plan.name)}</strong> · ${esc(sub.plan.price.display)} a ${esc(sub.plan.interval)}</p>
    <p class="plan-status">${esc(status)}</p>
    ${sub.pending_plan ? `<p>Changes to ${esc(sub.pending_plan.name)} at the next renewal (${esc(day(sub.current_period_end))}).</p>` : ""}
    ${sub.card ? `<p class="muted">Paid with ${esc(sub.card.brand)} ending ${esc(sub.card.last4)}</p>` : ""}
    ${manager ? "" : `<p class="muted">You are a member of this plan; its manager pays for it.</p>`}
    ${includesHtml(ent)}
    <div class="buttons">${manager && sub.status !== "incomplete"
      ? sub.cancel_at_period_end ? `<button type="button" id="resume" class="primary">Resume subscription</button>`
        : `<button type="button" id="cancel-sub">Cancel subscription</button>`
      : ""}${manager ? "" : `<button type="button" id="leave-plan">Leave this plan</button>`}</div>`;
}

function plansHtml(plans, sub) {
  const manager = sub?.role === "manager";
  return `<div class="plans">${plans.map((p) => {
    const current = sub ? sub.plan.id === p.id : p.price.amount_minor === 0;
    let action = "";
    if (current) action = `<span class="badge current">Current plan</span>`;
    else if (p.price.amount_minor === 0) action = "";
    else if (!sub) action = `<button type="button" class="primary choose" data-plan="${esc(p.id)}">Choose ${esc(p.name)}</button>`;
    else if (manager && sub.pending_plan?.id !== p.id) action = `<button type="button" class="switch" data-plan="${esc(p.id)}">Switch to ${esc(p.name)}</button>`;
    return `<article class="plan-card${current ? " is-current" : ""}" data-plan="${esc(p.id)}" aria-label="${esc(p.name)}">
      <h3>${esc(p.name)}</h3><p class="price">${esc(p.price.display)}${p.price.amount_minor ? ` <span class="muted">a ${esc(p.interval)}</span>` : ""}</p>
      <p class="muted">${p.max_members > 1 ? `${p.max_members} accounts` : "1 account"}</p>
      <ul>${p.features.length ? p.features.map((f) => `<li>${esc(f.name)}</li>`).join("") : "<li>Ads, 6 skips an hour, 160 kbps</li>"}</ul>${action}</article>`;
  }).join("")}</div>`;
}

function checkoutHtml(plan) {
  return `<section class="acct" id="checkout" aria-labelledby="checkout-h"><h2 id="checkout-h">Pay for ${esc(plan.name)}</h2>
    <p>${esc(plan.price.display)} now, then every ${esc(plan.interval)} until you cancel.</p>
    <form class="stack card-form" novalidate>
      <label>Card number<input name="number" inputmode="numeric" autocomplete="cc-number" required placeholder="4242 4242 4242 4242"></label>
      <div class="row2"><label>Expiry (MM/YY)<input name="exp" autocomplete="cc-exp" required placeholder="12/30"></label>
      <label>CVC<input name="cvc" inputmode="numeric" autocomplete="cc-csc" required maxlength="4" placeholder="123"></label></div>
      <div class="buttons"><button class="primary pay">Pay ${esc(plan.price.display)}</button> <button type="button" class="back">Cancel</button></div>
      <p class="error" role="alert" id="checkout-error"></p></form>
    <details class="test-cards" open><summary>Test cards (sandbox: no money moves)</summary>
      <p class="muted">Any future expiry date and any 3-digit CVC.</p>
      <table><caption class="visually-hidden">Sandbox test cards</caption><tbody>${TEST_CARDS.map(([n, what]) => `<tr><td><code>${esc(n)}</code></td><td>${esc(what)}</td>
      <td><button type="button" class="use-card" data-number="${esc(n)}" aria-label="Use card ${esc(n)}">Use</button></td></tr>`).join("")}</tbody></table></details></section>`;
}

function parseExpiry(s) {
  const m = /^\s*(\d{1,2})\s*[/-]\s*(\d{2}|\d{4})\s*$/.exec(s || "");
  if (!m) return null;
  const month = Number(m[1]), year = Number(m[2].length === 2 ? "20" + m[2] : m[2]);
  return month >= 1 && month <= 12 ? { exp_month: month, exp_year: year } : null;
}

const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2));
function wireCheckout(section, plan, after) {
  const form = $("form", section), err = $("#checkout-error", section);
  let key = null;
  $$(".use-card", section).forEach((b) => b.addEventListener("click", () => {
    form.number.value = b.dataset.number;
    if (!form.exp.value) { const d = new Date(); form.exp.value = `12/${String((d.getFullYear() + 3) % 100).padStart(2, "0")}`; }
    if (!form.cvc.value) form.cvc.value = "123";
    form.number.focus();
  }));
  $(".back", section).addEventListener("click", () => { section.remove(); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    err.textContent = "";
    const exp = parseExpiry(form.exp.value);
    if (!form.number.value.trim()) { err.textContent = "Enter the card number."; form.number.focus(); return; }
    if (!exp) { err.textContent = "Enter the expiry date as MM/YY, e.g. 12/30."; form.exp.focus(); return; }
    if (!/^\d{3,4}$/.test(form.cvc.value.trim())) { err.textContent = "Enter the 3-digit security code (CVC) from the back of the card."; form.cvc.focus(); return; }
    const pay = $(".pay", section);
    pay.disabled = true; pay.textContent = "Paying…";
    try {
      const card = await api("/v1/billing/sandbox/cards", { method: "POST", json: { number: form.number.value, cvc: form.cvc.value.trim(), ...exp } });
      // One key per purchase: retrying after a timeout or a network failure sends the same key,
      // so the server answers the first outcome and never charges twice. A refusal starts afresh.
      key = key || newKey();
      try {
        await api("/v1/me/subscription", { method: "POST", json: { plan_id: plan.id, payment_token: card.token }, headers: { "Idempotency-Key": key } });
      } catch (error) {
        if (error.status !== 0 && error.status !== 503) key = null;
        throw error;
      }
      await loadMe();
      toast(`Welcome to ${plan.name}!`);
      await after();
    } catch (error) {
      err.textContent = error.status === 402 ? `${plain(error)} Nothing was charged; try another card.` : plain(error);
      pay.disabled = false; pay.textContent = `Pay ${plan.price.display}`;
    }
  });
}

function membersHtml(sub, invites, created) {
  if (!sub || sub.plan.max_members <= 1) return "";
  const manager = sub.role === "manager";
  const places = sub.plan.max_members - sub.members.length - (invites?.items.length || 0);
  return `<section class="acct" id="members" aria-labelledby="members-h"><h2 id="members-h">${esc(sub.plan.name)} members</h2>
    <ul class="members">${sub.members.map((m) => `<li data-id="${esc(m.id)}"><span class="avatar" aria-hidden="true">${esc(initials(m.display_name))}</span>
      <a href="#/user/${esc(m.id)}">${esc(m.display_name)}</a> <span class="muted">${m.role === "manager" ? "manager" : `joined ${esc(day(m.joined_at))}`}</span>
      ${manager && m.role !== "manager" ? `<button type="button" class="remove-member" aria-label="Remove ${esc(m.display_name)}">Remove</button>` : ""}</li>`).join("")}</ul>
    ${manager ? `<h3>Invitations</h3>
      ${invites?.items.length ? `<ul class="invites">${invites.items.map((i) => `<li data-id="${esc(i.id)}">${esc(i.email || "Link")} · expires ${esc(day(i.expires_at))}
        <button type="button" class="revoke" aria-label="Revoke the invitation ${esc(i.email || "link")} of ${esc(day(i.created_at))}">Revoke</button></li>`).join("")}</ul>` : `<p class="muted">No pending invitations.</p>`}
      ${created ? `<div id="invite-result"><p>Send this link to the person you invite (it is shown only now; it expires on ${esc(day(created.expires_at))}):</p>${copyField("Invitation link", created.url, "invite-link")}</div>` : ""}
      ${places > 0 ? `<form class="invite-form inline"><label>E-mail (optional: only that account may join)<input name="email" type="email" autocomplete="off"></label>
        <button class="primary">Create invitation link</button></form>` : `<p class="muted">Every place on your plan is taken or invited.</p>`}
      <p class="error" role="alert" id="invite-error"></p>` : ""}</section>`;
}

function devicesHtml(list) {
  return `<section class="acct" id="devices" aria-labelledby="devices-h"><h2 id="devices-h">Devices</h2>
    ${list.length ? `<ul class="devices">${list.map((d) => `<li data-id="${esc(d.id)}"><span class="dev-name">${esc(d.name)}</span>
      <span class="muted">${esc(d.kind)} · last seen ${esc(when(d.last_seen_at))} · ${d.downloads} ${d.downloads === 1 ? "download" : "downloads"}</span>
      <button type="button" class="rename" aria-label="Rename ${esc(d.name)}">Rename</button> <button type="button" class="remove-device" aria-label="Remove ${esc(d.name)}">Remove</button></li>`).join("")}</ul>`
      : `<p class="muted">No devices yet. A device is registered when you download music for offline listening.</p>`}
    <p class="error" role="alert" id="device-error"></p></section>`;
}

function invoicesHtml(page) {
  if (!page) return "";
  return `<section class="acct" id="invoices" aria-labelledby="invoices-h"><h2 id="invoices-h">Invoices</h2>
    ${page.items.length ? `<table class="invoices"><thead><tr><th scope="col">Number</th><th scope="col">Date</th><th scope="col">Description</th><th scope="col">Amount</th><th scope="col">Status</th></tr></thead>
    <tbody>${page.items.map((i) => `<tr data-id="${esc(i.id)}"><td><button type="button" class="link invoice" aria-expanded="false" aria-label="Invoice ${esc(i.number)} details">${esc(i.number)}</button></td>
      <td>${esc(day(i.created_at))}</td><td>${esc(i.description || "")}</td><td>${esc(i.amount)}</td><td><span class="badge status-${esc(i.status)}">${esc(i.status)}</span></td></tr>`).join("")}</tbody></table>`
      : `<p class="muted">No invoices yet.</p>`}</section>`;
}

function invoiceDetailHtml(i) {
  return `<td colspan="5"><div class="invoice-detail" aria-label="Invoice ${esc(i.number)}">
    <p>${esc(i.plan?.name || "")} · ${esc(day(i.period_start))} to ${esc(day(i.period_end))}${i.paid_at ? ` · paid ${esc(day(i.paid_at))}` : ""}</p>
    <table><tbody>${i.lines.map((l) => `<tr><td>${esc(l.description)}</td><td>${esc(l.amount)}</td></tr>`).join("")}
    <tr><th scope="row">Total</th><td>${esc(i.amount)}</td></tr></tbody></table>
    ${i.payments.length ? `<p class="muted">Payments: ${i.payments.map((p) => `${esc(p.status)}${p.failure_reason ? ` (${esc(p.failure_reason)})` : ""} on ${esc(when(p.created_at))}`).join("; ")}</p>` : ""}</div></td>`;
}

const privacyHtml = `<section class="acct" id="password" aria-labelledby="password-h"><h2 id="password-h">Change password</h2>
  <form class="stack" id="password-form"><label>Current password<input name="current_password" type="password" autocomplete="current-password" required></label>
  <label>New password (8 characters or more)<input name="new_password" type="password" autocomplete="new-password" required minlength="8"></label>
  <button class="primary">Change password</button><p class="error" role="alert" id="password-error"></p></form></section>
  <section class="acct" id="export" aria-labelledby="export-h"><h2 id="export-h">Your data</h2>
  <p>Download a copy of everything Tonearm keeps about you (a ZIP of JSON files).</p>
  <button type="button" id="export-start">Request a copy of my data</button> <span id="export-status" role="status"></span></section>`;

let invitationShown = null;  // the link just created: shown until the page is left
async function account() {
  const at = nav.seq;
  if (needLogin()) return;
  const [sub, ent, plans, devices, invoices] = await Promise.all([
    optional(api("/v1/me/subscription")), api("/v1/me/entitlements").catch(() => null), api("/v1/plans"),
    api("/v1/me/devices").catch(() => ({ devices: [] })), api("/v1/me/invoices?limit=50").catch(() => null),
  ]);
  const invites = sub?.role === "manager" && sub.plan.max_members > 1 ? await api("/v1/me/subscription/invitations").catch(() => null) : null;
  const created = invitationShown; invitationShown = null;
  const me = state.me;
  if (at !== nav.seq) return;
  view.innerHTML = `<h1>Your account</h1>
    <p class="muted">${esc(me.display_name)} · ${esc(me.email)} · <a href="#/user/${esc(me.id)}">your profile</a> · <a href="#/history">history</a> · <a href="#/stats/${new Date().getFullYear()}">your year in music</a> · <a href="#/account/apps">apps &amp; API keys</a></p>
    <section class="acct" id="plan" aria-labelledby="plan-h"><h2 id="plan-h">Your plan</h2>${planHtml(sub, ent)}<p class="error" role="alert" id="plan-error"></p></section>
    <section class="acct" id="plans-section" aria-labelledby="plans-h"><h2 id="plans-h">Plans</h2>${plansHtml(plans.plans, sub)}</section>
    ${membersHtml(sub, invites, created)}${devicesHtml(devices.devices)}
    <section class="acct" id="apps-link" aria-labelledby="apps-link-h"><h2 id="apps-link-h">Other apps</h2>
    <p>Play your music in Subsonic apps (DSub, Symfonium, Feishin, substreamer…) and scrobble with ListenBrainz tools: <a href="#/account/apps">Apps &amp; API keys</a>.</p></section>${invoicesHtml(invoices)}${privacyHtml}`;
  wireAccount(sub, plans.plans);
}

function wireAccount(sub, plans) {
  const planError = $("#plan-error");
  const refresh = async () => { if (/^#\/account\/?$/.test(location.hash)) await account(); };
  const byId = (id) => plans.find((p) => p.id === id);
  const fail = (el) => (err) => { el.textContent = plain(err); };
  $$(".choose").forEach((b) => b.addEventListener("click", () => {
    $("#checkout")?.remove();
    const plan = byId(b.dataset.plan);
    $("#plans-section").insertAdjacentHTML("beforeend", checkoutHtml(plan));
    const section = $("#checkout");
    wireCheckout(section, plan, refresh);
    section.querySelector("input[name=number]").focus();
  }));
  $$(".switch").forEach((b) => b.addEventListener("click", async () => {
    const plan = byId(b.dataset.plan);
    const up = plan.price.amount_minor > sub.plan.price.amount_minor;
    const q = up ? `Switch to ${plan.name} now? The difference for the rest of this period (${sub.plan.name} credited) is charged to your card today.`
      : `Switch to ${plan.name}? It starts at your next renewal, on ${day(sub.current_period_end)}.`;
    if (!(await confirmDialog(q, `Switch to ${plan.name}`))) return;
    try {
      await api("/v1/me/subscription", { method: "PATCH", json: { plan_id: plan.id } });
      await loadMe(); toast(up ? `You have ${plan.name} now.` : `${plan.name} starts at your next renewal.`); await refresh();
    } catch (err) { planError.textContent = plain(err); }
  }));
  $("#cancel-sub")?.addEventListener("click", async () => {
    if (!(await confirmDialog(`Cancel ${sub.plan.name}? You keep Premium until ${day(sub.current_period_end)}, then go back to Free.`, "Cancel subscription"))) return;
    try { await api("/v1/me/subscription", { method: "DELETE" }); await loadMe(); toast("Subscription cancelled."); await refresh(); } catch (err) { planError.textContent = plain(err); }
  });
  $("#resume")?.addEventListener("click", async () => {
    try { await api("/v1/me/subscription", { method: "PATCH", json: { cancel_at_period_end: false } }); await loadMe(); toast("Your subscription goes on."); await refresh(); } catch (err) { planError.textContent = plain(err); }
  });
  $("#leave-plan")?.addEventListener("click", async () => {
    if (!(await confirmDialog(`Leave ${sub.plan.name}? You go back to Free at once.`, "Leave plan"))) return;
    try { await api("/v1/me/subscription/membership", { method: "DELETE" }); await loadMe(); toast("You left the plan."); await refresh(); } catch (err) { planError.textContent = plain(err); }
  });

  // Members and invitations
  const members = $("#members");
  if (members) {
    const err = $("#invite-error");
    wireCopy(members);
    $(".invite-form", members)?.addEventListener("submit", async (e) => {
      e.preventDefault();
      const email = e.target.email.value.trim();
      try {
        invitationShown = await api("/v1/me/subscription/invitations", { method: "POST", json: email ? { email } : {} });
        await refresh();
        $("#invite-result input")?.focus();
      } catch (error) { err.textContent = plain(error); }
    });
    $$(".revoke", members).forEach((b) => b.addEventListener("click", async () => {
      if (!(await confirmDialog("Revoke this invitation? Its link stops working.", "Revoke"))) return;
      try { await api("/v1/me/subscription/invitations/" + encodeURIComponent(b.closest("li").dataset.id), { method: "DELETE" }); await refresh(); } catch (error) { err.textContent = plain(error); }
    }));
    $$(".remove-member", members).forEach((b) => b.addEventListener("click", async () => {
      const name = b.closest("li").querySelector("a").textContent;
      if (!(await confirmDialog(`Remove ${name} from your plan? They go back to Free.`, "Remove"))) return;
      try { await api("/v1/me/subscription/members/" + encodeURIComponent(b.closest("li").dataset.id), { method: "DELETE" }); await refresh(); } catch (error) { err.textContent = plain(error); }
    }));
  }

  // Devices
  const devErr = $("#device-error");
  $$("#devices .rename").forEach((b) => b.addEventListener("click", () => {
    const li = b.closest("li"), name = li.querySelector(".dev-name").textContent;
    if ($("form", li)) return;
    li.insertAdjacentHTML("beforeend", `<form class="inline rename-form"><label>New name for ${esc(name)}<input name="name" required maxlength="100"></label>
      <button class="primary">Save</button> <button type="button" class="cancel">Cancel</button></form>`);
    const form = $("form", li);
    form.name.value = name; form.name.focus(); form.name.select();
    form.querySelector(".cancel").addEventListener("click", () => form.remove());
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("/v1/me/devices/" + encodeURIComponent(li.dataset.id), { method: "PATCH", json: { name: form.name.value.trim() } });
        toast("Device renamed."); await refresh();
      } catch (error) { devErr.textContent = plain(error); }
    });
  }));
  $$("#devices .remove-device").forEach((b) => b.addEventListener("click", async () => {
    const li = b.closest("li"), name = li.querySelector(".dev-name").textContent;
    if (!(await confirmDialog(`Remove ${name}? Its offline downloads stop playing.`, "Remove device"))) return;
    try { await api("/v1/me/devices/" + encodeURIComponent(li.dataset.id), { method: "DELETE" }); toast("Device removed."); await refresh(); } catch (error) { devErr.textContent = plain(error); }
  }));

  // Invoices: the number opens the lines and payments under the row.
  $$("#invoices .invoice").forEach((b) => b.addEventListener("click", async () => {
    const tr = b.closest("tr"), next = tr.nextElementSibling;
    if (next?.classList.contains("detail")) { next.remove(); b.setAttribute("aria-expanded", "false"); return; }
    try {
      const inv = await api("/v1/me/invoices/" + encodeURIComponent(tr.dataset.id));
      tr.insertAdjacentHTML("afterend", `<tr class="detail">${invoiceDetailHtml(inv)}</tr>`);
      b.setAttribute("aria-expanded", "true");
    } catch (error) { toast(plain(error), "error"); }
  }));

  // Password
  $("#password-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = e.target, err = $("#password-error");
    err.textContent = "";
    try {
      const fresh = f.new_password.value;
      await api("/v1/me/password", { method: "PUT", json: { current_password: f.current_password.value, new_password: fresh } });
      // The change signs every session out, this one too: sign in again with the new password.
      try { await token({ grant_type: "password", username: state.me.email, password: fresh }); } catch {
        logoutLocal(); await loadMe(); toast("Your password was changed; log in again with it.", "error"); location.hash = "#/login"; return;
      }
      f.reset(); toast("Your password was changed; your other devices are signed out.");
    } catch (error) { err.textContent = /^current_password/.test(error.message) || error.status === 403 ? "Your current password is not right." : plain(error); }
  });

  // Data export
  $("#export-start").addEventListener("click", async (e) => {
    const status = $("#export-status");
    e.target.disabled = true;
    try {
      let ex = await api("/v1/me/exports", { method: "POST" });
      const shown = () => $("#export-status") === status;
      while (ex.status === "pending" && shown()) {
        status.textContent = "Preparing your data…";
        await new Promise((r) => setTimeout(r, 1500));
        ex = await api("/v1/me/exports/" + encodeURIComponent(ex.id));
      }
      if (ex.status === "ready" && ex.download) {
        status.innerHTML = `Ready: <a href="${esc(ex.download.url)}" download>download your data</a>${ex.size_bytes ? ` (${Math.ceil(ex.size_bytes / 1024)} KB)` : ""}; the link works for 10 minutes.`;
      } else if (ex.status === "failed") {
        status.innerHTML = `<span class="error" role="alert">${esc(ex.error || "The export failed; please try again.")}</span>`;
      }
    } catch (error) { status.innerHTML = `<span class="error" role="alert">${esc(plain(error))}</span>`; }
    e.target.disabled = false;
  });
}

// Apps & API keys ----------------------------------------------------------------------------------
// Subsonic apps and ListenBrainz scrobblers cannot log in the way this web app does; they get an API
// key (shown once, revocable one by one) or, for apps that only ask for a username and a password,
// the account's app password (never the account password). See docs/subsonic.md.
let keyShown = null;  // the key just created: shown until the page is left (or the key revoked)
window.addEventListener("hashchange", () => { if (location.hash !== "#/account/apps") keyShown = null; });

function keysHtml(keys, created) {
  return `<section class="acct" id="api-keys" aria-labelledby="keys-h"><h2 id="keys-h">API keys</h2>
    <p>Apps that know API keys (most recent Subsonic apps, and every ListenBrainz scrobbler) need only the server address and a key.
    Make one key per app or device: revoking it then stops only that one.</p>
    ${created ? `<div id="new-key" class="new-secret" tabindex="-1" aria-labelledby="new-key-h"><h3 id="new-key-h">Your new key “${esc(created.name)}”</h3>
      <p><strong>Copy it now: it is shown only this once.</strong> Type it into the app with the server address above.</p>
      ${copyField("API key", created.key, "key-value")}</div>` : ""}
    <form class="inline" id="key-form"><label>Name of the new key (e.g. the app and device it is for)<input name="name" required maxlength="100" autocomplete="off" placeholder="Symfonium on my phone"></label>
      <button class="primary">Create API key</button></form>
    <p class="error" role="alert" id="key-error"></p>
    ${keys.length ? `<ul class="api-keys">${keys.map((k) => `<li data-id="${esc(k.id)}"><span class="key-name">${esc(k.name)}</span>
      <code class="key-prefix" aria-label="Starts with ${esc(k.prefix)}">${esc(k.prefix)}…</code>
      <span class="muted">created ${esc(day(k.created_at))} · last used ${esc(when(k.last_used_at))}</span>
      <button type="button" class="revoke-key" aria-label="Revoke the key ${esc(k.name)}">Revoke</button></li>`).join("")}</ul>`
      : `<p class="muted" id="no-keys">No API keys yet.</p>`}</section>`;
}

function appPasswordHtml(ap) {
  const has = !!ap.app_password;
  return `<section class="acct" id="app-password" aria-labelledby="app-password-h"><h2 id="app-password-h">App password</h2>
    <p>Some apps only ask for a username and a password. Give them your username and this app password, <strong>never your account password</strong>.
    There is one app password for all such apps; making a new one stops the old one working in every app that has it.</p>
    ${copyField("Username", ap.username, "app-username")}
    ${has ? `<div class="copyfield secret app-secret"><label>App password<input readonly type="password" value="${esc(ap.app_password)}" spellcheck="false" autocomplete="off"></label>
      <button type="button" class="reveal" aria-pressed="false">Show</button>
      <button type="button" class="copy" aria-label="Copy the app password">Copy</button></div>
      <p class="muted">Made on ${esc(day(ap.created_at))}.</p>
      <div class="buttons"><button type="button" id="app-password-new">Make a new one</button> <button type="button" id="app-password-remove">Remove</button></div>`
      : `<p class="muted" id="no-app-password">You have no app password.</p>
      <div class="buttons"><button type="button" class="primary" id="app-password-new">Create an app password</button></div>`}
    <p class="error" role="alert" id="app-password-error"></p></section>`;
}

async function appsView() {
  const at = nav.seq;
  if (needLogin()) return;
  const [keys, ap] = await Promise.all([api("/v1/me/api-keys"), api("/v1/me/app-password")]);
  const created = keyShown;
  if (at !== nav.seq) return;
  view.innerHTML = `<h1>Apps &amp; API keys</h1><p><a href="#/account">← Your account</a></p>
    <section class="acct" id="apps-intro" aria-labelledby="apps-intro-h"><h2 id="apps-intro-h">Listen in other apps</h2>
    <p>Tonearm speaks the Subsonic API, so apps such as DSub, Symfonium, Feishin, Sonixd, Tempo or substreamer can play your music,
    and ListenBrainz scrobblers can send it what you listen to elsewhere. In the app, add a Subsonic (or OpenSubsonic) server with this address:</p>
    ${copyField("Server address", location.origin, "server-url")}
    <p class="muted">Then sign in with an API key, or with your username and app password, both below. Only plays an app reports (scrobbles) count in your history.</p></section>
    ${keysHtml(keys.items, created)}${appPasswordHtml(ap)}`;
  wireApps();
}

function wireApps() {
  const again = async () => { if (location.hash === "#/account/apps") await appsView(); };
  wireCopy($("#apps-intro")); wireCopy($("#api-keys"));
  $$("#app-password .copyfield:not(.secret)").forEach((f) => f.querySelector(".copy").addEventListener("click", () => copyFrom(f.querySelector("input"))));

  const keyErr = $("#key-error");
  $("#key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    keyErr.textContent = "";
    try {
      keyShown = await api("/v1/me/api-keys", { method: "POST", json: { name: e.target.name.value.trim() } });
      toast("API key created.");
      await again();
      $("#new-key input")?.focus();
    } catch (err) { keyErr.textContent = plain(err); }
  });
  $$(".revoke-key").forEach((b) => b.addEventListener("click", async () => {
    const li = b.closest("li"), name = li.querySelector(".key-name").textContent;
    if (!(await confirmDialog(`Revoke the key “${name}”? Apps using it stop working until you give them another.`, "Revoke key"))) return;
    try {
      await api("/v1/me/api-keys/" + encodeURIComponent(li.dataset.id), { method: "DELETE" });
      if (keyShown?.id === li.dataset.id) keyShown = null;
      toast("API key revoked."); await again();
    } catch (err) { keyErr.textContent = plain(err); }
  }));

  const apErr = $("#app-password-error"), secret = $("#app-password .secret");
  if (secret) {
    const input = secret.querySelector("input"), reveal = secret.querySelector(".reveal");
    reveal.addEventListener("click", () => {
      const shown = input.type === "password";
      input.type = shown ? "text" : "password";
      reveal.textContent = shown ? "Hide" : "Show";
      reveal.setAttribute("aria-pressed", String(shown));
    });
    secret.querySelector(".copy").addEventListener("click", () => {
      // Without the Clipboard API the text is selected for Ctrl+C, which a password field refuses.
      if (!navigator.clipboard && input.type === "password") reveal.click();
      copyFrom(input);
    });
  }
  $("#app-password-new").addEventListener("click", async () => {
    if (secret && !(await confirmDialog("Make a new app password? The current one stops working at once in every app that uses it.", "Make a new one"))) return;
    apErr.textContent = "";
    try {
      await api("/v1/me/app-password", { method: "POST" });
      toast(secret ? "New app password made; give it to your apps." : "App password created.");
      await again();
      $("#app-password .reveal")?.click();
      $("#app-password .secret input")?.focus();
    } catch (err) { apErr.textContent = plain(err); }
  });
  $("#app-password-remove")?.addEventListener("click", async () => {
    if (!(await confirmDialog("Remove your app password? Apps signed in with it stop working.", "Remove"))) return;
    try { await api("/v1/me/app-password", { method: "DELETE" }); toast("App password removed."); await again(); } catch (err) { apErr.textContent = plain(err); }
  });
}

// History --------------------------------------------------------------------------------------------
const RANGES = [["short_term", "Last 4 weeks"], ["medium_term", "Last 6 months"], ["long_term", "All time"]];
async function historyView() {
  const at = nav.seq;
  if (needLogin()) return;
  const recent = await api("/v1/me/player/recently-played?limit=50");
  const tracks = recent.items.map((i) => i.track).filter(Boolean);
  const year = new Date().getFullYear();
  if (at !== nav.seq) return;
  view.innerHTML = `<h1>History</h1><p><a href="#/stats/${year}">Your ${year} in music</a></p>
    <section class="acct" id="recent" aria-labelledby="recent-h"><h2 id="recent-h">Recently played</h2>
    ${tracks.length ? trackTable(tracks) : `<p class="muted">Nothing yet: what you play shows up here.</p>`}</section>
    <section class="acct" id="top" aria-labelledby="top-h"><h2 id="top-h">Your top tracks and artists</h2>
    <label>Time range <select id="range">${RANGES.map(([v, t]) => `<option value="${v}"${v === "medium_term" ? " selected" : ""}>${t}</option>`).join("")}</select></label>
    <div id="top-lists" aria-live="polite"></div></section>`;
  await wireTracks($("#recent"), tracks);
  const range = $("#range");
  const show = async () => {
    const box = $("#top-lists");
    if (!box) return;
    const [tt, ta] = await Promise.all([api(`/v1/me/top/tracks?limit=10&time_range=${range.value}`), api(`/v1/me/top/artists?limit=10&time_range=${range.value}`)]);
    box.innerHTML = `<h3>Top tracks</h3>${tt.items.length ? trackTable(tt.items) : `<p class="muted">No plays in this time.</p>`}
      <h3>Top artists</h3>${ta.items.length ? `<div class="grid">${ta.items.map((a) => `<a class="card" href="#/artist/${esc(a.id)}">
      <img loading="lazy" class="round" src="${esc(img(a.images, 300))}" alt=""><div class="t">${esc(a.name)}</div><div class="s">Artist</div></a>`).join("")}</div>` : `<p class="muted">No plays in this time.</p>`}`;
    await wireTracks(box, tt.items);
  };
  range.addEventListener("change", () => show().catch((err) => toast(plain(err), "error")));
  await show();
}

// Stats: hand-made SVG charts ----------------------------------------------------------------------
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const nf = (n) => Number(n || 0).toLocaleString();

// Vertical bars: data [{label, value}], each bar with a <title> for pointer users.
function columnChart(data, { label, unit, id }) {
  const w = 600, h = 200, pad = 24, max = Math.max(1, ...data.map((d) => d.value));
  const bw = (w - pad) / data.length;
  const bars = data.map((d, i) => {
    const bh = Math.round(((h - pad * 2) * d.value) / max), x = pad / 2 + i * bw, y = h - pad - bh;
    return `<g><rect x="${x + 2}" y="${y}" width="${Math.max(1, bw - 4)}" height="${bh}" rx="2"><title>${esc(d.label)}: ${nf(d.value)} ${esc(unit)}</title></rect>
      <text x="${x + bw / 2}" y="${h - 8}" text-anchor="middle">${esc(d.short ?? d.label)}</text></g>`;
  }).join("");
  const axis = `<line class="axis" x1="${pad / 2}" x2="${w - pad / 2}" y1="${h - pad}" y2="${h - pad}"/>`;
  return chartFigure(id, label, `<svg viewBox="0 0 ${w} ${h}" class="chart columns" role="img" aria-label="${esc(label)}">${axis}${bars}</svg>`, data, unit);
}
// Horizontal bars for ranked lists.
function barChart(data, { label, unit, id }) {
  const w = 600, row = 28, h = Math.max(1, data.length) * row, lw = 200, max = Math.max(1, ...data.map((d) => d.value));
  const bars = data.map((d, i) => {
    const bw = Math.max(2, Math.round(((w - lw - 60) * d.value) / max)), y = i * row;
    return `<g><text x="${lw - 8}" y="${y + 18}" text-anchor="end">${esc(d.label.length > 28 ? d.label.slice(0, 27) + "…" : d.label)}</text>
      <rect x="${lw}" y="${y + 5}" width="${bw}" height="${row - 10}" rx="3"><title>${esc(d.label)}: ${nf(d.value)} ${esc(unit)}</title></rect>
      <text x="${lw + bw + 6}" y="${y + 18}">${nf(d.value)}</text></g>`;
  }).join("");
  return chartFigure(id, label, `<svg viewBox="0 0 ${w} ${h}" class="chart bars" role="img" aria-label="${esc(label)}">${bars}</svg>`, data, unit);
}
function chartFigure(id, label, svg, data, unit) {
  return `<figure class="chart-figure" id="${id}">${svg}
    <table class="visually-hidden"><caption>${esc(label)}</caption><thead><tr><th scope="col">Item</th><th scope="col">${esc(unit)}</th></tr></thead>
    <tbody>${data.map((d) => `<tr><th scope="row">${esc(d.label)}</th><td>${nf(d.value)}</td></tr>`).join("")}</tbody></table></figure>`;
}
function topOf(data, unit) {
  const top = data.reduce((a, b) => (b.value > a.value ? b : a), data[0]);
  return top && top.value > 0 ? `; the most: ${top.label}, ${nf(top.value)} ${unit}` : "";
}

async function statsView(arg) {
  const at = nav.seq;
  if (needLogin()) return;
  const now = new Date().getFullYear();
  const year = /^\d{4}$/.test(arg || "") ? Number(arg) : now;
  let tz;
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch { tz = null; }
  const s = await api(`/v1/me/stats/${year}${tz ? "?tz=" + encodeURIComponent(tz) : ""}`);
  const years = [];
  for (let y = now; y >= now - 4; y--) years.push(y);
  const months = s.by_month.map((m) => ({ label: MONTHS[m.month - 1], short: MONTHS[m.month - 1].slice(0, 1), value: m.minutes_played }));
  const hours = s.by_hour.map((h) => ({ label: `${String(h.hour).padStart(2, "0")}:00`, short: h.hour % 6 === 0 ? String(h.hour) : "", value: h.plays }));
  const artists = s.top_artists.map((a) => ({ label: a.artist?.name || "?", value: a.plays }));
  const genres = s.top_genres.map((g) => ({ label: g.name, value: g.plays }));
  const monthsLabel = `Minutes listened per month in ${year}: ${nf(s.minutes_played)} in all${topOf(months, "minutes")}`;
  const hoursLabel = `Plays by hour of the day in ${year}${topOf(hours, "plays")}`;
  if (at !== nav.seq) return;
  view.innerHTML = `<h1>Your ${year} in music</h1>
    <nav class="years" aria-label="Other years">${years.map((y) => y === year ? `<span aria-current="page" class="badge">${y}</span>` : `<a href="#/stats/${y}">${y}</a>`).join(" ")}</nav>
    <dl class="stat-numbers"><div><dt>Minutes listened</dt><dd>${nf(s.minutes_played)}</dd></div><div><dt>Plays</dt><dd>${nf(s.plays)}</dd></div>
      <div><dt>Tracks</dt><dd>${nf(s.distinct_tracks)}</dd></div><div><dt>Artists</dt><dd>${nf(s.distinct_artists)}</dd></div></dl>
    ${s.plays ? "" : `<p class="muted">No plays in ${year} yet.</p>`}
    <h2>Minutes per month</h2>${columnChart(months, { label: monthsLabel, unit: "minutes", id: "chart-months" })}
    <h2>When you listen</h2>${columnChart(hours, { label: hoursLabel, unit: "plays", id: "chart-hours" })}
    ${artists.length ? `<h2>Top artists</h2>${barChart(artists, { label: `Top artists of ${year} by plays: ${artists.map((a) => `${a.label} (${nf(a.value)})`).join(", ")}`, unit: "plays", id: "chart-artists" })}` : ""}
    ${genres.length ? `<h2>Top genres</h2>${barChart(genres, { label: `Top genres of ${year} by plays: ${genres.map((g) => `${g.label} (${nf(g.value)})`).join(", ")}`, unit: "plays", id: "chart-genres" })}` : ""}
    ${s.top_tracks.length ? `<h2>Top tracks</h2><section class="acct" id="stats-tracks">${trackTable(s.top_tracks.map((t) => t.track).filter(Boolean))}</section>` : ""}`;
  const box = $("#stats-tracks");
  if (box) await wireTracks(box, s.top_tracks.map((t) => t.track).filter(Boolean));
}

// Profiles ------------------------------------------------------------------------------------------
async function userView(id) {
  const at = nav.seq;
  if (needLogin()) return;
  if (!id) { location.hash = "#/user/" + encodeURIComponent(state.me.id); return; }
  const [u, lists] = await Promise.all([api("/v1/users/" + encodeURIComponent(id)), api(`/v1/users/${encodeURIComponent(id)}/playlists?limit=50`)]);
  const avatar = img(u.images, 300);
  const mine = u.id === state.me.id;
  if (at !== nav.seq) return;
  view.innerHTML = `<div class="album-head profile-head">${avatar ? `<img class="round" src="${esc(avatar)}" alt="">` : `<span class="avatar big" aria-hidden="true">${esc(initials(u.display_name))}</span>`}
    <div><div class="muted">Profile</div><h1>${esc(u.display_name)}</h1>
    <div class="muted">${u.followers ? `${nf(u.followers.total)} ${u.followers.total === 1 ? "follower" : "followers"} · ` : ""}${lists.total} public ${lists.total === 1 ? "playlist" : "playlists"}</div>
    <div class="buttons"><button type="button" id="share-user" aria-label="Share ${esc(u.display_name)}’s profile">Share</button>${mine ? ` <a href="#/account">Your account</a>` : ""}</div></div></div>
    <h2>Playlists</h2>${lists.items.length ? `<div class="grid">${lists.items.map((p) => `<a class="card" href="#/playlist/${esc(p.id)}">
      <img loading="lazy" src="${esc(img(p.images, 300))}" alt=""><div class="t">${esc(p.name)}</div><div class="s">${p.tracks?.total ?? 0} tracks${mine && !p.public ? " · private" : ""}</div></a>`).join("")}</div>`
      : `<p class="muted">No public playlists.</p>`}`;
  $("#share-user").addEventListener("click", () => openShare("user", u.id));
}

Object.assign(routes, {
  account: (arg) => (arg === "apps" ? appsView() : account()),
  history: historyView,
  stats: statsView,
  user: userView,
});
