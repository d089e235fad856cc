// The console's only script: the search box of a review item asks the gateway's API for CRM
// records (GET /api/v1/crm/search) and lists them; picking one fills the form's KIND:ID.
// Without it the form still works: type the record's KIND:ID and send (a record outside the
// candidates typed so is refused, as on the command line without --force: a typo must not
// file the mail on a stranger's record).
"use strict";

function searchResults(form, records) {
  const list = form.querySelector("[data-search-results]");
  const field = form.querySelector("[data-search-record]");
  list.replaceChildren();
  if (!records.length) {
    const li = document.createElement("li");
    li.textContent = "No record found.";
    list.append(li);
    return;
  }
  for (const r of records) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    const label = `${r.kind}:${r.id}`;
    button.type = "submit";
    button.className = "result";
    const address = (r.emails && r.emails[0]) || r.domain;
    button.textContent = `Attach to ${r.kind} ${r.name || r.id}` + (address ? ` <${address}>` : "");
    // picked from what the CRM search showed: the person saw the record (as `--force` says)
    button.addEventListener("click", () => { field.value = label; form.querySelector("[data-searched]").value = "1"; });
    li.append(button);
    list.append(li);
  }
}

function say(form, text) {
  const list = form.querySelector("[data-search-results]");
  const li = document.createElement("li");
  li.className = "bad";
  li.textContent = text;
  list.replaceChildren(li);
}

async function search(form, query) {
  try {
    const response = await fetch(`/api/v1/crm/search?q=${encodeURIComponent(query)}`, {
      credentials: "same-origin", headers: { Accept: "application/json" },
    });
    const body = await response.json();
    if (!response.ok) { say(form, `The search failed: ${body.error || response.status}`); return; }
    searchResults(form, body.records || []);
  } catch (error) {
    say(form, `The search failed: ${error.message}`);
  }
}

function wire(form) {
  const input = form.querySelector("[data-search-input]");
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const query = input.value.trim();
    if (query.length < 2) return;
    timer = setTimeout(() => search(form, query), 250);
  });
  // Enter in the search box searches now rather than sending the form.
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); clearTimeout(timer); search(form, input.value.trim()); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-search]").forEach(wire);
});
