// Browser test of Launch's web chat UI (host/src/server/ui/), driven by
// tests/tests/ui.rs, which starts the servers and a scripted mock LLM and
// passes their URLs in the environment:
//
//   LAUNCH_UI_URL        a plain server (mock LLM, plugins calculator + text)
//   LAUNCH_UI_AUTH_URL   the same with LAUNCH_API_KEYS set
//   LAUNCH_UI_API_KEY    the key of that server
//   LAUNCH_UI_NOKEY_URL  a server without an LLM key
//   LAUNCH_UI_ARTIFACTS  where screenshots go (default tests/artifacts/ui)
//   CHROMIUM             the browser (default /usr/bin/chromium)
//
// The mock answers by the last user message (see tests/tests/ui.rs):
// "What is 6 times 7?" calls calculator_evaluate, "Hello" gets a Markdown
// tour (also the answer to anything else), "xss-answer" / "xss-tool" carry script payloads, "Please fail" gets a
// provider error, "drop the line" calls a tool and answers 2 s later.
//
// The plain server is reached through a small proxy started here: it passes
// everything through but re-sends server-sent events one by one, 25 ms
// apart, as a real model streams them (the mock sends a whole answer at
// once), and cuts the connection mid-stream for "drop the line", so the
// UI's reconnect path runs against a real dropped stream.
//
// Uses only playwright-core with the system Chromium: no browser download.
// Exits 0 when every check passes; otherwise prints what failed, saves a
// screenshot named failure-*.png and exits 1.

import { chromium } from "playwright-core";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = process.env.LAUNCH_UI_ARTIFACTS || path.resolve(here, "../artifacts/ui");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const TIMEOUT = 20000;
const PACE_MS = 25;

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set: run this through \`cargo test --release -p launch-tests --test ui\``);
    process.exit(2);
  }
  return value.replace(/\/$/, "");
}

const PLAIN = required("LAUNCH_UI_URL");
const AUTH = required("LAUNCH_UI_AUTH_URL");
const API_KEY = required("LAUNCH_UI_API_KEY");
const NOKEY = required("LAUNCH_UI_NOKEY_URL");

/* ------------------------------------------------------------ harness */

class Failure extends Error {}

