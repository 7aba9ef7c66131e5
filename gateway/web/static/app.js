// The live page: requests, SMS and replies fetched from the API page by page, refetched on
// server-sent change events; filters kept in the URL. User data only ever reaches the DOM
// through textContent (never innerHTML): a stored message cannot run script here.
"use strict";

const PAGE = { requests: 20, sms: 50, replies: 20, group: 20, results: 50 };
const HTTP_WINDOW = 1000; // HTTP SMS read at once to group them into calls (the API's maximum)
const FILTERS = [
  // [URL and state name, input id, API parameter on /sms, on /emails and /replies]
  ["number", "filter-number", "to", "number"],
  ["email_id", "filter-email-id", "email_id", "email_id"],
  ["tracker", "filter-tracker", "tracker", "tracker"],
  ["account", "filter-account", "account", "account"],
  ["channel", "filter-channel", "channel", "channel"],
];
const PANES = { requests: ["emails", "sms"], sms: ["sms"], replies: ["replies"] };
const THEMES = ["auto", "dark", "light"];
const THEME_TITLES = {
  auto: "Theme: follows the system", dark: "Theme: dark", light: "Theme: light",
};
const TZ = "Europe/Paris";
const FULL = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const SHORT = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ, day: "2-digit", month: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const TIME = new Intl.DateTimeFormat("en-GB", {
  timeZone: TZ, hour: "2-digit", minute: "2-digit", second: "2-digit",
});

const state = {
  stopTexts: [],
  addresses: [],
  versions: null,
  loading: {},
  dirty: {},
  filters: {},
  offsets: { sms: 0, replies: 0 },
  // The requests pane merges emails and HTTP calls: a page starts at one offset in each.
  requestPages: [{ emails: 0, http: 0 }],
  requestNext: null,
  expanded: new Set(),
  groupOffsets: {},
  groupPages: {},
  openXml: new Set(),
  headersOpen: false,
  clock: null,
  detail: null,
  hintFrom: null,
};

// DOM helpers ---------------------------------------------------------------------------------

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function append(parent, ...children) {
  for (const child of children) if (child) parent.appendChild(child);
  return parent;
}

function byId(id) {
  return document.getElementById(id);
}

function badge(text, kind) {
  const node = el("span", "badge", text);
  node.dataset.kind = kind || text;
  return node;
}

function button(text, className, onClick) {
  const node = el("button", className, text);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function plural(count, one, many) {
  return `${count.toLocaleString("en")} ${count === 1 ? one : many || one + "s"}`;
}

function full(iso) {
  return iso ? FULL.format(new Date(iso)) : "";
}

function timeEl(iso, format) {
  const node = el("time", "when", (format || SHORT).format(new Date(iso)));
  node.dateTime = iso;
  node.title = full(iso);
  return node;
}

function prettyNumber(number) {
  return /^0\d{9}$/.test(number) ? number.replace(/(\d\d)(?=\d)/g, "$1 ") : number;
}

function bytes(size) {
  if (size < 1024) return plural(size, "byte");
  return size < 1048576 ? `${(size / 1024).toFixed(1)} KiB` : `${(size / 1048576).toFixed(1)} MiB`;
}

function empty(text) {
  return el("p", "empty", activeFilters().length ? "Nothing matches the filters." : text);
}

// A value of a row that narrows every pane to it when clicked.
function filterLink(name, value, label, className) {
  const node = button(label, `filter-link ${className || ""}`, (event) => {
    event.stopPropagation();
    setFilter(name, value);
  });
  node.title = `Show only ${label}`;
  return node;
}

// API -----------------------------------------------------------------------------------------

// The API names what it refuses (`{"error": …}`): that is what the hint shows.
async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${path.split("?")[0]}: HTTP ${response.status}`);
  }
  return response.json();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "" && value !== null && value !== undefined) search.set(key, value);
  }
  return search.toString();
}

// The filters as API parameters: `to` on SMS, `number` on emails and replies.
function apiFilters(list) {
  const params = {};
  for (const [name, , onSms, onOthers] of FILTERS) {
    params[list === "sms" ? onSms : onOthers] = state.filters[name];
  }
  return params;
}

function activeFilters() {
  return FILTERS.map(([name]) => name).filter((name) => state.filters[name]);
}

// Rows -----------------------------------------------------------------------------------------

// The text as the phone shows it, the STOP mention the gateway added set apart.
function splitStop(text) {
  for (const stop of state.stopTexts) {
    const suffix = "\r\n" + stop;
    if (stop && text.endsWith(suffix)) return [text.slice(0, -suffix.length), stop];
  }
  return [text, null];
}

function textNodes(sms) {
  const [body, stop] = splitStop(sms.text);
  const text = el("p", "text", body);
  const mention = stop ? el("p", "stop", stop) : null;
  if (mention) mention.title = "STOP mention added by the gateway (custom sender)";
  return [text, mention];
}

function smsFacts(sms) {
  const facts = [
    el("span", "fact", sms.parts === 1 ? "1 part" : `${sms.parts} parts`),
    el("span", "fact", sms.encoding === "ucs2" ? "UCS-2" : "GSM 7-bit"),
  ];
  if (sms.channel === "http") facts.push(badge("HTTP", "http"));
  if (sms.state === "scheduled") {
    const due = badge(`due ${sms.due_at ? SHORT.format(new Date(sms.due_at)) : "later"}`,
      "scheduled");
    due.title = `Scheduled (date_envoi): sent when the gateway's clock reaches ${full(sms.due_at)}`;
    facts.push(due);
  }
  if (sms.email_id) facts.push(filterLink("email_id", sms.email_id, `emailId ${sms.email_id}`));
  if (sms.tracker) facts.push(filterLink("tracker", sms.tracker, `tracker ${sms.tracker}`));
  return facts;
}

