// The Outlook task pane: reads the open mail through Office.js (Office.context.mailbox.item),
// asks the gateway whether it is in the CRM and on which records, searches the CRM and links
// the mail to a chosen record (a mail the gateway never handled is fetched from the person's
// mailbox by its Message-ID, and filed). Every call goes to the gateway's JSON API (/api/v1/) with the
// pane's session, its POST with the session's CSRF token (which /api/v1/me tells), or with an
// API token the person pasted (kept in this browser's storage for the gateway's origin):
// Outlook on the web frames the pane on another site, where the session cookie is not sent.
"use strict";

const TOKEN_KEY = "crm-gateway-api-token";
const storage = {
  get() { try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (_) { return ""; } },
  set(value) { try { if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY); } catch (_) { /* storage off: this pane only */ } },
};
let bearer = storage.get();

let csrfToken = "";
let seen = null; // what the gateway knows of the open mail (its look-up), null when nothing
let user = ""; // the signed-in Outlook user's address: the mailbox the gateway searches first
const csrf = () => csrfToken;
const $ = (selector) => document.querySelector(selector);

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  else if (options.method === "POST") headers["X-CSRF-Token"] = csrf();
  const response = await fetch(path, { credentials: "same-origin", ...options, headers });
  let body = {};
  try { body = await response.json(); } catch (_) { /* an empty or HTML answer: said below */ }
  if (!response.ok) {
    const error = new Error(body.error || `the gateway answered ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

// The records the CRM files the mail on, as the look-up names them (`crm_records`).
function recordsOf(body) {
  return body.crm_records || [];
}

function recordText(r) {
  const address = (r.emails && r.emails[0]) || r.domain;
  return `${r.kind} ${r.name || r.id}` + (address ? ` <${address}>` : "") + ` (${r.kind}:${r.id})`;
}

function item(text, className) {
  const li = document.createElement("li");
  li.textContent = text;
  if (className) li.className = className;
  return li;
}

async function lookup(messageId) {
  const status = $("[data-status]");
  const list = $("[data-records]");
  try {
    const mailbox = user ? `&mailbox=${encodeURIComponent(user)}` : "";
    const body = await api(`/api/v1/messages/lookup?message_id=${encodeURIComponent(messageId)}${mailbox}`);
    seen = body;
    const records = recordsOf(body);
    list.replaceChildren(...records.map((r) => item(recordText(r), "record")));
    status.className = "";
    status.textContent = records.length
      ? `In the CRM on ${records.length} record${records.length > 1 ? "s" : ""}:`
      : body.state === "review" ? "Not in the CRM yet: it waits for review."
      : body.known === false ? `Not in the CRM yet. It is in the mailbox ${body.mailbox}: search a record to file it on.`
      : "Not in the CRM yet.";
  } catch (error) {
    list.replaceChildren();
    if (error.status === 404) {
      // neither handled nor in a mailbox of this person that the gateway reaches
      status.textContent = "The gateway has not seen this mail, and it is in none of your mailboxes it reaches.";
      return;
    }
    status.textContent = `Could not ask the gateway: ${error.message}`;
    status.className = "bad";
  }
}

async function link(messageId, record) {
  const said = $("[data-linked]");
  said.className = "";
  try {
    const label = `${record.kind}:${record.id}`;
    if (seen && seen.state === "review") {
      // waiting for a person: picking the record is the review's decision
      await api(`/api/v1/review/${seen.id}/resolve`, { method: "POST", body: JSON.stringify({ record: label }) });
    } else {
      const body = { record: label, message_id: messageId, ...(user ? { mailbox: user } : {}) };
      await api("/api/v1/link", { method: "POST", body: JSON.stringify(body) });
    }
    said.textContent = `Filed on ${recordText(record)}.`;
    await lookup(messageId);
  } catch (error) {
    said.textContent = `Not filed: ${error.message}`;
    said.className = "bad";
  }
}

async function search(messageId, query) {
  const results = $("[data-results]");
  try {
    const body = await api(`/api/v1/crm/search?q=${encodeURIComponent(query)}`);
    const records = body.records || [];
    if (!records.length) { results.replaceChildren(item("No record found.")); return; }
    results.replaceChildren(...records.map((r) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `File on ${recordText(r)}`;
      button.addEventListener("click", () => link(messageId, r));
      li.append(button);
      return li;
    }));
  } catch (error) {
    results.replaceChildren(item(`The search failed: ${error.message}`, "bad"));
  }
}

function show(mail) {
  $("[data-subject]").textContent = mail.subject || "(no subject)";
  const from = mail.from ? `${mail.from.displayName || ""} <${mail.from.emailAddress}>`.trim() : "";
  const to = (mail.to || []).map((a) => a.emailAddress).join(", ");
  $("[data-from]").textContent = `From ${from}` + (to ? ` to ${to}` : "");
}

// Who is signed in, and their CSRF token; false (and a sign-in link shown) when nobody is.
async function whoAmI() {
  try {
    const me = await api("/api/v1/me");
    csrfToken = me.csrf_token || "";
    $("[data-who]").textContent = `Signed in as ${me.name}` + (me.via_token ? " (API token)" : "");
    $("[data-signin]").hidden = true;
    $("[data-token-form]").hidden = true;
    return true;
  } catch (error) {
    $("[data-who]").textContent = "";
    if (error.status === 401) {
      if (bearer) { bearer = ""; storage.set(""); } // refused (removed?): ask again
      $("[data-signin]").hidden = false;
      $("[data-token-form]").hidden = false;
      return false;
    }
    $("[data-who]").textContent = `Could not ask the gateway: ${error.message}`;
    return false;
  }
}

async function start(mail) {
  const messageId = mail.internetMessageId;
  if (!(await whoAmI())) { $("[data-status]").textContent = "Sign in to see whether it is in the CRM."; return; }
  lookup(messageId);
}

Office.onReady((info) => {
  if (info.host !== Office.HostType.Outlook || !Office.context.mailbox || !Office.context.mailbox.item) {
    $("[data-status]").textContent = "Open a mail in Outlook to see it here.";
    return;
  }
  const mail = Office.context.mailbox.item;
  const profile = Office.context.mailbox.userProfile;
  user = (profile && profile.emailAddress) || "";
  show(mail);
  $("[data-search-form]").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("#q").value.trim();
    if (query) search(mail.internetMessageId, query);
  });
  $("[data-token-form]").addEventListener("submit", (event) => {
    event.preventDefault();
    bearer = $("#token").value.trim();
    storage.set(bearer);
    $("#token").value = "";
    start(mail);
  });
  start(mail);
});
