// The live page: three lists fetched from the API, refetched on server-sent change events.
// User data only ever reaches the DOM through textContent (never innerHTML).
"use strict";

const LIMITS = { sms: 200, emails: 100, replies: 100 };
const PARIS = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/Paris", year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const PARIS_TIME = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/Paris", hour: "2-digit", minute: "2-digit", second: "2-digit",
});

const state = {
  stopText: "",
  addresses: [],
  versions: null,
  loading: {},
  dirty: {},
  filters: { number: "", emailId: "" },
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

function badge(text, kind) {
  const node = el("span", "badge", text);
  node.dataset.kind = kind || text;
  return node;
}

function when(iso) {
  return iso ? PARIS.format(new Date(iso)) : "";
}

function prettyNumber(number) {
  return /^0\d{9}$/.test(number) ? number.replace(/(\d\d)(?=\d)/g, "$1 ") : number;
}

// API -----------------------------------------------------------------------------------------

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  return search.toString();
}

async function write(method, path) {
  const send = () => {
    // The gateway takes only JSON writes (a browser page elsewhere cannot forge one).
    const headers = { "Content-Type": "application/json" };
    const token = sessionStorage.getItem("mail2sms-token");
    if (token) headers.Authorization = `Bearer ${token}`;
    return fetch(path, { method, headers });
  };
  let response = await send();
  if (response.status === 401) {
    const token = window.prompt("This gateway needs its admin token (http.admin_token):");
    if (!token) return response;
    sessionStorage.setItem("mail2sms-token", token);
    response = await send();
  }
  return response;
}

// Rendering -----------------------------------------------------------------------------------

function setCount(id, shown, total) {
  document.getElementById(id).textContent =
    total === 0 ? "" : shown < total ? `latest ${shown} of ${total}` : String(total);
}

function empty(text, filtered) {
  return el("p", "empty", filtered ? "Nothing matches the filters." : text);
}

function renderSms(page) {
  const list = document.getElementById("sms-list");
  setCount("sms-count", page.items.length, page.total);
  if (page.items.length === 0) {
    const to = state.addresses[0] || "the gateway address";
    const filtered = Boolean(state.filters.number || state.filters.emailId);
    list.replaceChildren(empty(`No SMS yet. Email an <envoi> request to ${to}.`, filtered));
    return;
  }
  // One phone per number, the most recently texted first; inside, one conversation per
  // sender, oldest message at the top as on a real phone.
  const phones = new Map();
  for (const sms of page.items) {
    if (!phones.has(sms.to)) phones.set(sms.to, new Map());
    const senders = phones.get(sms.to);
    if (!senders.has(sms.sender)) senders.set(sms.sender, []);
    senders.get(sms.sender).push(sms);
  }
  const nodes = [];
  for (const [number, senders] of phones) {
    const phone = el("article", "phone");
    phone.dataset.number = number;
    const count = [...senders.values()].reduce((n, list) => n + list.length, 0);
    append(phone, append(el("header", "phone-bar"),
      el("span", "phone-number", prettyNumber(number)),
      el("span", "phone-count", count === 1 ? "1 SMS" : `${count} SMS`)));
    const screen = el("div", "screen");
    for (const [sender, messages] of senders) {
      const conversation = append(el("section", "conversation"), el("h3", "sender", sender));
      for (const sms of [...messages].reverse()) conversation.appendChild(bubble(sms));
      screen.appendChild(conversation);
    }
    nodes.push(append(phone, screen));
  }
  list.replaceChildren(...nodes);
}

function bubble(sms) {
  const node = el("div", "bubble");
  node.dataset.id = sms.id;
  const suffix = state.stopText ? "\r\n" + state.stopText : null;
  let body = sms.text;
  let stop = null;
  if (suffix && body.endsWith(suffix)) {
    body = body.slice(0, -suffix.length);
    stop = state.stopText;
  }
  node.appendChild(el("p", "text", body));
  if (stop) {
    const mention = el("p", "stop", stop);
    mention.title = "STOP mention added by the gateway (custom sender)";
    node.appendChild(mention);
  }
  const meta = [
    PARIS_TIME.format(new Date(sms.created_at)),
    sms.parts === 1 ? "1 part" : `${sms.parts} parts`,
    sms.encoding === "ucs2" ? "UCS-2" : "GSM 7-bit",
  ];
  if (sms.email_id) meta.push(`emailId ${sms.email_id}`);
  if (sms.tracker) meta.push(`tracker ${sms.tracker}`);
  node.appendChild(el("p", "meta", meta.join(" · ")));
  node.title = `${when(sms.created_at)} — account ${sms.account}`;
  return node;
}

function field(list, name, value) {
  if (value === null || value === undefined || value === "") return;
  append(list, el("dt", "", name), el("dd", "", value));
}