// One SMS as one compact row: a campaign of 500 stays 500 short lines, not 500 phones.
function smsRow(sms) {
  const row = el("article", "sms-row");
  row.dataset.id = sms.id;
  row.dataset.number = sms.to;
  const head = append(el("div", "row-head"),
    filterLink("number", sms.to, prettyNumber(sms.to), "to"),
    el("span", "sender", sms.sender),
    timeEl(sms.created_at));
  const [text, stop] = textNodes(sms);
  const body = append(el("div", "row-text"), text, stop);
  body.title = "Click to show the whole text";
  body.addEventListener("click", () => row.classList.toggle("open"));
  return append(row, head, body, append(el("div", "facts-line"), ...smsFacts(sms)));
}

function smsRows(items) {
  return append(el("div", "sms-rows"), ...items.map(smsRow));
}

// The phone of one number: its newest SMS on top, a sender's name where the sender changes.
function phone(number, page) {
  const node = el("article", "phone");
  node.dataset.number = number;
  const close = button("×", "icon phone-close", () => setFilter("number", ""));
  close.title = "Back to every number";
  close.setAttribute("aria-label", close.title);
  append(node, append(el("header", "phone-bar"),
    el("span", "phone-number", prettyNumber(number)),
    el("span", "phone-count", plural(page.total, "SMS", "SMS")),
    close));
  const screen = el("div", "screen");
  let sender = null;
  for (const sms of page.items) {
    if (sms.sender !== sender) {
      sender = sms.sender;
      screen.appendChild(el("h3", "sender", sender));
    }
    const bubble = el("div", "bubble");
    bubble.dataset.id = sms.id;
    append(bubble, ...textNodes(sms), append(el("div", "meta"),
      timeEl(sms.created_at, TIME), ...smsFacts(sms)));
    screen.appendChild(bubble);
  }
  if (page.items.length === 0) screen.appendChild(el("p", "empty", "No SMS to this number."));
  return append(node, screen);
}

// Counts per code of a request: "0 × 498", "21 × 2", each with the annex's message.
function codeChips(results, email) {
  const counts = new Map();
  for (const result of results) {
    const seen = counts.get(result.code) || { count: 0, message: result.message };
    seen.count += 1;
    counts.set(result.code, seen);
  }
  if (counts.size === 0 && email && email.code !== null && email.code !== 0) {
    counts.set(email.code, { count: 1, message: email.reason });
  }
  const chips = el("div", "codes");
  for (const [code, { count, message }] of [...counts].sort((a, b) => a[0] - b[0])) {
    const chip = el("span", "code-chip");
    chip.dataset.ok = code === 0;
    append(chip, el("b", "", code), el("span", "", `× ${count.toLocaleString("en")}`));
    chip.title = `${plural(count, "recipient")}: code ${code} — ${message}`;
    chips.appendChild(chip);
  }
  return chips;
}

function statusLabel(status) {
  return status.replace("_", " ");
}

// Requests -------------------------------------------------------------------------------------

// HTTP SMS have no request row: consecutive ones of one account, tracker and instant are one
// call. `complete` says whether the last group may continue past the window.
function httpCalls(items, complete) {
  const calls = [];
  for (const sms of items) {
    const last = calls[calls.length - 1];
    const key = [sms.account, sms.tracker, sms.created_at].join("\n");
    if (last && last.key === key) last.items.push(sms);
    else calls.push({ kind: "http", key, at: sms.created_at, items: [sms] });
  }
  if (!complete && calls.length > 1) calls.pop();
  return calls;
}

function mergeRequests(emails, calls, size) {
  const groups = [];
  let e = 0;
  let c = 0;
  while (groups.length < size && (e < emails.length || c < calls.length)) {
    const email = emails[e];
    const call = calls[c];
    if (call && (!email || call.at > email.received_at)) {
      groups.push(call);
      c += 1;
    } else {
      groups.push({ kind: "mail", key: `e${email.id}`, at: email.received_at, email });
      e += 1;
    }
  }
  return groups;
}

