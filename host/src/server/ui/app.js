/*
 * Launch web chat UI.
 *
 * Plain ES2020, no build step, no dependencies. index.html holds the static
 * layout; this script fills it from the HTTP API (docs/http-api.md):
 *
 *   - sessions: list (sidebar), create on the first message of a new chat,
 *     load history with GET /v1/sessions/{id} (newest page; older pages on demand with ?before=), delete;
 *   - turns: POST /v1/sessions/{id}/messages with stream: true, read as
 *     server-sent events through fetch + ReadableStream (EventSource can
 *     neither POST nor send an Authorization header);
 *   - tools and plugins from GET /v1/tools, readiness from GET /readyz;
 *   - auth: on a 401 the user is asked for a key once; it is kept in
 *     sessionStorage (this tab only) and sent as `Authorization: Bearer`.
 *
 * Security rule for this file: text that came from the network (model
 * answers, tool arguments and results, titles, error messages, tool
 * descriptions) only ever reaches the page through textContent, text nodes
 * and validated attributes. Nothing here uses innerHTML, outerHTML,
 * insertAdjacentHTML or document.write; the Markdown renderer below builds
 * elements one by one. The server's CSP (no inline script) is a second wall.
 */
"use strict";

(() => {
  const KEY_STORAGE = "launch.apiKey";
  const DRAWER_STORAGE = "launch.toolsOpen";
  const READY_POLL_MS = 20000;
  // How long a dropped stream's turn is waited for: the server's default turn
  // budget is 120 s, plus room for a queue and a slow store.
  const RECOVER_LIMIT_MS = 10 * 60 * 1000;

  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $("app"),
    sidebar: $("sidebar"),
    scrim: $("scrim"),
    sessionList: $("session-list"),
    newChat: $("new-chat"),
    statusButton: $("status-button"),
    statusDot: $("status-dot"),
    statusTitle: $("status-title"),
    statusDetail: $("status-detail"),
    forgetKey: $("forget-key"),
    menuToggle: $("menu-toggle"),
    chatTitle: $("chat-title"),
    modelPill: $("model-pill"),
    memoryPill: $("memory-pill"),
    toolsToggle: $("tools-toggle"),
    toolCount: $("tool-count"),
    banners: $("banners"),
    messages: $("messages"),
    empty: $("empty"),
    emptySub: $("empty-sub"),
    suggestions: $("suggestions"),
    thread: $("thread"),
    composer: $("composer"),
    input: $("input"),
    send: $("send"),
    drawer: $("tools-drawer"),
    toolsClose: $("tools-close"),
    serverCard: $("server-card"),
    toolList: $("tool-list"),
    authDialog: $("auth-dialog"),
    authForm: $("auth-form"),
    authKey: $("auth-key"),
    authError: $("auth-error"),
  };

  const state = {
    sessions: [],
    hasMore: false, // older sessions exist beyond the list
    current: null, // id of the open session; null for a new chat not yet saved
    lastTurnId: 0, // id of the open session's newest stored turn (to spot a recovered turn)
    busy: false, // a turn of this tab is running
    view: 0, // bumped on every session switch, so late answers for the old one are dropped
    ready: null,
    tools: [],
    followOutput: true, // keep scrolled to the bottom while the answer grows
  };

  /* ------------------------------------------------------------------ */
  /* DOM helpers                                                          */
  /* ------------------------------------------------------------------ */

  /** Creates an element with a class and optional text (as textContent). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  // Fixed icon paths (constants of this file, never network text).
  const ICONS = {
    check: "M4.5 10.5l3.5 3.5 7.5-8",
    cross: "M5.5 5.5l9 9M14.5 5.5l-9 9",
    chevron: "M7.5 5l5 5-5 5",
    trash: "M4.5 6h11M8 6V4.5h4V6M6 6l.7 9.5h6.6L14 6",
    tool: "M12.5 3.5a4 4 0 0 0-4.9 5.1L3.5 12.7a1.5 1.5 0 0 0 2.1 2.1l4.1-4.1a4 4 0 0 0 5.1-4.9l-2.3 2.3-2-.4-.4-2z",
    retry: "M15.5 10a5.5 5.5 0 1 1-1.6-3.9M15.5 3.5v3.2h-3.2",
    copy: "M7 7h8.5v8.5H7zM4.5 12.5v-8h8",
    warn: "M10 3.5l7 12.5H3zM10 8.5v3.5M10 14v.01",
    info: "M10 17a7 7 0 1 0 0-14 7 7 0 0 0 0 14zM10 9v4.5M10 6.5v.01",
  };

  function icon(name, className) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 20 20");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("class", className ? `icon ${className}` : "icon");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("d", ICONS[name]);
    svg.append(path);
    return svg;
  }

  /**
   * Appends server text (error messages, hints) with `backtick spans` and
   * SETTING_NAMES set in <code>, so what to type stands out.
   */
  function richText(parent, text) {
    const re = /`([^`\n]+)`|\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
      parent.append(el("code", "inline-code", m[1] !== undefined ? m[1] : m[2]));
      last = re.lastIndex;
    }
    if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
    return parent;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function formatDuration(ms) {
    if (typeof ms !== "number" || !isFinite(ms)) return "";
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 10) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  }

  function relativeTime(ms) {
    const diff = Date.now() - ms;
    if (diff < 45 * 1000) return "just now";
    if (diff < 60 * 60 * 1000) return `${Math.max(1, Math.round(diff / 60000))} min ago`;
    if (diff < 24 * 60 * 60 * 1000) return `${Math.round(diff / 3600000)} h ago`;
    if (diff < 7 * 24 * 60 * 60 * 1000) return `${Math.round(diff / 86400000)} d ago`;
    return new Date(ms).toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
  }

  /** Pretty JSON for display; strings are shown as they are (no quotes or escapes). */
  function prettyValue(value) {
    if (typeof value === "string") return value;
    try {
      return JSON.stringify(value, null, 2);
    } catch {
      return String(value);
    }
  }

  /** A one-line preview of tool arguments for the collapsed step. */
  function argsPreview(args) {
    if (args && typeof args === "object" && !Array.isArray(args)) {
      return Object.entries(args)
        .map(([k, v]) => `${k}: ${typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v)}`)
        .join(", ");
    }
    return typeof args === "string" ? args : JSON.stringify(args);
  }

  /* ------------------------------------------------------------------ */
  /* Markdown: a small renderer that builds DOM nodes, never HTML strings */
  /* ------------------------------------------------------------------ */

  const MAX_DEPTH = 8; // nested quotes/lists deeper than this render as text

  const RE = {
    blank: /^\s*$/,
    fence: /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/,
    heading: /^ {0,3}(#{1,6})(?:\s+(.*?))?(?:\s+#+)?\s*$/,
    hr: /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/,
    quote: /^ {0,3}> ?(.*)$/,
    item: /^( {0,12})([-*+]|\d{1,9}[.)])(?:\s+(.*))?$/,
    tableSep: /^\s*\|?\s*:?-{1,}:?\s*(?:\|\s*:?-{1,}:?\s*)*\|?\s*$/,
  };

  // Chat answers keep their line breaks (as chat UIs do); hard-wrapped
  // documentation (tool descriptions) reads better with them as spaces.
  let softBreaks = false;

  /** Renders Markdown `src` into `container` (whose children are replaced). */
  function renderMarkdown(src, container, options = {}) {
    clear(container);
    const lines = String(src).replace(/\r\n?/g, "\n").split("\n");
    softBreaks = !!options.softBreaks;
    try {
      renderBlocks(lines, container, 0);
    } finally {
      softBreaks = false;
    }
  }

  function startsBlock(line, next) {
    return (
      RE.fence.test(line) ||
      RE.heading.test(line) ||
      RE.hr.test(line) ||
      RE.quote.test(line) ||
      /^ {0,3}([-*+]|\d{1,9}[.)])\s+\S/.test(line) ||
      (line.includes("|") && next !== undefined && RE.tableSep.test(next) && next.includes("-"))
    );
  }

  function renderBlocks(lines, parent, depth) {
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (RE.blank.test(line)) {
        i++;
        continue;
      }
      if (depth > MAX_DEPTH) {
        // Pathologically nested input: show the rest as plain text.
        parent.append(el("p", null, lines.slice(i).join("\n")));
        return;
      }
      let m;

      if ((m = line.match(RE.fence))) {
        const fence = m[1];
        const closing = new RegExp(`^ {0,3}${fence[0] === "`" ? "`" : "~"}{${fence.length},}\\s*$`);
        const body = [];
        i++;
        // An unclosed fence runs to the end (as it does while still streaming).
        while (i < lines.length && !closing.test(lines[i])) body.push(lines[i++]);
        i++;
        parent.append(codeBlock(body.join("\n"), m[2]));
        continue;
      }

      if ((m = line.match(RE.heading))) {
        const h = el(`h${m[1].length}`, "md-h");
        renderInline(m[2] || "", h);
        parent.append(h);
        i++;
        continue;
      }

      if (RE.hr.test(line)) {
        parent.append(el("hr"));
        i++;
        continue;
      }

      if (RE.quote.test(line)) {
        const inner = [];
        while (i < lines.length && (m = lines[i].match(RE.quote))) {
          inner.push(m[1]);
          i++;
        }
        const quote = el("blockquote");
        renderBlocks(inner, quote, depth + 1);
        parent.append(quote);
        continue;
      }

      if (line.includes("|") && i + 1 < lines.length && RE.tableSep.test(lines[i + 1]) && lines[i + 1].includes("-")) {
        i = renderTable(lines, i, parent);
        continue;
      }

      if ((m = line.match(RE.item)) && m[3] !== undefined) {
        i = renderList(lines, i, parent, depth);
        continue;
      }

      // A paragraph: up to a blank line or the start of another block.
      const para = [line];
      i++;
      while (i < lines.length && !RE.blank.test(lines[i]) && !startsBlock(lines[i], lines[i + 1])) {
        para.push(lines[i]);
        i++;
      }
      const p = el("p");
      renderInline(para.map((l) => l.trim()).join(softBreaks ? " " : "\n"), p);
      parent.append(p);
    }
  }

  /** Renders the list starting at lines[start]; returns the index after it. */
  function renderList(lines, start, parent, depth) {
    const first = lines[start].match(RE.item);
    const indent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const list = el(ordered ? "ol" : "ul");
    if (ordered) {
      const n = parseInt(first[2], 10);
      if (n !== 1) list.start = n;
    }
    let i = start;
    let loose = false;
    const items = [];
    while (i < lines.length) {
      const m = lines[i].match(RE.item);
      if (!m || m[3] === undefined || m[1].length > indent + 1 || /\d/.test(m[2]) !== ordered) break;
      if (m[1].length < indent) break;
      // The item's own lines: the first, then anything indented past the
      // marker (nested lists, continued paragraphs), dedented.
      const contentIndent = m[1].length + m[2].length + 1;
      const body = [m[3]];
      i++;
      while (i < lines.length) {
        const l = lines[i];
        if (RE.blank.test(l)) {
          // A blank line continues the item only if indented content follows.
          let j = i + 1;
          while (j < lines.length && RE.blank.test(lines[j])) j++;
          if (j < lines.length && leadingSpaces(lines[j]) >= contentIndent) {
            for (; i < j; i++) body.push("");
            loose = true;
            continue;
          }
          const next = j < lines.length ? lines[j].match(RE.item) : null;
          if (next && next[1].length <= indent + 1 && /\d/.test(next[2]) === ordered) loose = true;
          break;
        }
        if (leadingSpaces(l) >= Math.min(contentIndent, indent + 2)) {
          body.push(l.slice(Math.min(leadingSpaces(l), contentIndent)));
          i++;
          continue;
        }
        // Lazy continuation of the item's paragraph.
        if (!startsBlock(l, lines[i + 1])) {
          body.push(l.trim());
          i++;
          continue;
        }
        break;
      }
      items.push(body);
      while (i < lines.length && RE.blank.test(lines[i])) {
        const m2 = i + 1 < lines.length ? lines[i + 1].match(RE.item) : null;
        if (m2 && m2[1].length <= indent + 1 && /\d/.test(m2[2]) === ordered) i++;
        else break;
      }
    }
    for (const body of items) {
      const li = el("li");
      renderBlocks(body, li, depth + 1);
      // Tight lists show their text without paragraph margins.
      if (!loose) {
        for (const child of Array.from(li.children)) {
          if (child.tagName !== "P") continue;
          while (child.firstChild) li.insertBefore(child.firstChild, child);
          li.removeChild(child);
        }
      }
      list.append(li);
    }
    parent.append(list);
    return i;
  }

  function leadingSpaces(line) {
    const m = line.match(/^ */);
    return m ? m[0].length : 0;
  }

  function splitRow(line) {
    let s = line.trim();
    if (s.startsWith("|")) s = s.slice(1);
    if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
    return s.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, "|"));
  }

  function renderTable(lines, start, parent) {
    const head = splitRow(lines[start]);
    const aligns = splitRow(lines[start + 1]).map((c) =>
      c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : c.startsWith(":") ? "left" : ""
    );
    const table = el("table");
    const thead = el("thead");
    const hr = el("tr");
    head.forEach((cell, k) => {
      const th = el("th", aligns[k] ? `align-${aligns[k]}` : null);
      renderInline(cell, th);
      hr.append(th);
    });
    thead.append(hr);
    table.append(thead);
    const tbody = el("tbody");
    let i = start + 2;
    while (i < lines.length && !RE.blank.test(lines[i]) && lines[i].includes("|")) {
      const cells = splitRow(lines[i]);
      const tr = el("tr");
      for (let k = 0; k < head.length; k++) {
        const td = el("td", aligns[k] ? `align-${aligns[k]}` : null);
        renderInline(cells[k] || "", td);
        tr.append(td);
      }
      tbody.append(tr);
      i++;
    }
    table.append(tbody);
    const wrap = el("div", "table-wrap");
    wrap.append(table);
    parent.append(wrap);
    return i;
  }

  function codeBlock(text, lang) {
    const wrap = el("div", "code-block");
    const head = el("div", "code-head");
    head.append(el("span", "code-lang", lang || "text"));
    const copy = el("button", "code-copy");
    copy.type = "button";
    copy.append(icon("copy"), document.createTextNode("Copy"));
    copy.addEventListener("click", () => copyText(text, copy));
    head.append(copy);
    const pre = el("pre");
    pre.append(el("code", null, text));
    wrap.append(head, pre);
    return wrap;
  }

  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
      button.lastChild.textContent = "Copied";
    } catch {
      button.lastChild.textContent = "Copy failed";
    }
    setTimeout(() => (button.lastChild.textContent = "Copy"), 1500);
  }

  // Inline syntax, earliest match first. Groups:
  //  1 escaped char | 2,3 code span | 4,5 link | 6 **strong** | 7 __strong__
  //  8 ~~del~~ | 9 *em* | 10 _em_ | 11 bare http(s) URL
  const INLINE = new RegExp(
    [
      "\\\\([\\\\`*_{}\\[\\]()#+\\-.!~|<>])",
      "(`+)([^`]|[^`][\\s\\S]*?[^`])\\2(?!`)",
      "\\[([^\\]\\n]+)\\]\\(\\s*<?([^\\s()<>]*(?:\\([^\\s()<>]*\\)[^\\s()<>]*)*)>?(?:\\s+\"[^\"\\n]*\")?\\s*\\)",
      "\\*\\*(?=\\S)([\\s\\S]*?\\S)\\*\\*",
      "(?<![\\p{L}\\p{N}_])__(?=\\S)([\\s\\S]*?\\S)__(?![\\p{L}\\p{N}_])",
      "~~(?=\\S)([\\s\\S]*?\\S)~~",
      "\\*(?=[^\\s*])([^*\\n]*?[^\\s*])\\*",
      "(?<![\\p{L}\\p{N}_])_(?=[^\\s_])([^_\\n]*?[^\\s_])_(?![\\p{L}\\p{N}_])",
      "(https?:\\/\\/[^\\s<>\"'`]*[^\\s<>\"'`.,;:!?)\\]}*_~])",
    ].join("|"),
    "gu"
  );

  /** Only absolute http(s) URLs become links; anything else stays text. */
  function safeUrl(raw) {
    try {
      const url = new URL(raw);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function link(url, parent) {
    const a = el("a");
    a.href = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    parent.append(a);
    return a;
  }

  /** Appends text, turning newlines into <br>. */
  function addText(parent, text) {
    const parts = text.split("\n");
    parts.forEach((part, k) => {
      if (k > 0) parent.append(el("br"));
      if (part) parent.append(document.createTextNode(part));
    });
  }

  function renderInline(text, parent, depth = 0) {
    if (depth > MAX_DEPTH) {
      addText(parent, text);
      return;
    }
    const re = new RegExp(INLINE.source, INLINE.flags);
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) addText(parent, text.slice(last, m.index));
      last = re.lastIndex;
      if (m[1] !== undefined) {
        parent.append(document.createTextNode(m[1]));
      } else if (m[2] !== undefined) {
        // Code spans: one surrounding space is padding, per CommonMark.
        let code = m[3].replace(/\n/g, " ");
        if (/^ .*[^ ].* $/.test(code)) code = code.slice(1, -1);
        parent.append(el("code", "md-code", code));
      } else if (m[4] !== undefined) {
        const url = safeUrl(m[5]);
        if (url) renderInline(m[4], link(url, parent), depth + 1);
        else addText(parent, m[0]); // not http(s): shown as the text it is
      } else if (m[6] !== undefined || m[7] !== undefined) {
        const strong = el("strong");
        renderInline(m[6] !== undefined ? m[6] : m[7], strong, depth + 1);
        parent.append(strong);
      } else if (m[8] !== undefined) {
        const del = el("del");
        renderInline(m[8], del, depth + 1);
        parent.append(del);
      } else if (m[9] !== undefined || m[10] !== undefined) {
        const em = el("em");
        renderInline(m[9] !== undefined ? m[9] : m[10], em, depth + 1);
        parent.append(em);
      } else if (m[11] !== undefined) {
        const url = safeUrl(m[11]);
        if (url) link(url, parent).textContent = m[11];
        else addText(parent, m[11]);
      }
      if (m[0].length === 0) re.lastIndex++; // never loop on an empty match
    }
    if (last < text.length) addText(parent, text.slice(last));
  }

  /* ------------------------------------------------------------------ */
  /* API access                                                           */
  /* ------------------------------------------------------------------ */

  class ApiError extends Error {
    constructor(status, message, code, type) {
      super(message);
      this.status = status;
      this.code = code || null;
      this.type = type || null;
    }
  }

  /** Thrown when the server could not be reached at all. */
  class NetworkError extends Error {}

  /** An OpenAI-style error body's message, or the status when there is none. */
  async function errorFrom(res) {
    let message = `The server answered HTTP ${res.status} ${res.statusText || ""}`.trim();
    let code = null;
    let type = null;
    try {
      const body = await res.json();
      if (body && body.error) {
        message = body.error.message || message;
        code = body.error.code;
        type = body.error.type;
      }
    } catch {
      // Not JSON (a proxy's error page, say): the status line says enough.
    }
    const retry = res.headers.get("Retry-After");
    if (retry && res.status === 429) message += ` (retry in ${retry} s)`;
    return new ApiError(res.status, message, code, type);
  }

  function apiKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null;
    }
  }

  /**
   * fetch() against the API with the key, JSON bodies and error handling:
   * resolves to the Response when it is OK, asks for a key and retries on
   * 401, throws ApiError (with the server's message) or NetworkError.
   */
  async function api(path, { method = "GET", body, signal } = {}) {
    for (;;) {
      const headers = { Accept: body !== undefined && body.stream ? "text/event-stream" : "application/json" };
      const key = apiKey();
      if (key) headers.Authorization = `Bearer ${key}`;
      if (body !== undefined) headers["Content-Type"] = "application/json";
      let res;
      try {
        res = await fetch(path, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
          cache: "no-store",
        });
      } catch (e) {
        if (e && e.name === "AbortError") throw e;
        throw new NetworkError("Cannot reach the Launch server. Is it running?");
      }
      if (res.status === 401) {
        const err = await errorFrom(res);
        // Resolves once the user has entered a key; rejects if they dismiss it.
        await askForKey(key ? "That key was not accepted. Check it and try again." : null, err);
        continue;
      }
      if (!res.ok) throw await errorFrom(res);
      return res;
    }
  }

  async function apiJson(path, options) {
    const res = await api(path, options);
    return res.json();
  }

  /* ---- auth dialog: one prompt shared by every request waiting on a key ---- */

  let keyPrompt = null;

  function askForKey(problem, err) {
    if (keyPrompt) return keyPrompt.promise;
    let resolve;
    let reject;
    const promise = new Promise((res, rej) => {
      resolve = res;
      reject = rej;
    });
    keyPrompt = { promise, resolve, reject, err };
    ui.authError.hidden = !problem;
    ui.authError.textContent = problem || "";
    ui.authKey.value = "";
    if (!ui.authDialog.open) ui.authDialog.showModal();
    ui.authKey.focus();
    return promise;
  }

  ui.authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const key = ui.authKey.value.trim();
    if (!key) return;
    try {
      sessionStorage.setItem(KEY_STORAGE, key);
    } catch {
      // Storage disabled: the key cannot persist, nothing more to do here.
    }
    ui.forgetKey.hidden = false;
    ui.authDialog.close();
    const prompt = keyPrompt;
    keyPrompt = null;
    if (prompt) prompt.resolve();
  });

  ui.authDialog.addEventListener("cancel", () => {
    // Escape: stop waiting; the callers show the 401 as an error.
    const prompt = keyPrompt;
    keyPrompt = null;
    if (prompt) {
      const err = prompt.err || new ApiError(401, "An API key is required.");
      prompt.reject(err);
      showBanner("auth", "error", err.message, { label: "Enter key", run: () => boot() });
    }
  });

  ui.forgetKey.addEventListener("click", () => {
    try {
      sessionStorage.removeItem(KEY_STORAGE);
    } catch {
      // nothing stored
    }
    location.reload();
  });

  /* ------------------------------------------------------------------ */
  /* Server-sent events over fetch                                        */
  /* ------------------------------------------------------------------ */

  /**
   * Yields {event, data} for each event of a text/event-stream body, per the
   * SSE format: `event:`/`data:` fields, an empty line ends an event, lines
   * starting with ':' are comments (the server's keep-alives).
   */
  async function* sseEvents(res) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let event = "";
    let data = [];
    let finished = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          finished = true;
          break;
        }
        buf += value;
        for (;;) {
          const nl = buf.search(/\r\n|\r|\n/);
          // A lone '\r' at the end may be the first half of "\r\n".
          if (nl < 0 || (nl === buf.length - 1 && buf[nl] === "\r")) break;
          const line = buf.slice(0, nl);
          buf = buf.slice(buf[nl] === "\r" && buf[nl + 1] === "\n" ? nl + 2 : nl + 1);
          if (line === "") {
            if (data.length) yield { event: event || "message", data: data.join("\n") };
            event = "";
            data = [];
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
        }
      }
    } finally {
      // Left early (the user opened another chat): close the connection.
      // The turn still finishes on the server and is stored.
      if (!finished) reader.cancel().catch(() => {});
      reader.releaseLock();
    }
  }

  /* ------------------------------------------------------------------ */
  /* Banners                                                              */
  /* ------------------------------------------------------------------ */

  /** Shows (or replaces) banner `id`; kind is info, warning or error. */
  function showBanner(id, kind, text, action, options = {}) {
    let banner = ui.banners.querySelector(`[data-banner="${id}"]`);
    if (!banner) {
      banner = el("div", "banner");
      banner.dataset.banner = id;
      ui.banners.append(banner);
    }
    banner.className = `banner banner-${kind}`;
    banner.setAttribute("role", kind === "error" ? "alert" : "status");
    clear(banner);
    banner.append(icon(kind === "info" ? "info" : "warn", "banner-icon"));
    const body = el("div", "banner-body");
    if (options.title) body.append(el("strong", "banner-title", options.title));
    body.append(richText(el("span", "banner-text"), text));
    banner.append(body);
    if (action) {
      const b = el("button", "banner-action", action.label);
      b.type = "button";
      b.addEventListener("click", action.run);
      banner.append(b);
    }
    if (options.dismissible !== false) {
      const close = el("button", "banner-close");
      close.type = "button";
      close.setAttribute("aria-label", "Dismiss");
      close.append(icon("cross"));
      close.addEventListener("click", () => banner.remove());
      banner.append(close);
    }
    return banner;
  }

  function hideBanner(id) {
    const banner = ui.banners.querySelector(`[data-banner="${id}"]`);
    if (banner) banner.remove();
  }

  /** Shows an API or network error that is not tied to one turn. */
  function showError(err, context) {
    if (err && err.name === "AbortError") return;
    if (err instanceof ApiError && err.status === 401) return; // the auth banner says it
    const message = err && err.message ? err.message : String(err);
    showBanner("api", "error", message, null, { title: context });
  }

  /* ------------------------------------------------------------------ */
  /* Readiness and tools                                                  */
  /* ------------------------------------------------------------------ */

  async function loadReadiness() {
    let ready;
    try {
      // /readyz is public and answers 503 with a body while shutting down.
      const key = apiKey();
      const res = await fetch("/readyz", { cache: "no-store", headers: key ? { Authorization: `Bearer ${key}` } : {} });
      if (res.status === 401) {
        // An operator took /readyz out of public_paths: it needs the key,
        // which the first API call asks for; nothing to show until then.
        setStatus("warn", "API key needed", "to read the server status");
        return;
      }
      ready = await res.json();
    } catch {
      state.ready = null;
      setStatus("down", "Server unreachable", "retrying…");
      showBanner("ready", "error", "Cannot reach the Launch server. Retrying every few seconds.", null, {
        title: "Offline",
        dismissible: false,
      });
      return;
    }
    state.ready = ready;
    hideBanner("ready");
    renderReadiness();
  }

  function setStatus(kind, title, detail) {
    ui.statusDot.className = `status-dot status-${kind}`;
    ui.statusTitle.textContent = title;
    ui.statusDetail.textContent = detail || "";
  }

  function renderReadiness() {
    const r = state.ready;
    if (!r) return;
    const llm = r.llm || {};
    const plugins = r.plugins || {};
    plugins.loaded = plugins.loaded || [];
    plugins.failed = plugins.failed || [];
    const memory = r.memory || {};

    if (r.status !== "ready") {
      const why = r.status === "shutting_down" ? "The server is shutting down." : `The server is not ready (${r.status}).`;
      const store = r.store && r.store.error ? ` Store: ${r.store.error}` : "";
      showBanner("ready", "error", why + store, null, { title: "Not ready", dismissible: false });
      setStatus("down", "Not ready", r.status);
    } else if (!llm.configured) {
      setStatus("warn", "No LLM configured", `${plugins.loaded.length} plugins`);
    } else {
      setStatus("ok", "Ready", `${llm.model || "model"} · ${plugins.loaded.length} plugins`);
    }

    if (llm.configured === false) {
      // The hint says which variable to set, e.g. "set LAUNCH_LLM_API_KEY (or ...)".
      const hint = llm.hint || "set LAUNCH_LLM_API_KEY";
      showBanner(
        "llm",
        "warning",
        `The server has no API key for its LLM provider${llm.provider ? ` (${llm.provider})` : ""}, so it cannot answer messages. To fix it, ${hint} in the server's environment and restart it. Tools can still be browsed.`,
        null,
        { title: "No LLM key configured", dismissible: false }
      );
    } else {
      hideBanner("llm");
    }

    if (plugins.failed && plugins.failed.length) {
      const names = plugins.failed.map((f) => `${baseName(f.path)}: ${f.error}`).join("; ");
      showBanner("plugins", "warning", names, null, {
        title: `${plugins.failed.length} plugin${plugins.failed.length > 1 ? "s" : ""} failed to load`,
      });
    } else {
      hideBanner("plugins");
    }

    ui.modelPill.hidden = !llm.model;
    ui.modelPill.textContent = llm.model || "";
    ui.modelPill.title = llm.provider ? `Provider: ${llm.provider}` : "";

    // Semantic memory off is worth knowing, not worth alarming anyone over.
    if (memory.semantic_recall === false) {
      ui.memoryPill.hidden = false;
      ui.memoryPill.textContent = "Memory: recent only";
      ui.memoryPill.title = `Semantic memory is off${memory.reason ? `: ${memory.reason}` : ""}. Only the recent conversation is sent to the model.`;
    } else if (memory.semantic_recall) {
      ui.memoryPill.hidden = false;
      ui.memoryPill.textContent = "Memory: semantic";
      ui.memoryPill.title = `Semantic recall with ${memory.embedder || "an embedder"}`;
    } else {
      ui.memoryPill.hidden = true;
    }
    renderServerCard();
    renderSuggestions();
  }

  function baseName(path) {
    return String(path || "").split(/[\\/]/).pop();
  }

  async function loadTools() {
    try {
      const list = await apiJson("/v1/tools");
      state.tools = Array.isArray(list.data) ? list.data : [];
      renderTools();
    } catch (err) {
      state.tools = [];
      clear(ui.toolList);
      ui.toolList.append(el("p", "muted", `Tools could not be loaded: ${err.message}`));
    }
  }

  function renderServerCard() {
    const r = state.ready;
    clear(ui.serverCard);
    if (!r) return;
    const plugins = r.plugins || { loaded: [], failed: [] };
    const rows = [
      ["Status", r.status],
      ["Model", r.llm ? `${r.llm.model || "?"}${r.llm.provider ? ` (${r.llm.provider})` : ""}` : "?"],
      ["LLM key", r.llm && r.llm.configured ? "configured" : "missing"],
      ["Plugins", `${(plugins.loaded || []).length} loaded${plugins.failed && plugins.failed.length ? `, ${plugins.failed.length} failed` : ""}`],
      ["Tools", String(r.tools)],
      ["Sessions", r.store && r.store.open ? String(r.store.sessions) : "store unavailable"],
      [
        "Memory",
        r.memory && r.memory.semantic_recall
          ? `semantic (${r.memory.embedder || "?"}, ${r.memory.vectors} vectors)`
          : `recent messages only${r.memory && r.memory.reason ? ` — ${r.memory.reason}` : ""}`,
      ],
    ];
    const dl = el("dl", "server-facts");
    for (const [k, v] of rows) {
      dl.append(el("dt", null, k), el("dd", null, v));
    }
    ui.serverCard.append(el("h3", "drawer-section", "Server"), dl);
  }

  function renderTools() {
    clear(ui.toolList);
    ui.toolCount.textContent = state.tools.length ? String(state.tools.length) : "";
    ui.toolList.append(el("h3", "drawer-section", "Plugins and tools"));
    if (!state.tools.length) {
      ui.toolList.append(el("p", "muted", "No tools are loaded. Put plugins (NAME.wasm + NAME.toml) in the plugins directory."));
      return;
    }
    const byPlugin = new Map();
    for (const t of state.tools) {
      if (!byPlugin.has(t.plugin)) byPlugin.set(t.plugin, []);
      byPlugin.get(t.plugin).push(t);
    }
    for (const [plugin, tools] of byPlugin) {
      const group = el("section", "plugin");
      const head = el("div", "plugin-head");
      head.append(el("span", "plugin-name", plugin), el("span", "plugin-count", `${tools.length} tool${tools.length > 1 ? "s" : ""}`));
      group.append(head);
      for (const t of tools) group.append(toolCard(t));
      ui.toolList.append(group);
    }
    renderSuggestions();
  }

  function toolCard(tool) {
    const card = el("details", "tool");
    const summary = el("summary");
    summary.append(icon("chevron", "chev"), el("span", "tool-name", tool.name));
    const desc = String(tool.description || "");
    const firstLine = desc.split(/\n\s*\n/)[0].replace(/\s+/g, " ").trim();
    summary.append(el("span", "tool-desc", firstLine));
    card.append(summary);
    const body = el("div", "tool-body");
    const params = tool.parameters && tool.parameters.properties ? tool.parameters.properties : {};
    const required = new Set((tool.parameters && tool.parameters.required) || []);
    const names = Object.keys(params);
    if (names.length) {
      body.append(el("div", "label", "Parameters"));
      const list = el("ul", "params");
      for (const name of names) {
        const p = params[name] || {};
        const li = el("li");
        li.append(el("code", "param-name", name), el("span", "param-type", schemaType(p)));
        if (required.has(name)) li.append(el("span", "param-req", "required"));
        if (p.description) {
          const d = el("div", "param-desc");
          renderInline(String(p.description).split("\n")[0], d);
          li.append(d);
        }
        list.append(li);
      }
      body.append(list);
    }
    const more = el("div", "tool-doc md");
    renderMarkdown(desc, more, { softBreaks: true });
    body.append(el("div", "label", "Description"), more);
    card.append(body);
    return card;
  }

  /** A short type for a JSON Schema: "string", "array of string | object"... */
  function schemaType(s) {
    if (!s || typeof s !== "object") return "";
    if (Array.isArray(s.type)) return s.type.join(" | ");
    if (s.type === "array") return `array of ${schemaType(s.items) || "any"}`;
    if (s.enum && s.enum.length <= 4) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
    if (s.enum) return s.type || typeof s.enum[0];
    if (s.oneOf || s.anyOf) {
      const kinds = (s.oneOf || s.anyOf).map(schemaType).filter(Boolean);
      return Array.from(new Set(kinds)).join(" | ");
    }
    return s.type || "";
  }

  /* A few starting points, chosen by the plugins that are actually loaded. */
  const SUGGESTIONS = [
    ["calculator", "What is 17.5% of 2,340?"],
    ["clock", "What time is it in Tokyo right now?"],
    ["text", "Turn “Quarterly Report 2024” into a URL slug"],
    ["http-fetch", "Fetch https://example.com and summarize it"],
    ["files", "Which files can you see?"],
  ];

  function renderSuggestions() {
    clear(ui.suggestions);
    const loaded = new Set(state.tools.map((t) => t.plugin));
    const picks = SUGGESTIONS.filter(([p]) => loaded.has(p)).slice(0, 4);
    for (const [, text] of picks) {
      const b = el("button", "suggestion", text);
      b.type = "button";
      b.addEventListener("click", () => {
        ui.input.value = text;
        autosize();
        updateComposer();
        ui.input.focus();
      });
      ui.suggestions.append(b);
    }
    const plugins = Array.from(loaded);
    ui.emptySub.textContent = plugins.length
      ? `Ask anything. The agent can use ${plugins.length} plugin${plugins.length > 1 ? "s" : ""} (${plugins.join(", ")}) and you can inspect every tool call.`
      : "Ask anything. The agent calls its tools when it needs them, and you can see every step.";
  }

  function setDrawer(open, remember = true) {
    ui.app.classList.toggle("drawer-open", open);
    ui.toolsToggle.setAttribute("aria-expanded", String(open));
    if (!remember) return;
    try {
      localStorage.setItem(DRAWER_STORAGE, open ? "1" : "0");
    } catch {
      // preference not kept
    }
  }

  // Below this width the panel covers the chat instead of sitting beside it,
  // so it is closed when the window gets that narrow.
  const narrow = window.matchMedia("(max-width: 1100px)");
  narrow.addEventListener("change", (e) => {
    if (e.matches) setDrawer(false, false);
  });

  /* ------------------------------------------------------------------ */
  /* Sessions                                                             */
  /* ------------------------------------------------------------------ */

  const PAGE = 100;

  async function loadSessions() {
    // A refresh keeps as many sessions as were shown (older pages included).
    const limit = Math.min(200, Math.max(PAGE, state.sessions.length));
    const list = await apiJson(`/v1/sessions?limit=${limit}`);
    state.sessions = Array.isArray(list.data) ? list.data : [];
    state.hasMore = !!list.has_more;
    renderSessions();
  }

  /** The next page of older sessions (the API pages by `updated_at`). */
  async function loadOlderSessions() {
    const last = state.sessions[state.sessions.length - 1];
    if (!last) return;
    try {
      const list = await apiJson(`/v1/sessions?limit=${PAGE}&before=${encodeURIComponent(last.updated_at)}`);
      const known = new Set(state.sessions.map((s) => s.id));
      state.sessions.push(...(list.data || []).filter((s) => !known.has(s.id)));
      state.hasMore = !!list.has_more;
      renderSessions();
    } catch (err) {
      showError(err, "Could not load older chats");
    }
  }

  function sessionTitle(s) {
    return (s && s.title && s.title.trim()) || "Untitled chat";
  }

  function renderSessions() {
    clear(ui.sessionList);
    if (!state.sessions.length) {
      ui.sessionList.append(el("p", "session-empty", "No chats yet. Your conversations will appear here."));
      return;
    }
    for (const s of state.sessions) {
      const item = el("div", "session");
      item.dataset.id = s.id;
      if (s.id === state.current) item.classList.add("active");
      const open = el("button", "session-open");
      open.type = "button";
      open.append(el("span", "session-title", sessionTitle(s)));
      const count = s.message_count || 0;
      open.append(el("span", "session-meta", `${relativeTime(s.updated_at)} · ${count} message${count === 1 ? "" : "s"}`));
      open.addEventListener("click", () => {
        closeSidebar();
        navigate(s.id);
      });
      const del = el("button", "session-delete");
      del.type = "button";
      del.title = "Delete chat";
      del.setAttribute("aria-label", `Delete ${sessionTitle(s)}`);
      del.append(icon("trash"));
      del.addEventListener("click", () => deleteSession(s));
      item.append(open, del);
      ui.sessionList.append(item);
    }
    if (state.hasMore) {
      const more = el("button", "session-more", "Show older chats");
      more.type = "button";
      more.addEventListener("click", loadOlderSessions);
      ui.sessionList.append(more);
    }
  }

  async function deleteSession(s) {
    if (!confirm(`Delete “${sessionTitle(s)}” and its history?`)) return;
    try {
      await api(`/v1/sessions/${encodeURIComponent(s.id)}`, { method: "DELETE" });
      state.sessions = state.sessions.filter((x) => x.id !== s.id);
      if (state.current === s.id) navigate(null);
      renderSessions();
    } catch (err) {
      showError(err, "Could not delete the chat");
    }
  }

  /** Opens session `id` (null: a new chat) and records it in the URL hash. */
  function navigate(id) {
    const hash = id ? `#/s/${encodeURIComponent(id)}` : "#/";
    if (location.hash !== hash) history.pushState(null, "", hash);
    openFromHash();
  }

  function hashSession() {
    const m = location.hash.match(/^#\/s\/([^/]+)$/);
    return m ? decodeURIComponent(m[1]) : null;
  }

  async function openFromHash() {
    const id = hashSession();
    const token = ++state.view;
    state.current = id;
    state.lastTurnId = 0;
    clear(ui.thread);
    hideBanner("api");
    renderSessions();
    updateComposer();
    if (!id) {
      ui.chatTitle.textContent = "New chat";
      document.title = "Launch";
      showEmpty(true);
      ui.input.focus();
      return;
    }
    const known = state.sessions.find((s) => s.id === id);
    ui.chatTitle.textContent = known ? sessionTitle(known) : "Loading…";
    showEmpty(false);
    const loading = el("div", "loading", "Loading conversation…");
    ui.thread.append(loading);
    try {
      const detail = await apiJson(`/v1/sessions/${encodeURIComponent(id)}`);
      if (token !== state.view) return;
      renderHistory(detail);
    } catch (err) {
      if (token !== state.view) return;
      loading.remove();
      if (err instanceof ApiError && err.status === 404) {
        showBanner("api", "error", err.message, { label: "Start a new chat", run: () => navigate(null) }, { title: "Chat not found" });
      } else {
        showError(err, "Could not load the chat");
      }
    }
  }

  function showEmpty(show) {
    ui.empty.hidden = !show;
    ui.messages.classList.toggle("is-empty", show);
  }

  /**
   * Rebuilds the thread from a stored session (GET /v1/sessions/{id}): the
   * newest page of turns; older pages load on demand from a button on top.
   */
  function renderHistory(detail) {
    clear(ui.thread);
    ui.chatTitle.textContent = sessionTitle(detail);
    document.title = `${sessionTitle(detail)} · Launch`;
    const turns = Array.isArray(detail.turns) ? detail.turns : [];
    state.lastTurnId = turns.length ? turns[turns.length - 1].id : 0;
    showEmpty(turns.length === 0);
    prependTurns(detail);
    state.followOutput = true;
    scrollToBottom(true);
  }

  /** Puts a page of stored turns above the thread, with "Load earlier" if more exist. */
  function prependTurns(page) {
    const turns = Array.isArray(page.turns) ? page.turns : [];
    const messages = Array.isArray(page.messages) ? page.messages : [];
    const byTurn = new Map(turns.map((t) => [t.id, []]));
    for (const m of messages) {
      if (!byTurn.has(m.turn_id)) byTurn.set(m.turn_id, []);
      byTurn.get(m.turn_id).push(m);
    }
    const turnsById = new Map(turns.map((t) => [t.id, t]));
    const views = [];
    for (const [turnId, msgs] of byTurn) {
      const view = new TurnView(userText(msgs));
      view.fillFromStored(msgs, turnsById.get(turnId));
      views.push(view.root);
    }
    if (page.has_more && turns.length) {
      views.unshift(loadEarlierButton(turns[0].id));
    }
    ui.thread.prepend(...views);
  }

  function loadEarlierButton(before) {
    const button = el("button", "btn-link load-earlier", "Load earlier messages");
    button.type = "button";
    const id = state.current;
    const token = state.view;
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "Loading…";
      try {
        const page = await apiJson(`/v1/sessions/${encodeURIComponent(id)}?before=${before}`);
        if (token !== state.view) return;
        // Keep the reader's place: what was on screen stays on screen.
        const fromBottom = ui.messages.scrollHeight - ui.messages.scrollTop;
        button.remove();
        prependTurns(page);
        ui.messages.scrollTop = ui.messages.scrollHeight - fromBottom;
      } catch (err) {
        button.disabled = false;
        button.textContent = "Load earlier messages";
        showError(err, "Could not load earlier messages");
      }
    });
    return button;
  }

  function userText(msgs) {
    const user = msgs.find((m) => m.role === "user");
    return user ? user.content || "" : null;
  }

  /* ------------------------------------------------------------------ */
  /* A turn on screen: the user's message and the assistant's answer      */
  /* ------------------------------------------------------------------ */

  class TurnView {
    constructor(userContent) {
      this.root = el("div", "turn");
      if (userContent !== null && userContent !== undefined) {
        const user = el("div", "msg msg-user");
        user.append(el("div", "bubble", userContent));
        this.root.append(user);
      }
      const assistant = el("div", "msg msg-assistant");
      const avatar = el("div", "avatar");
      avatar.setAttribute("aria-hidden", "true");
      this.body = el("div", "assistant-body");
      this.status = el("div", "turn-status");
      this.status.hidden = true;
      this.meta = el("div", "turn-meta");
      this.meta.hidden = true;
      assistant.append(avatar, this.body);
      this.body.append(this.status, this.meta);
      this.root.append(assistant);
      this.segment = null; // the text segment deltas go to
      this.steps = new Map(); // call id -> step element
      this.pending = false;
      this.started = performance.now();
    }

    /** The "thinking" dots shown until the first event arrives. */
    thinking(on) {
      if (on && !this.dots) {
        this.dots = el("div", "thinking");
        this.dots.setAttribute("aria-label", "Thinking");
        this.dots.append(el("span"), el("span"), el("span"));
        this.body.insertBefore(this.dots, this.status);
      } else if (!on && this.dots) {
        this.dots.remove();
        this.dots = null;
      }
    }

    newSegment() {
      this.segment = { text: "", node: el("div", "md") };
      this.body.insertBefore(this.segment.node, this.status);
      return this.segment;
    }

    appendText(text) {
      this.thinking(false);
      const seg = this.segment || this.newSegment();
      seg.text += text;
      this.scheduleRender();
    }

    // Markdown is re-rendered at most once a frame, however fast deltas come.
    scheduleRender() {
      if (this.pending) return;
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.renderSegment(true);
      });
    }

    renderSegment(streaming) {
      const seg = this.segment;
      if (!seg) return;
      renderMarkdown(seg.text, seg.node);
      if (streaming && this.streaming) {
        let target = seg.node;
        while (target.lastElementChild && !["BR", "HR", "TABLE"].includes(target.lastElementChild.tagName)) {
          target = target.lastElementChild;
        }
        target.append(el("span", "caret"));
      }
      scrollToBottom();
    }

    /** A tool step, collapsed; `data` is a tool_started or tool_finished event or a stored step. */
    step(data) {
      this.thinking(false);
      if (this.segment) this.renderSegment(false);
      this.segment = null; // text after a tool call starts a new segment
      let node = this.steps.get(data.id);
      if (!node) {
        node = el("details", "step step-running");
        node.dataset.tool = data.name || "";
        const summary = el("summary");
        node.summaryIcon = el("span", "step-icon");
        node.summaryName = el("span", "step-name", data.name);
        node.summaryArgs = el("span", "step-args");
        node.summaryState = el("span", "step-state", "running…");
        summary.append(icon("chevron", "chev"), node.summaryIcon, node.summaryName, node.summaryArgs, node.summaryState);
        node.append(summary);
        node.content = el("div", "step-body");
        node.append(node.content);
        this.body.insertBefore(node, this.status);
        if (data.id) this.steps.set(data.id, node);
      }
      node.summaryArgs.textContent = argsPreview(data.arguments);
      clear(node.content);
      node.content.append(section("Arguments", prettyValue(data.arguments), "json"));
      const finished = "result" in data || "error" in data;
      if (finished) {
        const failed = !!data.error;
        node.className = `step ${failed ? "step-error" : "step-ok"}`;
        clear(node.summaryIcon);
        node.summaryIcon.append(icon(failed ? "cross" : "check"));
        node.summaryState.textContent = failed
          ? `${data.error.code || "error"} · ${formatDuration(data.duration_ms)}`
          : formatDuration(data.duration_ms);
        if (failed) {
          const err = el("div", "step-section");
          err.append(el("div", "label", `Error${data.error.code ? ` · ${data.error.code}` : ""}`));
          err.append(el("pre", "step-pre step-pre-error", data.error.message || ""));
          node.content.append(err);
        } else {
          node.content.append(section(typeof data.result === "string" ? "Result (text)" : "Result", prettyValue(data.result), "json"));
        }
        if (typeof data.duration_ms === "number") {
          node.content.append(el("div", "step-duration", `Took ${formatDuration(data.duration_ms)}`));
        }
      }
      scrollToBottom();
      return node;
    }

    /** Fills the view from stored messages of one turn and its StoredTurn. */
    fillFromStored(msgs, turn) {
      const steps = new Map(((turn && turn.steps) || []).map((s) => [s.id, s]));
      const results = new Map(msgs.filter((m) => m.role === "tool").map((m) => [m.tool_call_id, m.content]));
      for (const m of msgs) {
        if (m.role !== "assistant") continue;
        if (m.content) {
          this.newSegment().text = m.content;
          this.renderSegment(false);
        }
        for (const call of m.tool_calls || []) {
          const stored = steps.get(call.id);
          if (stored) {
            this.step(stored);
          } else {
            // A step missing from the turn record: rebuild it from the messages.
            let args = call.function && call.function.arguments;
            try {
              args = JSON.parse(args);
            } catch {
              // keep the raw text
            }
            this.step({ id: call.id, name: call.function && call.function.name, arguments: args, result: results.get(call.id) });
          }
        }
      }
      this.finish(turn ? { finish_reason: turn.finish_reason, duration_ms: turn.duration_ms, usage: { prompt_tokens: turn.prompt_tokens, completion_tokens: turn.completion_tokens }, steps: turn.steps } : null);
    }

    setStatus(text, kind) {
      clear(this.status);
      if (!text) {
        this.status.hidden = true;
        return;
      }
      this.status.hidden = false;
      this.status.className = `turn-status status-${kind || "info"}`;
      if (kind === "reconnecting") this.status.append(el("span", "spinner"));
      this.status.append(el("span", null, text));
    }

    /** The end of a turn: metadata line, unusual finish reasons. */
    finish(done) {
      this.streaming = false;
      this.thinking(false);
      if (this.segment) this.renderSegment(false);
      for (const [, node] of this.steps) {
        if (node.classList.contains("step-running")) {
          node.className = "step step-error";
          node.summaryState.textContent = "no result";
        }
      }
      if (!done) return;
      const parts = [];
      const steps = done.steps ? done.steps.length : this.steps.size;
      if (steps) parts.push(`${steps} tool call${steps > 1 ? "s" : ""}`);
      const ms = typeof done.duration_ms === "number" ? done.duration_ms : performance.now() - this.started;
      parts.push(formatDuration(ms));
      const u = done.usage || {};
      const tokens = (u.prompt_tokens || 0) + (u.completion_tokens || 0);
      if (tokens) parts.push(`${tokens.toLocaleString()} tokens`);
      const reason = done.finish_reason;
      const notes = {
        length: "The answer was cut off: the model hit its token limit.",
        max_iterations: "Stopped after the maximum number of tool rounds.",
        timeout: "Stopped: the turn ran out of time.",
      };
      if (reason && notes[reason]) {
        this.setStatus(notes[reason], "warning");
      }
      if (!this.body.querySelector(".md") && !this.steps.size) {
        this.newSegment().node.append(el("p", "muted", "(empty answer)"));
      }
      this.meta.textContent = parts.join(" · ");
      this.meta.hidden = false;
    }

    /** An error for this turn, with the server's message and a retry button. */
    fail(err, retry) {
      this.finish(null);
      this.setStatus(null);
      const card = el("div", "turn-error");
      card.setAttribute("role", "alert");
      card.append(icon("warn", "banner-icon"));
      const text = el("div", "turn-error-body");
      const titles = {
        llm_not_configured: "No LLM key configured",
        llm_error: "The model provider failed",
        llm_timeout: "The model provider timed out",
        server_busy: "The server is busy",
        rate_limit_exceeded: "Too many requests",
      };
      const title = titles[err.code] || (err.status ? `Request failed (HTTP ${err.status})` : "The answer failed");
      text.append(el("strong", null, title), richText(el("div", "turn-error-text"), err.message));
      card.append(text);
      if (retry) {
        const b = el("button", "btn-small");
        b.type = "button";
        b.append(icon("retry"), document.createTextNode("Retry"));
        b.addEventListener("click", () => {
          this.root.remove();
          retry();
        });
        card.append(b);
      }
      this.body.insertBefore(card, this.status);
      scrollToBottom();
    }
  }

  function section(label, text, kind) {
    const box = el("div", "step-section");
    box.append(el("div", "label", label));
    box.append(el("pre", `step-pre ${kind ? `step-pre-${kind}` : ""}`, text));
    return box;
  }

  /* ------------------------------------------------------------------ */
  /* Sending a message                                                    */
  /* ------------------------------------------------------------------ */

  function titleFrom(text) {
    const oneLine = text.replace(/\s+/g, " ").trim();
    const chars = Array.from(oneLine);
    return chars.length > 60 ? `${chars.slice(0, 57).join("")}…` : oneLine;
  }

  async function sendMessage(text) {
    if (state.busy || !text.trim()) return;
    state.busy = true;
    updateComposer();
    hideBanner("api");
    const token = state.view;
    showEmpty(false);
    const view = new TurnView(text);
    ui.thread.append(view.root);
    view.streaming = true;
    view.thinking(true);
    state.followOutput = true;
    scrollToBottom(true);
    let id = state.current;
    try {
      if (!id) {
        const created = await apiJson("/v1/sessions", { method: "POST", body: { title: titleFrom(text) } });
        id = created.id;
        state.current = id;
        state.lastTurnId = 0;
        state.sessions.unshift(created);
        // Record the new chat in the URL without reloading the view.
        history.replaceState(null, "", `#/s/${encodeURIComponent(id)}`);
        ui.chatTitle.textContent = sessionTitle(created);
        document.title = `${sessionTitle(created)} · Launch`;
        renderSessions();
      }
      await streamTurn(id, text, view, token);
    } catch (err) {
      if (token === state.view) view.fail(err, () => sendMessage(text));
    } finally {
      state.busy = false;
      updateComposer();
      refreshSessions();
      loadReadiness(); // session count and store status in the panel
    }
  }

  /** Posts the message and renders the event stream; recovers a dropped one. */
  async function streamTurn(id, text, view, token) {
    const before = state.lastTurnId;
    const res = await api(`/v1/sessions/${encodeURIComponent(id)}/messages`, {
      method: "POST",
      body: { content: text, stream: true },
    });
    let ended = false;
    try {
      for await (const { event, data } of sseEvents(res)) {
        if (token !== state.view) return; // the user opened another chat
        let payload;
        try {
          payload = JSON.parse(data);
        } catch {
          continue; // not one of the documented events
        }
        if (event === "delta") {
          if (typeof payload.content === "string") view.appendText(payload.content);
        } else if (event === "tool_started" || event === "tool_finished") {
          view.step(payload);
        } else if (event === "done") {
          ended = true;
          if (typeof payload.turn_id === "number") state.lastTurnId = payload.turn_id;
          reconcile(view, payload);
          view.finish(payload);
        } else if (event === "error") {
          ended = true;
          const e = payload.error || {};
          view.fail(new ApiError(0, e.message || "The turn failed.", e.code, e.type), () => sendMessage(text));
        }
      }
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      // The connection dropped mid-stream; the turn goes on on the server.
    }
    if (!ended && token === state.view) await recoverTurn(id, before, view, token);
  }

  /** Shows the stored answer if no delta carried it (a provider that does not stream). */
  function reconcile(view, done) {
    const final = done && done.message && typeof done.message.content === "string" ? done.message.content : "";
    if (final && !view.body.querySelector(".md")) view.newSegment().text = final;
  }

  /**
   * After a dropped stream: the server finishes and stores the turn anyway,
   * so poll the session until a new turn shows up, then show it.
   */
  async function recoverTurn(id, before, view, token) {
    view.setStatus("Connection lost — reconnecting…", "reconnecting");
    const started = Date.now();
    let delay = 800;
    while (Date.now() - started < RECOVER_LIMIT_MS) {
      await sleep(delay);
      if (token !== state.view) return;
      delay = Math.min(delay * 1.5, 5000);
      let detail;
      try {
        detail = await apiJson(`/v1/sessions/${encodeURIComponent(id)}`);
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) break;
        continue; // still unreachable: keep trying
      }
      if (token !== state.view) return;
      const turns = detail.turns || [];
      const turn = turns[turns.length - 1];
      if (turn && turn.id > before) {
        const msgs = (detail.messages || []).filter((m) => m.turn_id === turn.id);
        const fresh = new TurnView(userText(msgs));
        view.root.replaceWith(fresh.root);
        fresh.fillFromStored(msgs, turn);
        state.lastTurnId = turn.id;
        scrollToBottom(true);
        return;
      }
    }
    view.setStatus(null);
    view.fail(
      new ApiError(0, "The connection was lost and the answer has not been stored yet. It may still arrive: reopen the chat to check."),
      null
    );
  }

  /** Refreshes the session list quietly (counts and order change after a turn). */
  async function refreshSessions() {
    try {
      await loadSessions();
    } catch {
      // A failed refresh leaves the list as it was.
    }
  }

  /* ------------------------------------------------------------------ */
  /* Composer, scrolling, layout                                          */
  /* ------------------------------------------------------------------ */

  function updateComposer() {
    ui.send.disabled = state.busy || !ui.input.value.trim();
    ui.composer.classList.toggle("is-busy", state.busy);
  }

  function autosize() {
    // CSSOM writes are allowed by the CSP (only inline style attributes are not).
    ui.input.style.height = "auto";
    ui.input.style.height = `${Math.min(ui.input.scrollHeight, 220)}px`;
  }

  function scrollToBottom(force) {
    if (!force && !state.followOutput) return;
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  ui.messages.addEventListener("scroll", () => {
    // Reading older output stops the auto-scroll; coming back resumes it.
    const gap = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight;
    state.followOutput = gap < 80;
  });

  ui.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = ui.input.value;
    if (!text.trim() || state.busy) return;
    ui.input.value = "";
    autosize();
    updateComposer();
    sendMessage(text);
  });

  ui.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      ui.composer.requestSubmit();
    }
  });

  ui.input.addEventListener("input", () => {
    autosize();
    updateComposer();
  });

  ui.newChat.addEventListener("click", () => {
    closeSidebar();
    navigate(null);
  });

  ui.toolsToggle.addEventListener("click", () => setDrawer(!ui.app.classList.contains("drawer-open")));
  ui.toolsClose.addEventListener("click", () => setDrawer(false));
  ui.statusButton.addEventListener("click", () => setDrawer(true));

  function closeSidebar() {
    ui.app.classList.remove("sidebar-open");
  }
  ui.menuToggle.addEventListener("click", () => ui.app.classList.toggle("sidebar-open"));
  ui.scrim.addEventListener("click", () => {
    closeSidebar();
    if (narrow.matches) setDrawer(false);
  });

  window.addEventListener("popstate", openFromHash);
  window.addEventListener("online", loadReadiness);

  /* ------------------------------------------------------------------ */
  /* Start                                                                */
  /* ------------------------------------------------------------------ */

  async function boot() {
    hideBanner("auth");
    ui.forgetKey.hidden = !apiKey();
    try {
      await loadSessions();
    } catch (err) {
      showError(err, "Could not load your chats");
    }
    await loadTools();
    openFromHash();
  }

  let wantDrawer = window.matchMedia("(min-width: 1280px)").matches;
  try {
    const saved = localStorage.getItem(DRAWER_STORAGE);
    if (saved !== null) wantDrawer = saved === "1" && window.matchMedia("(min-width: 1100px)").matches;
  } catch {
    // default
  }
  setDrawer(wantDrawer, false);
  showEmpty(true);
  loadReadiness();
  setInterval(loadReadiness, READY_POLL_MS);
  // Refresh the "5 min ago" labels now and then.
  setInterval(renderSessions, 60000);
  boot();
})();