function renderEmails(page) {
  const list = document.getElementById("emails-list");
  setCount("emails-count", page.items.length, page.total);
  if (page.items.length === 0) {
    list.replaceChildren(empty("No inbound email yet.", Boolean(state.filters.emailId)));
    return;
  }
  list.replaceChildren(...page.items.map((email) => {
    const card = el("article", "card email");
    card.dataset.id = email.id;
    const title = append(el("header", "card-head"),
      badge(email.status.replace("_", " "), email.status),
      el("span", "card-title", email.email_id ? `emailId ${email.email_id}` : "no emailId"),
      el("time", "card-time", when(email.received_at)));
    const facts = el("dl", "facts");
    field(facts, "From", email.sender);
    field(facts, "Account", email.account);
    field(facts, "Subject", email.subject);
    append(card, title, facts);
    if (email.reason || (email.code !== null && email.code !== 0)) {
      const reason = el("p", "reason");
      if (email.code !== null) reason.appendChild(el("span", "reason-code", `code ${email.code}`));
      if (email.reason) reason.appendChild(document.createTextNode(email.reason));
      card.appendChild(reason);
    }
    if (email.results.length > 0) {
      const table = el("table", "results");
      append(table, append(el("tr"), el("th", "", "Number"), el("th", "", "Code"),
        el("th", "", "Message")));
      for (const result of email.results) {
        const row = el("tr", result.code === 0 ? "ok" : "ko");
        append(row, el("td", "tel", result.tel), el("td", "code", result.code),
          el("td", "", result.message));
        table.appendChild(row);
      }
      card.appendChild(table);
    }
    for (const warning of email.warnings) card.appendChild(el("p", "warning", warning));
    const raw = el("a", "raw", "raw message");
    raw.href = email.raw_url;
    raw.target = "_blank";
    raw.rel = "noopener";
    card.appendChild(raw);
    return card;
  }));
}

function renderReplies(page) {
  const list = document.getElementById("replies-list");
  setCount("replies-count", page.items.length, page.total);
  if (page.items.length === 0) {
    list.replaceChildren(empty("No Ack or Not reply yet.", Boolean(state.filters.emailId)));
    return;
  }
  list.replaceChildren(...page.items.map((reply) => {
    const card = el("article", "card reply");
    card.dataset.id = reply.id;
    append(card, append(el("header", "card-head"),
      badge(reply.kind === "ack" ? "Ack" : "Not", reply.kind),
      el("span", "card-title", `to ${reply.to}`),
      badge(reply.state, reply.state)));
    const facts = el("dl", "facts");
    field(facts, "emailId", reply.email_id);
    field(facts, "Queued", when(reply.created_at));
    field(facts, "Delivered", when(reply.delivered_at));
    field(facts, "Attempts", reply.attempts || null);
    field(facts, "Last error", reply.last_error);
    append(card, facts, el("pre", "xml", reply.body));
    return card;
  }));
}

// Loading -------------------------------------------------------------------------------------

const loaders = {
  async sms() {
    const { number, emailId } = state.filters;
    renderSms(await getJson(`/api/v1/sms?${query({
      to: number, email_id: emailId, limit: LIMITS.sms })}`));
  },
  async emails() {
    renderEmails(await getJson(`/api/v1/emails?${query({
      email_id: state.filters.emailId, limit: LIMITS.emails })}`));
  },
  async replies() {
    renderReplies(await getJson(`/api/v1/replies?${query({
      email_id: state.filters.emailId, limit: LIMITS.replies })}`));
  },
};

// One request per list at a time; changes arriving meanwhile cause exactly one more.
async function refresh(topic) {
  if (state.loading[topic]) {
    state.dirty[topic] = true;
    return;
  }
  state.loading[topic] = true;
  try {
    do {
      state.dirty[topic] = false;
      try {
        await loaders[topic]();
      } catch (error) {
        showHint(`Could not load ${topic}: ${error.message}`);
      }
    } while (state.dirty[topic]);
  } finally {
    state.loading[topic] = false;
  }
}

function refreshAll() {
  for (const topic of Object.keys(loaders)) refresh(topic);
}

async function refreshClock() {
  try {
    const clock = await getJson("/api/v1/clock");
    const node = document.getElementById("clock");
    node.textContent = clock.frozen ? `clock frozen at ${when(clock.now)}` : "clock: real time";
    node.dataset.frozen = clock.frozen;
  } catch (error) {
    // The live indicator already says when the gateway is away.
  }
}

function showHint(text) {
  document.getElementById("hint").textContent = text;
}

function setLive(live) {
  const node = document.getElementById("live");
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
      return;
    }
    for (const topic of Object.keys(loaders)) {
      if (versions[topic] !== previous[topic]) refresh(topic);
    }
  });
}

// Controls ------------------------------------------------------------------------------------

function readFilters() {
  // The API normalises numbers itself (+33 6…, 06.01…, spaces).
  state.filters.number = document.getElementById("filter-number").value.trim();
  state.filters.emailId = document.getElementById("filter-email-id").value.trim();
  const params = query({ number: state.filters.number, email_id: state.filters.emailId });
  history.replaceState(null, "", params ? `?${params}` : location.pathname);
  refreshAll();
}

function setUpControls() {
  const params = new URLSearchParams(location.search);
  document.getElementById("filter-number").value = params.get("number") || "";
  document.getElementById("filter-email-id").value = params.get("email_id") || "";
  state.filters.number = params.get("number") || "";
  state.filters.emailId = params.get("email_id") || "";
  let timer = null;
  document.getElementById("filters").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(readFilters, 250);
  });
  document.getElementById("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    readFilters();
  });
  document.getElementById("reset").addEventListener("click", async () => {
    if (!window.confirm("Delete every SMS, inbound email and reply of this gateway?")) return;
    const response = await write("DELETE", "/api/v1/messages");
    if (!response.ok) showHint(`Reset failed: HTTP ${response.status}`);
    else showHint("");
    refreshAll();
  });
}

async function start() {
  setUpControls();
  try {
    const info = await getJson("/api/v1/info");
    state.stopText = info.stop_text;
    state.addresses = info.gateway_addresses;
  } catch (error) {
    showHint(`The gateway does not answer: ${error.message}`);
  }
  refreshAll();
  refreshClock();
  setInterval(refreshClock, 10000);
  listen();
}

start();