function requestCard(group) {
  const card = el("article", `request ${group.kind}`);
  const key = group.kind === "mail" ? `e${group.email.id}` : `h${group.items[0].id}`;
  card.dataset.key = key;
  const head = el("button", "request-head");
  head.type = "button";
  head.setAttribute("aria-expanded", state.expanded.has(key));
  if (group.kind === "mail") {
    const email = group.email;
    card.dataset.id = email.id;
    card.classList.add("email");
    const sent = email.results.filter((r) => r.code === 0).length;
    append(head,
      append(el("div", "request-line"),
        badge(statusLabel(email.status), email.status),
        el("span", "request-title", email.email_id ? `emailId ${email.email_id}` : "no emailId"),
        timeEl(email.received_at)),
      append(el("div", "request-sub"),
        el("span", "", email.sender || email.envelope_from || "no sender"),
        email.account ? el("span", "", email.account) : null,
        email.subject ? el("span", "subject", email.subject) : null),
      append(el("div", "request-line"),
        codeChips(email.results, email),
        el("span", "request-size", email.results.length ? plural(sent, "SMS", "SMS") : "")));
  } else {
    const first = group.items[0];
    card.dataset.account = first.account;
    append(head,
      append(el("div", "request-line"),
        badge("HTTP", "http"),
        el("span", "request-title", "HTTP API call"),
        timeEl(group.at)),
      append(el("div", "request-sub"),
        el("span", "", first.account),
        first.tracker ? el("span", "", `tracker ${first.tracker}`) : null),
      append(el("div", "request-line"),
        codeChips(group.items.map(() => ({ code: 0, message: "sent" }))),
        el("span", "request-size", plural(group.items.length, "SMS", "SMS"))));
  }
  head.addEventListener("click", () => {
    if (state.expanded.has(key)) state.expanded.delete(key);
    else state.expanded.add(key);
    head.setAttribute("aria-expanded", state.expanded.has(key));
    toggleBody(card, group);
  });
  append(card, head);
  if (state.expanded.has(key)) toggleBody(card, group);
  return card;
}

function toggleBody(card, group) {
  const open = card.querySelector(".request-body");
  if (open) {
    open.remove();
    return;
  }
  const body = el("div", "request-body");
  card.appendChild(body);
  if (group.kind === "mail") fillEmailBody(body, group.email);
  else fillCallBody(body, group);
}

function reasonNodes(email) {
  const nodes = [];
  if (email.reason || (email.code !== null && email.code !== 0)) {
    const reason = el("p", "reason");
    if (email.code !== null) reason.appendChild(el("span", "reason-code", `code ${email.code}`));
    if (email.reason) reason.appendChild(document.createTextNode(email.reason));
    nodes.push(reason);
  }
  for (const warning of email.warnings) nodes.push(el("p", "warning", warning));
  return nodes;
}

// The numbers a request did not text, one line per code: a campaign's ten 21s are one line.
function failures(results, limit) {
  const byCode = new Map();
  for (const result of results) {
    if (result.code === 0) continue;
    if (!byCode.has(result.code)) byCode.set(result.code, { message: result.message, tels: [] });
    byCode.get(result.code).tels.push(result.tel);
  }
  if (byCode.size === 0) return null;
  const total = [...byCode.values()].reduce((n, f) => n + f.tels.length, 0);
  const box = append(el("div", "failures"),
    el("h4", "", `Not sent (${total.toLocaleString("en")})`));
  for (const [code, { message, tels }] of [...byCode].sort((a, b) => a[0] - b[0])) {
    const line = el("div", "failure");
    line.dataset.code = code;
    const shown = tels.slice(0, limit).join(", ");
    const more = tels.length > limit ? ` and ${(tels.length - limit).toLocaleString("en")} more`
      : "";
    append(line,
      append(el("div", "failure-head"), append(el("span", "code-chip"), el("b", "", code),
        el("span", "", `× ${tels.length.toLocaleString("en")}`)), el("span", "", message)),
      el("p", "numbers", shown + more));
    box.appendChild(line);
  }
  return box;
}

function resultsTable(results) {
  const table = el("table", "results");
  append(table, append(el("tr"), el("th", "", "Number"), el("th", "", "Code"),
    el("th", "", "Message")));
  for (const result of results) {
    const row = el("tr", result.code === 0 ? "ok" : "ko");
    append(row, el("td", "tel", result.tel), el("td", "code", result.code),
      el("td", "", result.message));
    table.appendChild(row);
  }
  return append(el("div", "table-wrap"), table);
}

