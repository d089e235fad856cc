// The Outlook task pane: reads the open mail through Office.js (Office.context.mailbox.item),
// asks the gateway whether it is in the CRM and on which records, searches the CRM and links
// the mail to a chosen record. Every call goes to the gateway's JSON API (/api/v1/) with the
// pane's session; its POST carries the CSRF token the page was served with.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]').content;
const $ = (selector) => document.querySelector(selector);

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) };
  if (options.method === "POST") headers["X-CSRF-Token"] = csrf();
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
    const body = await api(`/api/v1/messages/lookup?message_id=${encodeURIComponent(messageId)}`);
    const records = recordsOf(body);
    list.replaceChildren(...records.map((r) => item(recordText(r), "record")));
    status.className = "";
    status.textContent = records.length
      ? `In the CRM on ${records.length} record${records.length > 1 ? "s" : ""}:`
      : body.state === "review" ? "Not in the CRM yet: it waits for review." : "Not in the CRM yet.";
  } catch (error) {
    list.replaceChildren();
    if (error.status === 404) {
      status.textContent = "The gateway has not seen this mail (it files only the mail of the folders it watches).";
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
    await api("/api/v1/link", { method: "POST", body: JSON.stringify({ record: `${record.kind}:${record.id}`, message_id: messageId }) });
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

Office.onReady((info) => {
  if (info.host !== Office.HostType.Outlook || !Office.context.mailbox || !Office.context.mailbox.item) {
    $("[data-status]").textContent = "Open a mail in Outlook to see it here.";
    return;
  }
  const mail = Office.context.mailbox.item;
  const messageId = mail.internetMessageId;
  show(mail);
  lookup(messageId);
  $("[data-search-form]").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("#q").value.trim();
    if (query) search(messageId, query);
  });
});