function check(condition, message) {
  if (!condition) throw new Failure(message);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
let current = null; // the page a failing step is screenshotted from
const results = [];

async function step(name, fn) {
  const started = Date.now();
  try {
    await fn();
    results.push(name);
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
  } catch (err) {
    console.error(`FAIL ${name}: ${err && err.message ? err.message : err}`);
    if (!(err instanceof Failure) && err && err.stack) console.error(err.stack);
    if (current) {
      const file = path.join(ARTIFACTS, `failure-${name.replace(/[^a-z0-9]+/gi, "-").toLowerCase()}.png`);
      await current.screenshot({ path: file, fullPage: false }).catch(() => {});
      console.error(`     screenshot: ${file}`);
    }
    throw err;
  }
}

async function shot(page, name) {
  await page.waitForTimeout(250); // let transitions (chevrons, drawers) settle
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** Waits until `selector` is visible and its text contains `text`. */
async function waitText(page, selector, text, timeout = TIMEOUT) {
  try {
    await page.locator(selector).filter({ hasText: text }).first().waitFor({ state: "visible", timeout });
  } catch {
    const seen = await page
      .locator(selector)
      .allInnerTexts()
      .catch(() => []);
    throw new Failure(`no visible ${selector} containing ${JSON.stringify(text)} within ${timeout} ms; saw ${JSON.stringify(seen).slice(0, 600)}`);
  }
}

/** Types a message and presses Enter, as a user would. */
async function send(page, text) {
  await page.locator("#input").fill(text);
  await page.locator("#input").press("Enter");
}

/** Waits for the last turn to end: its footer or an error card shows. */
async function turnEnded(page, timeout = TIMEOUT) {
  await page
    .locator(".turn:last-child .turn-meta:not([hidden]), .turn:last-child .turn-error")
    .first()
    .waitFor({ state: "visible", timeout });
}

/** Everything the page must never do: script errors, CSP violations, XSS. */
async function assertClean(page, label) {
  const state = await page.evaluate(() => ({
    xss: window.__xss,
    csp: window.__cspViolations || [],
    imgs: document.querySelectorAll('img[src="x"], #thread img').length,
    scripts: document.querySelectorAll("#thread script, #tools-drawer script").length,
    jsLinks: Array.from(document.querySelectorAll("a[href]")).filter((a) => !/^https?:/i.test(a.href)).length,
  }));
  check(state.xss === undefined, `${label}: window.__xss was set to ${state.xss}: injected script ran`);
  check(state.imgs === 0, `${label}: an <img> from model or tool output was created in the chat`);
  check(state.scripts === 0, `${label}: a <script> element was created from model or tool output`);
  check(state.jsLinks === 0, `${label}: a link with a non-http(s) URL was created`);
  check(state.csp.length === 0, `${label}: Content-Security-Policy violations: ${state.csp.join("; ")}`);
  check(pageErrors.length === 0, `${label}: uncaught errors in the page: ${pageErrors.join("; ")}`);
}

const pageErrors = [];

/* ------------------------------------------------- pacing/dropping proxy */

function startProxy(target) {
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const parts = [];
    req.on("data", (c) => parts.push(c));
    req.on("end", () => {
      const body = Buffer.concat(parts);
      const up = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (ur) => {
          const sse = String(ur.headers["content-type"] || "").startsWith("text/event-stream");
          res.writeHead(ur.statusCode, ur.headers);
          if (!sse) {
            ur.pipe(res);
            return;
          }
          const drop = body.includes("drop the line");
          let buf = "";
          let sent = 0;
          let dead = false;
          let chain = Promise.resolve();
          const forward = (event) => {
            chain = chain.then(async () => {
              if (dead) return;
              res.write(event);
              sent++;
              await sleep(PACE_MS);
              // After tool_started and tool_finished: the connection drops
              // while the turn goes on on the server.
              if (drop && sent === 2) {
                dead = true;
                res.socket.destroy();
              }
            });
          };
          ur.setEncoding("utf8");
          ur.on("data", (d) => {
            buf += d;
            let i;
            while ((i = buf.indexOf("\n\n")) >= 0) {
              forward(buf.slice(0, i + 2));
              buf = buf.slice(i + 2);
            }
          });
          ur.on("end", () => {
            chain = chain.then(() => {
              if (!dead) res.end(buf);
            });
          });
        }
      );
      up.on("error", () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      up.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

/* --------------------------------------------------------------- browser */

async function launch() {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "launch-ui-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    deviceScaleFactor: 1,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  // Runs before the page's own script in every document: records CSP
  // violations and how often the API-key dialog opens.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
    window.__authPrompts = 0;
    document.addEventListener("DOMContentLoaded", () => {
      const dialog = document.getElementById("auth-dialog");
      if (!dialog) return;
      new MutationObserver(() => {
        if (dialog.open) window.__authPrompts++;
      }).observe(dialog, { attributes: true, attributeFilter: ["open"] });
    });
  });
  return { context, profile };
}

async function newPage(context) {
  const page = await context.newPage();
  page.on("pageerror", (err) => pageErrors.push(err.message));
  current = page;
  return page;
}

/* ----------------------------------------------------------------- tests */

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const proxy = await startProxy(PLAIN);
  const { context, profile } = await launch();
  try {
    await plainServer(context, proxy.url);
    await authServer(context);
    await noKeyServer(context);
  } finally {
    await context.close().catch(() => {});
    proxy.server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

async function plainServer(context, base) {
  const page = await newPage(context);
  let firstSession = null;

  await step("page loads with readiness, plugins and tools", async () => {
    const res = await page.goto(`${base}/`);
    check(res.ok(), `GET / answered ${res.status()}`);
    const csp = res.headers()["content-security-policy"] || "";
    check(csp.includes("script-src 'self'"), `the page is served without the strict CSP: ${csp}`);
    await waitText(page, "#status-title", "Ready");
    await waitText(page, "#status-detail", "mock-model");
    await waitText(page, "#memory-pill", "Memory");
    check(await page.locator("#tools-drawer").isVisible(), "the tools panel is open on a wide screen");
    await waitText(page, ".plugin-name", "calculator");
    await waitText(page, ".plugin-name", "text");
    await waitText(page, ".tool-name", "calculator_evaluate");
    await waitText(page, ".tool-name", "text_transform");
    await waitText(page, ".server-facts", "recent messages only");
    await waitText(page, ".suggestion", "17.5%");
    check((await page.locator("[data-banner]").count()) === 0, "a banner shows on a healthy server");
    await shot(page, "01-empty-chat");
    // A tool's card opens to its parameters and full description.
    const card = page.locator("details.tool", { hasText: "text_transform" });
    await card.locator("summary").click();
    await waitText(page, "details.tool[open] .params li", "text");
    await waitText(page, "details.tool[open] .params li", "required");
    await waitText(page, "details.tool[open] .tool-doc", "Apply a sequence of transformations");
    await card.evaluate((el) => el.scrollIntoView({ block: "start" }));
    await shot(page, "01b-tool-details");
    await card.locator("summary").click();
  });

  await step("a message streams its answer token by token with a collapsed tool step", async () => {
    // Record every distinct text of the answer while it grows.
    await page.evaluate(() => {
      window.__growth = [];
      new MutationObserver(() => {
        const md = document.querySelectorAll("#thread .turn:last-child .md");
        const text = md.length ? md[md.length - 1].textContent : "";
        const growth = window.__growth;
        if (text && growth[growth.length - 1] !== text) growth.push(text);
      }).observe(document.getElementById("thread"), { childList: true, subtree: true, characterData: true });
    });
    await send(page, "What is 6 times 7?");
    await waitText(page, ".turn .bubble", "What is 6 times 7?");
    await page.locator(".turn:last-child details.step").waitFor({ state: "visible", timeout: TIMEOUT });
    await turnEnded(page);
    await waitText(page, ".turn:last-child .md", "streams in word by word");
    const growth = await page.evaluate(() => window.__growth);
    const final = growth[growth.length - 1] || "";
    check(final.includes("6 × 7 = 42"), `the answer is rendered with Markdown (bold 42): ${JSON.stringify(final)}`);
    const partial = growth.filter((t) => t.length < final.length);
    check(partial.length >= 3, `the answer appeared in one piece instead of streaming: ${JSON.stringify(growth)}`);
    check(
      partial.every((t, k) => k === 0 || t.length >= partial[k - 1].length),
      `the streamed answer did not only grow: ${JSON.stringify(growth)}`
    );
    const step = page.locator(".turn:last-child details.step");
    check((await step.count()) === 1, "one tool step is shown");
    check(!(await step.evaluate((d) => d.open)), "the tool step is collapsed by default");
    check(!(await step.locator(".step-body").isVisible()), "the collapsed step hides its arguments and result");
    await waitText(page, ".turn:last-child .step-name", "calculator_evaluate");
    check(await page.locator(".turn:last-child strong", { hasText: "42" }).isVisible(), "**42** renders bold");
    await waitText(page, ".turn:last-child .turn-meta", "1 tool call");
    await waitText(page, "#chat-title", "What is 6 times 7?");
    firstSession = await page.evaluate(() => decodeURIComponent(location.hash.replace("#/s/", "")));
    check(/^[0-9a-f-]{20,}$/.test(firstSession), `the new session is in the URL: ${firstSession}`);
    await shot(page, "02-streamed-answer");
  });

  await step("expanding the tool step shows name, arguments, result and duration", async () => {
    const step = page.locator(".turn:last-child details.step");
    await step.locator("summary").click();
    check(await step.evaluate((d) => d.open), "the step opens on click");
    const body = step.locator(".step-body");
    await body.waitFor({ state: "visible" });
    const text = await body.innerText();
    check(text.includes('"expression": "6 * 7"'), `arguments as pretty JSON: ${text}`);
    check(/Result\s*42/i.test(text), `the result 42: ${text}`);
    check(/Took \d+(\.\d+)? (ms|s)/.test(text), `the duration: ${text}`);
    check(/(ms|s)$/.test((await step.locator(".step-state").innerText()).trim()), "the summary shows the duration");
    check((await step.locator("pre").count()) >= 2, "arguments and result are shown in <pre>");
    await shot(page, "03-tool-step-expanded");
  });

  await step("a second chat renders Markdown safely and both chats are listed", async () => {
    await page.locator("#new-chat").click();
    await page.locator("#empty").waitFor({ state: "visible" });
    await send(page, "Hello");
    await turnEnded(page);
    const md = page.locator(".turn:last-child .md");
    check(await md.locator("h2", { hasText: "Hello from the mock model" }).isVisible(), "## heading renders as <h2>");
    check(await md.locator("strong", { hasText: "stream" }).isVisible(), "**bold**");
    check(await md.locator("em", { hasText: "tools" }).isVisible(), "*italic*");
    check(await md.locator("code", { hasText: "code" }).first().isVisible(), "`inline code`");
    check((await md.locator("ul > li").count()) === 2, "a bullet list of two items");
    check((await md.locator("ol > li").count()) === 2, "a numbered list of two items");
    check(await md.locator(".code-block pre code", { hasText: 'println!("hi");' }).isVisible(), "a fenced code block");
    await waitText(page, ".turn:last-child .code-lang", "rust");
    check((await md.locator("table tr").count()) === 3, "a table with a header and two rows");
    check(await md.locator("blockquote", { hasText: "Quotes work too." }).isVisible(), "a blockquote");
    const a = md.locator("a", { hasText: "link" });
    check((await a.getAttribute("href")) === "https://example.com/", "the http(s) link keeps its URL");
    check((await a.getAttribute("rel")) === "noopener noreferrer", "links get rel=noopener noreferrer");
    check((await a.getAttribute("target")) === "_blank", "links open in a new tab");
    const items = page.locator("#session-list .session");
    await page.waitForFunction(() => document.querySelectorAll("#session-list .session").length === 2, null, { timeout: TIMEOUT });
    check((await items.count()) === 2, "two sessions are listed");
    await waitText(page, "#session-list .session-title", "What is 6 times 7?");
    await waitText(page, "#session-list .session-title", "Hello");
    check(
      (await page.locator("#session-list .session.active .session-title").innerText()) === "Hello",
      "the open chat is highlighted"
    );
    await shot(page, "04-markdown");
  });

  await step("switching back loads the first conversation from GET /v1/sessions/{id}", async () => {
    const loaded = page.waitForResponse(
      (r) => r.request().method() === "GET" && r.url().endsWith(`/v1/sessions/${firstSession}`) && r.status() === 200
    );
    await page.locator("#session-list .session-open", { hasText: "What is 6 times 7?" }).click();
    await loaded;
    await waitText(page, ".turn .bubble", "What is 6 times 7?");
    await waitText(page, ".turn .md", "6 × 7 = 42");
    const step = page.locator(".turn details.step");
    check((await step.count()) === 1, "the stored tool step is shown");
    check(!(await step.evaluate((d) => d.open)), "the stored step is collapsed");
    await step.locator("summary").click();
    const text = await step.locator(".step-body").innerText();
    check(text.includes('"expression": "6 * 7"') && /Result\s*42/i.test(text), `stored step details: ${text}`);
    check(!(await page.locator(".turn .md", { hasText: "Hello from the mock model" }).count()), "the other chat's messages are gone");
    await waitText(page, "#chat-title", "What is 6 times 7?");
    await shot(page, "05-history");
  });

  await step("a long chat shows its newest turns and loads earlier ones on demand", async () => {
    const api = async (path, body) => {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      check(res.ok, `POST ${path} answered ${res.status}`);
      return res.json();
    };
    const { id } = await api("/v1/sessions", { title: "A long chat" });
    for (let i = 0; i < 23; i++) await api(`/v1/sessions/${id}/messages`, { content: `turn ${i}` });
    await page.goto(`${base}/#/s/${encodeURIComponent(id)}`);
    await page.reload(); // a fresh load opens the chat named in the URL
    await waitText(page, ".turn .bubble", "turn 22");
    const bubbles = () => page.locator(".turn .bubble").allInnerTexts();
    let shown = await bubbles();
    check(shown.length === 20 && shown[0] === "turn 3", `the newest page of 20 turns is shown: ${shown[0]} .. (${shown.length})`);
    const more = page.locator("button.load-earlier");
    check(await more.isVisible(), "a button offers the earlier turns");
    await more.click();
    await waitText(page, ".turn .bubble", "turn 0");
    shown = await bubbles();
    check(shown.length === 23 && shown[0] === "turn 0" && shown[22] === "turn 22", `every turn is shown in order: ${shown.join(", ")}`);
    check((await more.count()) === 0, "no button once the start is reached");
    await shot(page, "05b-long-history");
  });

  await step("model and tool output cannot inject markup or script", async () => {
    await page.locator("#new-chat").click();
    await send(page, "xss-answer please");
    await turnEnded(page);
    await send(page, "xss-tool please");
    await turnEnded(page);
    const stepEl = page.locator(".turn:last-child details.step");
    await stepEl.locator("summary").click();
    await checkXss(page, "live");
    await shot(page, "06-xss-inert");
    // The same conversation through the history path.
    await page.reload();
    await waitText(page, ".turn .md", "Payload:");
    await page.locator("details.step summary").first().click();
    await checkXss(page, "from history");
  });

  await step("a provider failure shows the error message", async () => {
    await page.locator("#new-chat").click();
    await send(page, "Please fail");
    await waitText(page, ".turn:last-child .turn-error", "mock provider is down for maintenance", 30000);
    await waitText(page, ".turn:last-child .turn-error", "HTTP 500");
    check(await page.locator(".turn:last-child .turn-error button", { hasText: "Retry" }).isVisible(), "a retry button");
    await shot(page, "07-provider-error");
  });

  await step("a dropped stream reconnects and shows the stored answer", async () => {
    await page.locator("#new-chat").click();
    await send(page, "Compute 2^10, then drop the line");
    await waitText(page, ".turn:last-child .turn-status", "reconnecting");
    await shot(page, "08-reconnecting");
    await waitText(page, ".turn:last-child .md", "Recovered answer", 30000);
    check(!(await page.locator(".turn:last-child .turn-status").isVisible()), "the reconnecting notice is gone");
    await waitText(page, ".turn:last-child .step-name", "calculator_evaluate");
    check((await page.locator(".turn:last-child details.step").count()) === 1, "the recovered turn shows its tool step once");
    check((await page.locator(".turn-error").count()) === 0, "no error after a successful recovery");
    await shot(page, "09-recovered");
  });

  await step("the layout works on a phone", async () => {
    await page.locator("#session-list .session-open", { hasText: "What is 6 times 7?" }).click();
    await waitText(page, ".turn .md", "6 × 7 = 42");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(300);
    check(!(await page.locator("#sidebar").isVisible()) || (await page.locator("#sidebar").boundingBox()).x < 0, "the sidebar is hidden");
    check(await page.locator("#menu-toggle").isVisible(), "a menu button shows the chats");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `the page scrolls sideways by ${overflow}px on a phone`);
    await shot(page, "10-phone");
    await page.locator("#menu-toggle").click();
    await page.waitForTimeout(300);
    check((await page.locator("#sidebar").boundingBox()).x >= 0, "the menu button opens the chats");
    await shot(page, "11-phone-sidebar");
    await page.setViewportSize({ width: 1440, height: 900 });
    await assertClean(page, "plain server");
  });
  await page.close();
}

async function checkXss(page, label) {
  await assertClean(page, label);
  const thread = await page.locator("#thread").innerText();
  for (const text of [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    "[x](javascript:window.__xss=3)",
    '<img src=x onerror="window.__xss=4">',
  ]) {
    check(thread.includes(text), `${label}: the payload ${text} is not visible as text in the chat`);
  }
  const result = await page.locator(".turn:last-child details.step .step-pre").last().innerText();
  check(result.includes('<img src=x onerror="window.__xss=4">'), `${label}: the tool result is shown as text: ${result}`);
}

async function authServer(context) {
  const page = await newPage(context);
  await step("auth: the page asks for the API key once", async () => {
    await page.goto(`${AUTH}/`);
    await page.locator("#auth-dialog[open]").waitFor({ state: "visible", timeout: TIMEOUT });
    await waitText(page, "#status-title", "Ready"); // /readyz is public
    await page.waitForTimeout(500);
    const prompts = await page.evaluate(() => window.__authPrompts);
    check(prompts === 1, `the key dialog opened ${prompts} times for one page load`);
    await shot(page, "12-auth-prompt");
  });

  await step("auth: a wrong key is refused, the right one works", async () => {
    await page.locator("#auth-key").fill("not-the-right-key-at-all");
    await page.locator("#auth-submit").click();
    await waitText(page, "#auth-error", "not accepted");
    await page.locator("#auth-key").fill(API_KEY);
    await page.locator("#auth-submit").click();
    await page.locator("#auth-dialog").waitFor({ state: "hidden", timeout: TIMEOUT });
    await waitText(page, ".tool-name", "calculator_evaluate");
    await send(page, "Hello");
    await turnEnded(page);
    await waitText(page, ".turn:last-child .md", "Hello from the mock model");
    check((await page.locator("#forget-key").isVisible()), "a way to forget the key is offered");
    const stored = await page.evaluate(() => sessionStorage.getItem("launch.apiKey"));
    check(stored === API_KEY, "the key is kept in sessionStorage");
  });

  await step("auth: the key survives a reload of the tab", async () => {
    await page.reload();
    await waitText(page, ".turn .md", "Hello from the mock model");
    await waitText(page, "#session-list .session-title", "Hello");
    const prompts = await page.evaluate(() => window.__authPrompts);
    check(prompts === 0, "the key dialog opened again after a reload");
    check(!(await page.locator("#auth-dialog").isVisible()), "no key dialog after the reload");
    await shot(page, "13-auth-after-reload");
    await assertClean(page, "auth server");
  });
  await page.close();
}

async function noKeyServer(context) {
  const page = await newPage(context);
  await step("no LLM key: a banner says what to set", async () => {
    await page.goto(`${NOKEY}/`);
    await waitText(page, '[data-banner="llm"]', "LAUNCH_LLM_API_KEY");
    await waitText(page, '[data-banner="llm"]', "No LLM key configured");
    await waitText(page, "#status-title", "No LLM configured");
    await send(page, "Hello");
    await waitText(page, ".turn:last-child .turn-error", "LAUNCH_LLM_API_KEY");
    await shot(page, "14-no-llm-key");
    await assertClean(page, "no-key server");
  });
  await page.close();
}

const deadline = setTimeout(() => {
  console.error("FAIL the UI test did not finish within 240 s");
  process.exit(1);
}, 240000);

main()
  .then(() => {
    clearTimeout(deadline);
    console.log(`all ${results.length} UI checks passed; screenshots in ${ARTIFACTS}`);
  })
  .catch(() => {
    clearTimeout(deadline);
    process.exit(1);
  });