function fillEmailBody(body, email) {
  const open = button("Details", "small", () => openDetail(email.id));
  append(body, ...reasonNodes(email), failures(email.results, 30));
  const sms = el("div", "group-sms");
  append(body, sms, append(el("div", "request-actions"), open, rawLink(email.raw_url)));
  pagedSms(sms, { email_row: email.id }, `e${email.id}`, PAGE.group, true);
}

function fillCallBody(body, group) {
  const key = `h${group.items[0].id}`;
  const box = el("div", "group-sms");
  body.appendChild(box);
  const show = () => {
    const offset = state.groupOffsets[key] || 0;
    const items = group.items.slice(offset, offset + PAGE.group);
    box.replaceChildren(groupBar(`Sent (${group.items.length.toLocaleString("en")})`,
      pagerBar({ offset, shown: items.length, total: group.items.length, size: PAGE.group },
        (next) => { state.groupOffsets[key] = next; show(); })), smsRows(items));
  };
  show();
}

// A request's SMS, a page at a time, from the API; the last page seen is drawn at once
// while a live update refetches it.
async function pagedSms(box, params, key, size, titled) {
  const offset = state.groupOffsets[key] || 0;
  const draw = (page) => box.replaceChildren(...(page.total === 0 ? [] : [
    groupBar(titled && `Sent (${page.total.toLocaleString("en")})`,
      pagerBar({ offset, shown: page.items.length, total: page.total, size }, (next) => {
        state.groupOffsets[key] = next;
        pagedSms(box, params, key, size, titled);
      })),
    smsRows(page.items)]));
  const seen = state.groupPages[key];
  if (seen && seen.offset === offset) draw(seen.page);
  try {
    const page = await getJson(`/api/v1/sms?${query({ ...params, limit: size, offset })}`);
    state.groupPages[key] = { offset, page };
    draw(page);
  } catch (error) {
    box.replaceChildren(el("p", "empty", `Could not load the SMS: ${error.message}`));
  }
}

function groupBar(title, pager) {
  return append(el("div", "group-bar"), title ? el("h4", "", title) : null, pager);
}

function rawLink(url) {
  const raw = el("a", "raw", "Raw message");
  raw.href = url;
  raw.target = "_blank";
  raw.rel = "noopener";
  return raw;
}

// Pagers ---------------------------------------------------------------------------------------

function pagerBar({ offset, shown, total, size }, move) {
  const bar = el("div", "pager-bar");
  const step = size || Math.max(shown, 1);
  if (total <= shown && offset === 0) return bar;
  const first = shown ? offset + 1 : 0;
  const newer = button("‹", "small", () => move(Math.max(0, offset - step)));
  newer.title = "Newer";
  newer.setAttribute("aria-label", "Newer");
  newer.disabled = offset === 0;
  const older = button("›", "small", () => move(offset + step));
  older.title = "Older";
  older.setAttribute("aria-label", "Older");
  older.disabled = offset + shown >= total;
  return append(bar, newer,
    el("span", "range", `${first.toLocaleString("en")}–${(offset + shown).toLocaleString("en")}`
      + ` of ${total.toLocaleString("en")}`),
    older);
}

function setPager(id, bar) {
  byId(`${id}-pager`).replaceChildren(bar);
}

// The same pager again below a long list, where the reader's eyes are when it ends.
function footer(bar) {
  return append(el("div", "pane-foot"), bar);
}

// Panes ----------------------------------------------------------------------------------------

function setCount(id, text, short) {
  byId(`${id}-count`).textContent = text;
  byId(`tab-${id}`).textContent = short === undefined ? text : short;
}

// A list pane's page (SMS, replies) at its offset with its filters: the count on its tab, its
// pager above the list, and the pager's maker for the same bar again below it.
async function listPane(id, path) {
  const page = await getJson(`${path}?${query({
    ...apiFilters(id), limit: PAGE[id], offset: state.offsets[id] })}`);
  setCount(id, page.total ? page.total.toLocaleString("en") : "");
  const pager = () => pagerBar({ offset: state.offsets[id], shown: page.items.length,
    total: page.total, size: PAGE[id] }, (offset) => movePage(id, offset));
  setPager(id, pager());
  return { page, pager };
}

const loaders = {
  async requests() {
    const channel = state.filters.channel;
    const cursor = state.requestPages[state.requestPages.length - 1];
    // HTTP SMS have no emailId: an emailId filter leaves only emails.
    const wantHttp = channel !== "mail" && !state.filters.email_id;
    const none = { items: [], total: 0 };
    const [emails, http] = await Promise.all([
      channel === "http" ? none : getJson(`/api/v1/emails?${query({
        ...apiFilters("emails"), limit: PAGE.requests, offset: cursor.emails })}`),
      wantHttp ? getJson(`/api/v1/sms?${query({
        ...apiFilters("sms"), channel: "http", limit: HTTP_WINDOW, offset: cursor.http })}`)
        : none,
    ]);
    const complete = cursor.http + http.items.length >= http.total;
    const groups = mergeRequests(emails.items, httpCalls(http.items, complete), PAGE.requests);
    const next = {
      emails: cursor.emails + groups.filter((g) => g.kind === "mail").length,
      http: cursor.http + groups.filter((g) => g.kind === "http")
        .reduce((n, g) => n + g.items.length, 0),
    };
    state.requestNext = next.emails < emails.total || next.http < http.total ? next : null;
    const parts = [];
    if (channel !== "http") parts.push(plural(emails.total, "email"));
    if (wantHttp && http.total) parts.push(plural(http.total, "HTTP SMS", "HTTP SMS"));
    if (emails.total + http.total === 0) parts.length = 0;
    // The tab has room for one number: the emails', else the HTTP SMS'.
    const short = emails.total || http.total;
    setCount("requests", parts.join(" · "), short ? short.toLocaleString("en") : "");
    setPager("requests", requestPager());
    const list = byId("requests-list");
    if (groups.length === 0) {
      const to = state.addresses[0] || "the gateway address";
      list.replaceChildren(empty(`No request yet. Email an <envoi> request to ${to}, or call `
        + "the HTTP API at /cgi-bin."));
      return;
    }
    list.replaceChildren(...groups.map(requestCard), footer(requestPager()));
  },

  async sms() {
    const number = state.filters.number;
    const { page, pager } = await listPane("sms", "/api/v1/sms");
    const list = byId("sms-list");
    list.dataset.view = number ? "phone" : "rows";
    if (number) {
      // The API normalised the number: its items say how.
      list.replaceChildren(phone(page.items.length ? page.items[0].to : number, page),
        footer(pager()));
      return;
    }
    if (page.items.length === 0) {
      const to = state.addresses[0] || "the gateway address";
      list.replaceChildren(empty(`No SMS yet. Email an <envoi> request to ${to}.`));
      return;
    }
    list.replaceChildren(smsRows(page.items), footer(pager()));
  },

  async replies() {
    const { page, pager } = await listPane("replies", "/api/v1/replies");
    const list = byId("replies-list");
    if (page.items.length === 0) {
      list.replaceChildren(empty("No Ack or Not reply yet."));
      return;
    }
    list.replaceChildren(...page.items.map(replyCard), footer(pager()));
  },
};

function requestPager() {
  const pages = state.requestPages;
  const bar = el("div", "pager-bar");
  if (pages.length > 1 || state.requestNext) {
    const newer = button("‹", "small", () => {
      state.requestPages.pop();
      movePage("requests");
    });
    newer.title = "Newer";
    newer.setAttribute("aria-label", "Newer");
    newer.disabled = pages.length === 1;
    const older = button("›", "small", () => {
      state.requestPages.push(state.requestNext);
      movePage("requests");
    });
    older.title = "Older";
    older.setAttribute("aria-label", "Older");
    older.disabled = !state.requestNext;
    append(bar, newer, el("span", "range", `page ${pages.length}`), older);
  }
  return bar;
}

function movePage(pane, offset) {
  if (offset !== undefined) state.offsets[pane] = offset;
  byId(`${pane}-list`).scrollTop = 0;
  const head = byId(`pane-${pane}`);
  if (head.getBoundingClientRect().top < 0) head.scrollIntoView();
  refresh(pane);
}

function replyCard(reply) {
  const card = el("article", "card reply");
  card.dataset.id = reply.id;
  append(card, append(el("header", "card-head"),
    badge(reply.kind === "ack" ? "Ack" : "Not", reply.kind),
    el("span", "card-title", reply.to),
    badge(reply.state, reply.state)));
  card.querySelector(".card-title").title = reply.to;
  const facts = append(el("div", "facts-line"),
    reply.email_id ? filterLink("email_id", reply.email_id, `emailId ${reply.email_id}`) : null,
    el("span", "fact", `queued ${SHORT.format(new Date(reply.created_at))}`),
    reply.delivered_at ? el("span", "fact",
      `delivered ${SHORT.format(new Date(reply.delivered_at))}`) : null,
    reply.attempts ? el("span", "fact", plural(reply.attempts, "attempt")) : null);
  card.appendChild(facts);
  if (reply.last_error) card.appendChild(el("p", "warning", reply.last_error));
  const xml = el("details", "xml-box");
  xml.open = state.openXml.has(reply.id);
  xml.addEventListener("toggle", () => {
    if (xml.open) state.openXml.add(reply.id);
    else state.openXml.delete(reply.id);
  });
  append(xml, el("summary", "", "XML"), el("pre", "xml", reply.body));
  return append(card, xml);
}

// One refetch per pane at a time; changes arriving meanwhile cause exactly one more.
async function refresh(pane) {
  if (state.loading[pane]) {
    state.dirty[pane] = true;
    return;
  }
  state.loading[pane] = true;
  try {
    do {
      state.dirty[pane] = false;
      try {
        await loaders[pane]();
        if (state.hintFrom === pane) showHint("");
      } catch (error) {
        showHint(`Could not load ${pane}: ${error.message}`, pane);
      }
    } while (state.dirty[pane]);
  } finally {
    state.loading[pane] = false;
  }
}

function refreshAll() {
  for (const pane of Object.keys(loaders)) refresh(pane);
}

// Detail view of one email --------------------------------------------------------------------

function openDetail(id) {
  state.detail = Number(id);
  writeUrl();
  const dialog = byId("detail");
  if (!dialog.open) dialog.showModal();
  byId("detail-body").replaceChildren(el("p", "empty", "Loading…"));
  loadDetail(state.detail);
}

function closeDetail() {
  state.detail = null;
  writeUrl();
  const dialog = byId("detail");
  if (dialog.open) dialog.close();
}

async function loadDetail(id) {
  let email;
  let replies;
  let sms;
  try {
    [email, replies, sms] = await Promise.all([
      getJson(`/api/v1/emails/${id}`),
      getJson(`/api/v1/replies?${query({ email_row: id, limit: 100 })}`),
      getJson(`/api/v1/sms?${query({ email_row: id, limit: 0 })}`),
    ]);
  } catch (error) {
    if (state.detail === id) {
      byId("detail-title").replaceChildren(el("h2", "", `Email ${id}`));
      byId("detail-body").replaceChildren(el("p", "empty", `Could not load it: ${error.message}`));
    }
    return;
  }
  if (state.detail !== id) return;
  byId("detail-title").replaceChildren(
    badge(statusLabel(email.status), email.status),
    el("h2", "", email.email_id ? `emailId ${email.email_id}` : "Email without emailId"),
    el("span", "muted", `#${email.id}`));
  const facts = el("dl", "facts");
  const field = (name, value) => {
    if (value) append(facts, el("dt", "", name), el("dd", "", value));
  };
  field("Received", full(email.received_at));
  field("From", email.sender);
  field("Envelope", email.envelope_from);
  field("Account", email.account);
  field("Subject", email.subject);
  field("Client", email.client_ip);
  field("Message-ID", email.message_id);

  const body = byId("detail-body");
  const sections = [append(el("section", "detail-section"), facts, codeChips(email.results, email),
    ...reasonNodes(email))];

  const message = append(el("div", "message"));
  if (email.text !== null) {
    message.appendChild(append(el("div", "block"), el("h4", "", "Text read by the gateway"),
      el("pre", "mail-text", email.text)));
  } else {
    message.appendChild(el("p", "muted", "No text/plain body was read from this email."));
  }
  if (email.attachments.length) {
    const list = el("ul", "attachments");
    for (const file of email.attachments) {
      append(list, append(el("li"), el("span", "file-name", file.filename),
        el("span", "muted", bytes(file.size))));
    }
    message.appendChild(append(el("div", "block"),
      el("h4", "", `Attachments (${email.attachments.length})`), list));
  }
  const headers = el("details", "headers");
  headers.open = state.headersOpen;
  headers.addEventListener("toggle", () => { state.headersOpen = headers.open; });
  const table = el("table", "header-table");
  for (const header of email.headers) {
    append(table, append(el("tr"), el("th", "", header.name), el("td", "", header.value)));
  }
  append(headers, el("summary", "", `Headers (${email.headers.length})`),
    append(el("div", "table-wrap"), table));
  append(message, headers, rawLink(email.raw_url));
  sections.push(section("Message", message));
  if (email.results.length) {
    const box = el("div");
    const key = `r${email.id}`;
    const show = (offset) => {
      state.groupOffsets[key] = offset;
      const page = email.results.slice(offset, offset + PAGE.results);
      box.replaceChildren(pagerBar({ offset, shown: page.length, total: email.results.length,
        size: PAGE.results }, show), resultsTable(page));
    };
    show(state.groupOffsets[key] || 0);
    sections.push(section(`Recipients (${email.results.length.toLocaleString("en")})`, box));
  }
  if (sms.total) {
    const box = el("div", "group-sms");
    pagedSms(box, { email_row: email.id }, `d${email.id}`, PAGE.results);
    sections.push(section(`SMS (${sms.total.toLocaleString("en")})`, box));
  }
  if (replies.items.length) {
    sections.push(section(`Replies (${replies.total})`,
      append(el("div", "cards"), ...replies.items.map(replyCard))));
  }
  body.replaceChildren(...sections);
}

function section(title, content) {
  return append(el("section", "detail-section"), el("h3", "", title), content);
}

// Export ---------------------------------------------------------------------------------------

const CSV_COLUMNS = ["id", "created_at", "channel", "state", "due_at", "account", "email_id",
  "tracker", "to", "sender", "parts", "encoding", "text"];

function csvField(value) {
  const text = value === null || value === undefined ? "" : String(value);
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

function toCsv(items) {
  const lines = [CSV_COLUMNS.join(",")];
  for (const item of items) lines.push(CSV_COLUMNS.map((c) => csvField(item[c])).join(","));
  return lines.join("\r\n") + "\r\n";
}

// Every SMS matching the filters, newest first, read from the API a page at a time.
async function matchingSms() {
  const items = [];
  for (;;) {
    const page = await getJson(`/api/v1/sms?${query({
      ...apiFilters("sms"), limit: 1000, offset: items.length })}`);
    items.push(...page.items);
    if (page.items.length === 0 || items.length >= page.total) return items;
  }
}

async function exportSms(format) {
  try {
    showHint("");
    const items = await matchingSms();
    const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
    const blob = format === "csv"
      ? new Blob(["\ufeff" + toCsv(items)], { type: "text/csv;charset=utf-8" })
      : new Blob([JSON.stringify(items, null, 2) + "\n"], { type: "application/json" });
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = `mail2sms-sms-${stamp}.${format}`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    showHint(`Export failed: ${error.message}`);
  }
}

// Clock ----------------------------------------------------------------------------------------

async function refreshClock() {
  try {
    const clock = await getJson("/api/v1/clock");
    state.clock = { frozen: clock.frozen, now: new Date(clock.now), at: performance.now() };
    drawClock();
  } catch (error) {
    // The live indicator already says when the gateway is away.
  }
}

// Real time ticks here between fetches; a frozen instant stays put.
function drawClock() {
  const clock = state.clock;
  if (!clock) return;
  const node = byId("clock");
  const now = clock.frozen ? clock.now : new Date(clock.now.getTime() + performance.now()
    - clock.at);
  node.dataset.frozen = clock.frozen;
  node.replaceChildren(el("span", "clock-mode", clock.frozen ? "Frozen" : "Real time"),
    el("time", "clock-now", FULL.format(now)));
  node.title = clock.frozen
    ? "The gateway's clock is frozen at this instant (PUT /api/v1/clock); Europe/Paris"
    : "The gateway runs in real time; Europe/Paris";
}

// Theme ----------------------------------------------------------------------------------------

function applyTheme(mode) {
  const root = document.documentElement;
  if (mode === "auto") delete root.dataset.theme;
  else root.dataset.theme = mode;
  const toggle = byId("theme");
  toggle.dataset.mode = mode;
  toggle.title = THEME_TITLES[mode];
}

function storedTheme() {
  try {
    const mode = localStorage.getItem("mail2sms-theme");
    return THEMES.includes(mode) ? mode : "auto";
  } catch (error) {
    return "auto";
  }
}

function cycleTheme() {
  const mode = THEMES[(THEMES.indexOf(byId("theme").dataset.mode) + 1) % THEMES.length];
  try {
    localStorage.setItem("mail2sms-theme", mode);
  } catch (error) {
    // Private windows may refuse storage: the choice lasts for this page only.
  }
  applyTheme(mode);
}

// Reset ----------------------------------------------------------------------------------------

function openReset() {
  byId("reset-error").textContent = "";
  byId("reset-token-field").hidden = !sessionStorage.getItem("mail2sms-token-needed");
  byId("reset-dialog").showModal();
}

async function confirmReset(event) {
  event.preventDefault();
  const field = byId("reset-token");
  const typed = field.value.trim();
  if (typed) sessionStorage.setItem("mail2sms-token", typed);
  const token = sessionStorage.getItem("mail2sms-token");
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch("/api/v1/messages", { method: "DELETE", headers });
  } catch (error) {
    byId("reset-error").textContent = `The gateway does not answer: ${error.message}`;
    return;
  }
  if (response.status === 401) {
    sessionStorage.removeItem("mail2sms-token");
    sessionStorage.setItem("mail2sms-token-needed", "1");
    byId("reset-token-field").hidden = false;
    byId("reset-error").textContent = typed ? "That token is not the gateway's." : "";
    field.value = "";
    field.focus();
    return;
  }
  if (!response.ok) {
    byId("reset-error").textContent = `Reset failed: HTTP ${response.status}`;
    return;
  }
  field.value = "";
  byId("reset-dialog").close();
  showHint("");
  resetPaging();
  refreshAll();
}

// Filters and URL ------------------------------------------------------------------------------

function writeUrl() {
  const params = { ...state.filters };
  if (state.detail !== null) params.email = state.detail;
  const tab = byId("panes").dataset.tab;
  if (tab !== "requests") params.tab = tab;
  const search = query(params);
  history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

function readUrl() {
  const params = new URLSearchParams(location.search);
  for (const [name, id] of FILTERS) {
    state.filters[name] = (params.get(name) || "").trim();
    byId(id).value = state.filters[name];
  }
  const email = params.get("email");
  state.detail = /^\d+$/.test(email || "") ? Number(email) : null;
  const tab = params.get("tab");
  showTab(Object.hasOwn(PANES, tab || "") ? tab : "requests");
}

function resetPaging() {
  state.offsets = { sms: 0, replies: 0 };
  state.requestPages = [{ emails: 0, http: 0 }];
  state.groupOffsets = {};
  state.groupPages = {};
}

function filtersChanged() {
  for (const [name, id] of FILTERS) state.filters[name] = byId(id).value.trim();
  const active = activeFilters().length;
  byId("filters-badge").textContent = active ? String(active) : "";
  byId("filters-clear").hidden = active === 0;
  writeUrl();
  resetPaging();
  for (const pane of Object.keys(loaders)) refresh(pane);
}

function setFilter(name, value) {
  const [, id] = FILTERS.find(([n]) => n === name);
  byId(id).value = value;
  if (state.detail !== null) closeDetail();
  filtersChanged();
}

function showTab(tab) {
  byId("panes").dataset.tab = tab;
  for (const node of byId("tabs").querySelectorAll("button")) {
    node.setAttribute("aria-selected", node.dataset.tab === tab);
  }
}

// One line for what went wrong; the pane that caused it clears it once it loads again.
function showHint(text, from) {
  byId("hint").textContent = text;
  state.hintFrom = from || null;
}

// Live updates ---------------------------------------------------------------------------------

function setLive(live) {
  const node = byId("live");
  node.dataset.state = live;
  node.textContent = live;
}

function listen() {
  const source = new EventSource("/api/v1/events");
  source.addEventListener("open", () => {
    // A new stream counts from its own start: its first event reloads everything.
    state.versions = null;
    setLive("live");
  });
  source.addEventListener("error", () => setLive("reconnecting"));
  source.addEventListener("change", (event) => {
    const versions = JSON.parse(event.data);
    const previous = state.versions;
    state.versions = versions;
    setLive("live");
    if (previous === null) {
      refreshAll();
      refreshClock();
      if (state.detail !== null) loadDetail(state.detail);
      return;
    }
    const changed = Object.keys(versions).filter((t) => versions[t] !== previous[t]);
    for (const [pane, topics] of Object.entries(PANES)) {
      if (topics.some((t) => changed.includes(t))) refresh(pane);
    }
    if (changed.includes("clock")) refreshClock();
    // An email once received changes only by its replies' delivery.
    if (state.detail !== null && changed.includes("replies")) loadDetail(state.detail);
  });
}

// Start ----------------------------------------------------------------------------------------

function setUpControls() {
  let timer = null;
  const form = byId("filters");
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(filtersChanged, 250);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    filtersChanged();
  });
  byId("filters-clear").addEventListener("click", () => {
    for (const [, id] of FILTERS) byId(id).value = "";
    filtersChanged();
  });
  byId("filters-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("filters-open");
    byId("filters-toggle").setAttribute("aria-expanded", open);
  });
  byId("tabs").addEventListener("click", (event) => {
    const tab = event.target.closest("button");
    if (!tab) return;
    showTab(tab.dataset.tab);
    writeUrl();
  });
  byId("theme").addEventListener("click", cycleTheme);
  byId("export-csv").addEventListener("click", () => exportSms("csv"));
  byId("export-json").addEventListener("click", () => exportSms("json"));
  byId("detail-close").addEventListener("click", closeDetail);
  byId("detail").addEventListener("close", () => {
    if (state.detail !== null) closeDetail();
  });
  byId("detail").addEventListener("click", (event) => {
    if (event.target === byId("detail")) closeDetail(); // the backdrop
  });
  byId("reset").addEventListener("click", openReset);
  byId("reset-cancel").addEventListener("click", () => byId("reset-dialog").close());
  byId("reset-form").addEventListener("submit", confirmReset);
}

async function start() {
  applyTheme(storedTheme());
  readUrl();
  setUpControls();
  const active = activeFilters().length;
  byId("filters-badge").textContent = active ? String(active) : "";
  byId("filters-clear").hidden = active === 0;
  try {
    const info = await getJson("/api/v1/info");
    state.stopTexts = [info.stop_text, info.stop_http_text];
    state.addresses = info.gateway_addresses;
  } catch (error) {
    showHint(`The gateway does not answer: ${error.message}`);
  }
  if (state.detail !== null) openDetail(state.detail);
  refreshAll();
  refreshClock();
  setInterval(drawClock, 1000);
  listen();
}

start();
