// The `json-tools` Launch plugin: query, format, diff and validate JSON text.
//
// Each exported function implements the function of the same name (in
// camelCase) exported by the world in wit/world.wit. The descriptions the model
// reads are the `///` comments there, not comments in this file.
//
// Documents are parsed by the engine's native JSON.parse, which is 50 to 100
// times faster here than parsing in JavaScript (this runs in an interpreter),
// with a reviver that keeps the text of numbers that would not print back as
// written (`1.50`, `1E+2`, `-0`, integers beyond 2^53) as JSON.rawJSON values.
// The parser further below handles what JSON.parse cannot: explained syntax
// errors with line and column, nesting beyond the limit, documents whose
// objects have integer-like keys (JavaScript objects list those first, so it
// keeps them in a Map, in document order), and the warnings of `validate`.
//
// Throwing a string returns the `err` case of the WIT result: a tool error
// whose message the model sees and can act on.

/** Largest document accepted, in bytes of UTF-8 (the host passes strings as UTF-8). */
const MAX_INPUT_BYTES = 1_000_000;
/** Deepest nesting of arrays and objects accepted. */
const MAX_DEPTH = 512;
/** Largest result returned, in bytes of the JSON the host sends on. */
const MAX_OUTPUT_BYTES = 1_000_000;
/**
 * Deepest nesting handed to the engine's JSON.stringify and JSON.parse reviver,
 * which recurse natively and fail near 350 levels here; deeper documents take
 * the JavaScript paths, whose recursion the interpreter keeps off that stack.
 */
const NATIVE_DEPTH = 256;
/**
 * Longest string handed to JSON.stringify in one piece: its memory use grows
 * much faster than the length here (about 90 MiB for 900,000 characters), so
 * longer strings are quoted in pieces of this size.
 */
const QUOTE_CHUNK = 16_384;
/** Most values a query may hold at any step (more could not be returned anyway). */
const MAX_NODES = 500_000;
/** Longest path expression accepted. */
const MAX_PATH_CHARS = 10_000;
/** Changes listed by `diff` (all are counted). */
const MAX_CHANGES = 200;
/** Characters of a value shown in a `diff` change before it is cut. */
const MAX_VALUE_CHARS = 1_000;
/** Warnings listed by `validate`. */
const MAX_WARNINGS = 20;
/** Cells of the table that matches array elements in `diff`. */
const MAX_LCS_CELLS = 1_000_000;
/** Largest integer a 64-bit float holds exactly. */
const MAX_SAFE = 9007199254740991;

// ---------------------------------------------------------------- exports

/**
 * @param {string} document
 * @param {string} path
 * @returns {string}
 */
export function query(document, path) {
  return run(() => {
    const steps = parsePath(path);
    const doc = parseArg("document", document);
    const nodes = select(steps, doc.value, doc.value);
    return checkOutput(
      toJson(nodes, 0, doc),
      "narrow the path, e.g. take a slice such as `[0:20]` or select single fields",
    );
  });
}

/**
 * @param {string} document
 * @param {number | undefined} indent
 * @param {boolean | undefined} sortKeys
 * @returns {string}
 */
export function format(document, indent, sortKeys) {
  return run(() => {
    const width = indent ?? 2;
    if (width > 10) {
      throw `\`indent\` must be 0 to 10 spaces, got ${width}; use 2 for readable JSON or 0 for one line`;
    }
    const doc = parseArg("document", document);
    let value = doc.value;
    const shape = { ordered: doc.ordered, long: doc.long };
    if (sortKeys === true) value = sortedKeys(value, shape);
    return checkOutput(
      toJson(value, width, shape),
      "use `indent` 0 for compact output, or `query` the part you need",
    );
  });
}

/**
 * @param {string} before
 * @param {string} after
 */
export function diff(before, after) {
  return run(() => {
    const a = parseArg("before", before);
    const b = parseArg("after", after);
    const state = {
      total: 0,
      changes: [],
      canon: new Map(),
      shape: { ordered: a.ordered || b.ordered, long: a.long || b.long },
    };
    compareValues(a.value, b.value, "$", state);
    const result = { equal: state.total === 0, total: state.total, changes: state.changes };
    // At most 200 changes of clipped values: this only guards against long keys.
    let bytes = 60;
    for (const c of result.changes) {
      bytes += 60 + jsonStringBytes(c.path);
      if (c.before !== undefined) bytes += jsonStringBytes(c.before);
      if (c.after !== undefined) bytes += jsonStringBytes(c.after);
    }
    if (bytes > MAX_OUTPUT_BYTES) tooLarge(bytes, "compare smaller parts of the documents, selected with `query`");
    return result;
  });
}

/** @param {string} document */
export function validate(document) {
  return run(() => {
    checkSize("document", document);
    // Quick path: JSON.parse, then checks that rule warnings out: no number
    // beyond the safe range, and no repeated key (every `"` followed by `:`
    // ends a distinct key). Integer-like keys need the parser below to list
    // the keys in document order.
    const text = withoutBom(document);
    let value;
    let parsed = !INDEX_KEY_TEXT_RE.test(text);
    try {
      if (parsed) value = JSON.parse(text);
    } catch {
      parsed = false;
    }
    if (parsed) {
      const m = measure(value, MAX_DEPTH);
      if (m.depth <= MAX_DEPTH && !m.risky && (m.keys === 0 || text.split(KEY_END_RE).length - 1 === m.keys)) {
        if (typeof value === "number") value = makeNumber(text.trim());
        return { valid: true, summary: summary(value, m.values, m.depth), warnings: [] };
      }
    }
    // The exact parser: the error and where it is, or the warnings.
    const parser = new Parser(document, true);
    try {
      value = parser.parseDocument();
    } catch (e) {
      if (!(e instanceof JsonSyntaxError)) throw e;
      const at = locate(document, e.pos);
      return {
        valid: false,
        error: e.describe(document),
        line: at.line,
        column: at.column,
        warnings: [],
      };
    }
    const warnings = parser.warnings;
    if (parser.warningCount > warnings.length) {
      warnings.push(`… and ${plural(parser.warningCount - warnings.length, "more warning")}`);
    }
    return { valid: true, summary: summary(value, parser.values, parser.maxDepth), warnings };
  });
}

function summary(value, values, depth) {
  return (
    `${describe(value)}; ${plural(values, "value")} in all, ` +
    (depth ? `nested ${plural(depth, "level")} deep` : "not nested")
  );
}

// ---------------------------------------------------------------- helpers

/** Runs an export, turning unexpected exceptions into clear tool errors. */
function run(body) {
  try {
    return body();
  } catch (e) {
    if (typeof e === "string") throw e;
    const text = String(e?.message ?? e);
    if (/recursion/i.test(text)) {
      throw `the input is nested too deeply to process (${text}); the limit is ${MAX_DEPTH} levels`;
    }
    if (/out of memory/i.test(text)) {
      throw "out of memory while processing the input; pass a smaller document";
    }
    throw `internal error in json-tools: ${text}`;
  }
}

/** A number with thousands separators: 1234567 → "1,234,567". */
function count(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function plural(n, word) {
  return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
}

const encoder = new TextEncoder();

/** Bytes of `s` in UTF-8 (a lone surrogate counts as the 3 bytes of U+FFFD). */
function utf8Length(s) {
  return encoder.encode(s).length;
}

/** Characters (code points) of `s`. */
function codePoints(s) {
  return s.length - (s.match(/[\ud800-\udbff][\udc00-\udfff]/g)?.length ?? 0);
}

function withoutBom(text) {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function checkSize(name, text) {
  // Each UTF-16 unit is 1 to 3 bytes of UTF-8: count only when it matters.
  if (text.length * 3 <= MAX_INPUT_BYTES) return;
  // Past the limit in UTF-16 units, it is past it in bytes: skip counting.
  const atLeast = text.length > MAX_INPUT_BYTES;
  const bytes = atLeast ? text.length : utf8Length(text);
  if (bytes > MAX_INPUT_BYTES) {
    throw (
      `\`${name}\` is ${atLeast ? "at least " : ""}${count(bytes)} bytes of UTF-8; the limit is ` +
      `${count(MAX_INPUT_BYTES)} bytes. Pass a smaller document or only the part you need.`
    );
  }
}

/** Returns `text` unless the host's JSON of it would exceed the output limit. */
function checkOutput(text, advice) {
  // Escaping at most doubles ASCII; a UTF-16 unit is at most 3 bytes of UTF-8.
  if (text.length * 3 <= MAX_OUTPUT_BYTES) return text;
  const bytes = jsonStringBytes(text);
  if (bytes > MAX_OUTPUT_BYTES) tooLarge(bytes, advice);
  return text;
}

function tooLarge(bytes, advice) {
  throw (
    `the result is ${count(bytes)} bytes of JSON, more than the ${count(MAX_OUTPUT_BYTES)} ` +
    `this tool returns; ${advice}`
  );
}

/**
 * Bytes of `text` once written as a JSON string, as the host sends it: UTF-8,
 * quotes, and an escape for `"`, `\` and control characters. (Counted rather
 * than measured with JSON.stringify, see QUOTE_CHUNK.)
 */
function jsonStringBytes(text) {
  let bytes = 2 + utf8Length(text);
  for (const ch of ['"', "\\", "\n"]) {
    for (let k = text.indexOf(ch); k !== -1; k = text.indexOf(ch, k + 1)) bytes++;
  }
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) {
    for (let k = 0; k < text.length; k++) {
      const c = text.charCodeAt(k);
      if (c < 0x20 && c !== 0x0a) bytes += c === 0x08 || c === 0x09 || c === 0x0c || c === 0x0d ? 1 : 5;
    }
  }
  return bytes;
}

/** JSON text of string `s`; long strings are quoted in pieces (see QUOTE_CHUNK). */
function quote(s) {
  if (s.length <= QUOTE_CHUNK) return JSON.stringify(s);
  const parts = ['"'];
  for (let k = 0; k < s.length; ) {
    let end = Math.min(k + QUOTE_CHUNK, s.length);
    // Keep surrogate pairs whole: a lone half would be escaped.
    if (end < s.length && isHighSurrogate(s.charCodeAt(end - 1))) end--;
    parts.push(JSON.stringify(s.slice(k, end)).slice(1, -1));
    k = end;
  }
  parts.push('"');
  return parts.join("");
}
/** The 1-based line and column (in code points) of UTF-16 offset `pos`. */
function locate(text, pos) {
  let line = 1;
  let lineStart = 0;
  for (let k = text.indexOf("\n"); k !== -1 && k < pos; k = text.indexOf("\n", k + 1)) {
    line++;
    lineStart = k + 1;
  }
  let column = 1;
  for (let k = lineStart; k < pos; k++) {
    const c = text.charCodeAt(k);
    // The second half of a surrogate pair is part of the previous character.
    if (!(c >= 0xdc00 && c <= 0xdfff && k > lineStart && isHighSurrogate(text.charCodeAt(k - 1)))) {
      column++;
    }
  }
  return { line, column, lineStart };
}

function isHighSurrogate(c) {
  return c >= 0xd800 && c <= 0xdbff;
}

/** A character for a message: `x`, or its code point when invisible. */
function show(ch) {
  if (ch === undefined || ch === "") return "the end of the text";
  const cp = ch.codePointAt(0);
  if (cp < 0x21 || (cp >= 0x7f && cp <= 0xa0) || cp === 0xfeff || (cp >= 0x2000 && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202f)) {
    const names = { 0x20: "a space", 0x09: "a tab", 0x0a: "a line break", 0x0d: "a carriage return" };
    return names[cp] ?? `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
  }
  return "`" + String.fromCodePoint(cp) + "`";
}

/** The character at UTF-16 offset `pos` (both halves of a surrogate pair). */
function charAt(text, pos) {
  if (pos >= text.length) return "";
  return String.fromCodePoint(text.codePointAt(pos));
}

/** Compares strings by Unicode code point (JavaScript's `<` compares UTF-16 units). */
function compareStrings(a, b) {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let k = 0; k < n; k++) {
    let x = a.charCodeAt(k);
    let y = b.charCodeAt(k);
    if (x !== y) {
      // Surrogates encode code points above U+FFFF: order them after the BMP.
      if (x >= 0xd800 && x <= 0xdfff) x += 0x10000;
      if (y >= 0xd800 && y <= 0xdfff) y += 0x10000;
      return x < y ? -1 : 1;
    }
  }
  return a.length < b.length ? -1 : 1;
}

// ---------------------------------------------------------------- values
//
// A parsed value is null, a boolean, a string, a number, an array or an
// object. A number is a JS number when it prints back exactly as written,
// otherwise JSON.rawJSON(its text), which JSON.stringify writes verbatim. An
// object is a plain object, or an `Obj` (from the exact parser or a key sort)
// where integer-like keys must keep their place.

/** An object whose members keep their order, integer-like keys included. */
class Obj {
  constructor() {
    this.map = new Map();
  }
}

/** A JSON number from its (valid) text. */
function makeNumber(text) {
  const value = Number(text);
  return String(value) === text ? value : JSON.rawJSON(text);
}

function typeOf(v) {
  switch (typeof v) {
    case "string":
      return "string";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
  }
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return JSON.isRawJSON(v) ? "number" : "object";
}

/** Whether `v` is an array or an object. */
function isContainer(v) {
  return typeof v === "object" && v !== null && !JSON.isRawJSON(v);
}

function keysOf(o) {
  return o instanceof Obj ? [...o.map.keys()] : Object.keys(o);
}

function hasKey(o, key) {
  return o instanceof Obj ? o.map.has(key) : Object.hasOwn(o, key);
}

function member(o, key) {
  return o instanceof Obj ? o.map.get(key) : o[key];
}

/** The member values of an object, or the elements of an array. */
function childrenOf(v) {
  if (Array.isArray(v)) return v;
  return v instanceof Obj ? [...v.map.values()] : Object.values(v);
}

function numberText(v) {
  return typeof v === "number" ? String(v) : v.rawJSON;
}

function numberValue(v) {
  return typeof v === "number" ? v : Number(v.rawJSON);
}

/** Exact decimal form of number text: ±0.DIGITS × 10^exp; zero has no digits. */
function decimal(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  let digits = m[2] + (m[3] ?? "");
  let exp = m[2].length + Number(m[4] ?? 0);
  const lead = digits.length - digits.replace(/^0+/, "").length;
  digits = digits.slice(lead).replace(/0+$/, "");
  exp -= lead;
  return digits === "" ? { neg: false, digits: "", exp: 0 } : { neg: m[1] === "-", digits, exp };
}

function compareDecimals(x, y) {
  const sign = (d) => (d.digits === "" ? 0 : d.neg ? -1 : 1);
  if (sign(x) !== sign(y)) return sign(x) < sign(y) ? -1 : 1;
  if (sign(x) === 0) return 0;
  let mag;
  if (x.exp !== y.exp) mag = x.exp < y.exp ? -1 : 1;
  else mag = x.digits === y.digits ? 0 : x.digits < y.digits ? -1 : 1;
  return x.neg ? -mag : mag;
}

/** Compares two numbers exactly, by decimal value. */
function compareNumbers(a, b) {
  // Rounding to a float is monotonic, so different floats order the exact values.
  const x = numberValue(a);
  const y = numberValue(b);
  if (x < y) return -1;
  if (x > y) return 1;
  // Two JS numbers print as written: equal floats, equal texts.
  if (typeof a === "number" && typeof b === "number") return 0;
  return compareDecimals(decimal(numberText(a)), decimal(numberText(b)));
}

/** The same string for numbers of the same value, whatever their spelling. */
function numberKey(v) {
  if (typeof v === "number") return String(v);
  const value = Number(v.rawJSON);
  const d = decimal(v.rawJSON);
  if (Number.isFinite(value) && compareDecimals(d, decimal(String(value))) === 0) return String(value);
  return d.digits === "" ? "0" : `~${d.neg ? "-" : ""}0.${d.digits}e${d.exp}`;
}

/**
 * JSON text of a value: compact when `indent` is 0. `shape.ordered`: the value
 * may hold `Obj`s, long keys or deep nesting, which only the writer below
 * handles; `shape.long`: it may hold strings longer than QUOTE_CHUNK.
 */
function toJson(value, indent, shape) {
  if (!shape.ordered) {
    return JSON.stringify(shape.long ? rawLongStrings(value) : value, null, indent);
  }
  const out = [];
  const unit = " ".repeat(indent);
  write(value, "");
  return out.join("");

  function write(v, pad) {
    if (!isContainer(v)) {
      out.push(typeof v === "string" ? quote(v) : JSON.stringify(v));
      return;
    }
    const isArray = Array.isArray(v);
    const keys = isArray ? null : keysOf(v);
    const n = isArray ? v.length : keys.length;
    if (n === 0) {
      out.push(isArray ? "[]" : "{}");
      return;
    }
    const inner = pad + unit;
    const sep = indent ? ",\n" + inner : ",";
    out.push(isArray ? "[" : "{", indent ? "\n" + inner : "");
    for (let k = 0; k < n; k++) {
      if (k) out.push(sep);
      if (isArray) write(v[k], inner);
      else {
        out.push(quote(keys[k]), indent ? ": " : ":");
        write(member(v, keys[k]), inner);
      }
    }
    out.push(indent ? "\n" + pad : "", isArray ? "]" : "}");
  }
}

/** A copy of `v` whose long strings are already quoted, as JSON.rawJSON. */
function rawLongStrings(v) {
  if (typeof v === "string") return v.length > QUOTE_CHUNK ? JSON.rawJSON(quote(v)) : v;
  if (!isContainer(v)) return v;
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let k = 0; k < v.length; k++) out[k] = rawLongStrings(v[k]);
    return out;
  }
  const out = Object.create(null);
  const keys = Object.keys(v);
  for (let k = 0; k < keys.length; k++) out[keys[k]] = rawLongStrings(v[keys[k]]);
  return out;
}

const INDEX_KEY_RE = /^(?:0|[1-9][0-9]*)$/;

/** A copy of `v` with the keys of every object sorted by code point. */
function sortedKeys(v, state) {
  if (!isContainer(v)) return v;
  if (Array.isArray(v)) {
    const out = new Array(v.length);
    for (let k = 0; k < v.length; k++) out[k] = sortedKeys(v[k], state);
    return out;
  }
  const keys = keysOf(v).sort(compareStrings);
  if (keys.some((k) => INDEX_KEY_RE.test(k))) {
    // A plain object would list integer-like keys first, whatever the order.
    const o = new Obj();
    for (const k of keys) o.map.set(k, sortedKeys(member(v, k), state));
    state.ordered = true;
    return o;
  }
  const o = Object.create(null);
  for (const k of keys) o[k] = sortedKeys(member(v, k), state);
  return o;
}

/**
 * Counts of a parsed value: values, object members, nesting depth (stops past
 * `limit`); `risky`: a number beyond the safe range; `long`/`longKeys`: a
 * string or key longer than QUOTE_CHUNK.
 */
function measure(root, limit) {
  const m = { values: 1, keys: 0, depth: 0, risky: false, long: false, longKeys: false };
  const check = (v) => {
    if (typeof v === "number") {
      if (!Number.isFinite(v) || Math.abs(v) > MAX_SAFE) m.risky = true;
    } else if (typeof v === "string" && v.length > QUOTE_CHUNK) m.long = true;
  };
  check(root);
  if (!isContainer(root)) return m;
  m.depth = 1;
  const stack = [root, 1];
  while (stack.length) {
    const depth = stack.pop();
    const v = stack.pop();
    const children = childrenOf(v);
    m.values += children.length;
    if (!Array.isArray(v)) {
      m.keys += children.length;
      const keys = keysOf(v);
      for (let k = 0; k < keys.length; k++) if (keys[k].length > QUOTE_CHUNK) m.longKeys = true;
    }
    for (let k = 0; k < children.length; k++) {
      const c = children[k];
      if (typeof c === "object" && c !== null) {
        if (depth + 1 > m.depth) {
          m.depth = depth + 1;
          if (m.depth > limit) return m;
        }
        stack.push(c, depth + 1);
      } else check(c);
    }
  }
  return m;
}

/** One-line description of a value for `validate`. */
function describe(v) {
  const t = typeOf(v);
  if (t === "object") {
    const keys = keysOf(v);
    let text = `an object with ${plural(keys.length, "member")}`;
    if (keys.length) {
      const shown = keys.slice(0, 10).map((k) => JSON.stringify(k.length > 40 ? k.slice(0, 40) + "…" : k));
      text += ` (${shown.join(", ")}${keys.length > 10 ? ", …" : ""})`;
    }
    return text;
  }
  if (t === "array") {
    let text = `an array of ${plural(v.length, "element")}`;
    if (v.length) {
      const kinds = new Map();
      for (let k = 0; k < v.length; k++) {
        const kind = typeOf(v[k]);
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      }
      const parts = [...kinds].map(([kind, n]) => (kind === "null" ? `${count(n)} null` : plural(n, kind)));
      text += ` (${parts.join(", ")})`;
    }
    return text;
  }
  if (t === "string") return `a string of ${plural(codePoints(v), "character")}`;
  if (t === "number") return `the number ${clip(numberText(v))}`;
  return `the literal ${String(v)}`;
}

// ---------------------------------------------------------------- parser

class JsonSyntaxError {
  /**
   * @param {string} problem  what is wrong, e.g. "trailing comma"
   * @param {number} pos      UTF-16 offset of the problem
   * @param {string} hint     how to fix it, or ""
   */
  constructor(problem, pos, hint) {
    this.problem = problem;
    this.pos = pos;
    this.hint = hint;
  }

  /** "PROBLEM at line L, column C; HINT. Near: `…`" */
  describe(text) {
    const at = locate(text, this.pos);
    let end = text.indexOf("\n", at.lineStart);
    if (end === -1) end = text.length;
    const from = Math.max(at.lineStart, this.pos - 30);
    const to = Math.min(end, this.pos + 30);
    let near = text.slice(from, to).replace(/\r/g, "").replace(/\t/g, " ");
    if (from > at.lineStart) near = "…" + near;
    if (to < end) near += "…";
    let message = `${this.problem} at line ${at.line}, column ${at.column}`;
    if (this.hint) message += `; ${this.hint}`;
    if (near.trim()) message += `. Near: ${near}`;
    return message;
  }
}

const WS_RE = /[ \t\n\r]*/y;
const PLAIN_RE = /[^"\\\u0000-\u001f]*/y;
const NUMBER_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const NUMBER_LIKE_RE = /[-+0-9A-Za-z.]*/y;
const WORD_RE = /[A-Za-z_$][A-Za-z0-9_$]*/y;
const HEX4_RE = /^[0-9a-fA-F]{4}$/;

/** Where sticky regex `re` stops matching from `pos` (`pos` when it does not match). */
function sticky(re, text, pos) {
  re.lastIndex = pos;
  return re.test(text) ? re.lastIndex : pos;
}

/** Ends a key: a `"`, optional whitespace and `:` (also counts some inside strings). */
const KEY_END_RE = /"[ \t\n\r]*:/;
/** An integer-like key, whose place a JavaScript object would not keep. */
const INDEX_KEY_TEXT_RE = /"(?:0|[1-9][0-9]*)"[ \t\n\r]*:/;
/**
 * Matches the text of every JSON number that does not print back as written
 * (an exponent, a trailing zero in the fraction, `-0`, 16 or more digits, or
 * 0.000000x), and some that do: only then is the slower reviver needed.
 */
const NUMBER_RISK_RE = /[0-9][eE]|\.[0-9]*0(?![0-9])|(?:[0-9]\.?){16}|-0(?![0-9.])|\.0{6}/;

/** JSON.parse reviver: numbers that would not print back as written keep their text. */
function keepNumberText(key, value, context) {
  return typeof value === "number" && String(value) !== context.source ? JSON.rawJSON(context.source) : value;
}

/** Whether `text` has at most `limit` `[` and `{`, so it cannot nest deeper. */
function fewOpeners(text, limit) {
  let n = 0;
  for (const ch of ["[", "{"]) {
    for (let k = text.indexOf(ch); k !== -1; k = text.indexOf(ch, k + 1)) {
      if (++n > limit) return false;
    }
  }
  return true;
}

/**
 * Parses document `text` (the argument `name`) into {value, ordered}, where
 * `ordered` says the value may hold `Obj`s or nest deeper than NATIVE_DEPTH,
 * so that only the JavaScript writer may print it. Throws a string naming
 * `name` when the text is not valid JSON or nests deeper than MAX_DEPTH.
 */
function parseArg(name, text) {
  checkSize(name, text);
  if (!INDEX_KEY_TEXT_RE.test(text)) {
    const body = withoutBom(text);
    const reviver = NUMBER_RISK_RE.test(body) ? keepNumberText : undefined;
    let value;
    try {
      value = JSON.parse(body);
    } catch {
      value = undefined; // not valid JSON: the parser below says why
    }
    // Short texts hold no long strings, and few brackets cannot nest deeply.
    const m = body.length > QUOTE_CHUNK || !fewOpeners(body, NATIVE_DEPTH) ? measure(value, NATIVE_DEPTH) : null;
    if (value !== undefined && (m === null || m.depth <= NATIVE_DEPTH)) {
      // The reviver recurses natively: only now that the depth is known.
      if (reviver) value = JSON.parse(body, reviver);
      return { value, ordered: m !== null && m.longKeys, long: m !== null && m.long };
    }
  }
  try {
    return { value: new Parser(text, false).parseDocument(), ordered: true, long: false };
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw `\`${name}\` is not valid JSON: ${e.describe(text)}`;
    throw e;
  }
}

class Parser {
  constructor(text, collectWarnings) {
    this.s = text;
    this.n = text.length;
    this.i = 0;
    this.open = []; // offsets of the arrays and objects being parsed
    this.values = 0;
    this.maxDepth = 0;
    this.warnings = collectWarnings ? [] : null;
    this.warningCount = 0;
  }

  fail(problem, pos, hint = "") {
    throw new JsonSyntaxError(problem, pos, hint);
  }

  where(pos) {
    const at = locate(this.s, pos);
    return `line ${at.line}, column ${at.column}`;
  }

  /** Records a warning; `make` builds its text, only for the first few (locating is O(n)). */
  warn(make) {
    this.warningCount++;
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(make());
  }

  skipWs() {
    const c = this.s.charCodeAt(this.i);
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.i = sticky(WS_RE, this.s, this.i);
  }

  parseDocument() {
    if (this.s.charCodeAt(0) === 0xfeff) this.i = 1; // a byte order mark
    this.skipWs();
    if (this.i >= this.n) {
      this.fail("the document is empty", this.i, 'pass JSON text such as {"a": 1}');
    }
    const value = this.parseValue();
    this.skipWs();
    if (this.i < this.n) this.trailing();
    return value;
  }

  /** Text after the top-level value. */
  trailing() {
    this.noComment();
    const ch = charAt(this.s, this.i);
    if (ch === "}" || ch === "]") {
      this.fail(`unexpected ${show(ch)} after the end of the value`, this.i, "there are more closing brackets than opening ones");
    }
    this.fail(
      `unexpected ${show(ch)} after the end of the value`,
      this.i,
      "a document holds exactly one value; to pass several, put them in an array: [value1, value2]",
    );
  }

  /** The text ended where `expected` should be. */
  ended(expected) {
    const open = this.open.at(-1);
    if (open === undefined) this.fail("the text ends too early", this.n, `expected ${expected}`);
    const kind = this.s[open] === "{" ? "object" : "array";
    this.fail(
      "the text ends too early",
      this.n,
      `expected ${expected}: the ${kind} opened at ${this.where(open)} is not closed; the text may be cut off`,
    );
  }

  parseValue() {
    this.skipWs();
    if (this.i >= this.n) this.ended("a value");
    this.values++;
    const c = this.s.charCodeAt(this.i);
    if (c === 0x22) return this.parseString();
    if (c === 0x7b) return this.parseObject();
    if (c === 0x5b) return this.parseArray();
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.parseNumber();
    if ((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c === 0x24) return this.parseWord();
    this.unexpectedValue();
  }

  unexpectedValue() {
    const s = this.s;
    const i = this.i;
    const ch = charAt(s, i);
    if (ch === "'") {
      this.fail("single-quoted string", i, 'JSON strings use double quotes: "text"');
    }
    if (ch === "/" && (s[i + 1] === "/" || s[i + 1] === "*")) {
      this.fail("comment", i, "JSON does not allow comments; remove it");
    }
    if (ch === "." && /[0-9]/.test(s[i + 1] ?? "")) {
      this.fail("number without a leading digit", i, "write 0.5, not .5");
    }
    if (ch === "+") {
      this.fail("number with a `+` sign", i, "write 1, not +1");
    }
    if (ch === ",") {
      this.fail("expected a value, found `,`", i, "a value is missing, or there is one comma too many");
    }
    if (ch === "}" || ch === "]") {
      this.fail(`expected a value, found ${show(ch)}`, i);
    }
    if (ch === "“" || ch === "”" || ch === "‘" || ch === "’") {
      this.fail(`typographic quote ${show(ch)}`, i, 'JSON strings use the plain double quote "');
    }
    this.fail(
      `expected a value (an object, array, string, number, true, false or null), found ${show(ch)}`,
      i,
    );
  }

  parseWord() {
    const start = this.i;
    const end = sticky(WORD_RE, this.s, start);
    const word = this.s.slice(start, end);
    if (word === "true" || word === "false" || word === "null") {
      this.i = end;
      return word === "null" ? null : word === "true";
    }
    const shown = "`" + (word.length > 30 ? word.slice(0, 30) + "…" : word) + "`";
    const lower = word.toLowerCase();
    if (lower === "true" || lower === "false" || lower === "null") {
      this.fail(`${shown} is not JSON`, start, `literals are lower case: ${lower}`);
    }
    if (word === "None" || word === "nil" || word === "undefined" || word === "Nil" || word === "NIL") {
      this.fail(`${shown} is not JSON`, start, "write null");
    }
    if (word === "NaN" || word === "Infinity") {
      this.fail(`${shown} is not a JSON value`, start, "use null, a number or a string");
    }
    this.fail(`unexpected word ${shown}`, start, `strings must be in double quotes: "${word.length > 30 ? word.slice(0, 30) + "…" : word}"`);
  }

  parseNumber() {
    const s = this.s;
    const start = this.i;
    const end = sticky(NUMBER_RE, s, start);
    const next = s.charCodeAt(end);
    const bad =
      end === start ||
      (next >= 0x30 && next <= 0x39) ||
      (next >= 0x41 && next <= 0x5a) ||
      (next >= 0x61 && next <= 0x7a) ||
      next === 0x2e ||
      next === 0x2b ||
      next === 0x2d;
    if (bad) this.badNumber(start);
    const text = s.slice(start, end);
    this.i = end;
    const num = makeNumber(text);
    if (this.warnings) {
      const value = numberValue(num);
      if (!Number.isFinite(value)) {
        this.warn(() => `the number ${clip(text)} at ${this.where(start)} is beyond the range of 64-bit floats (about ±1.8e308)`);
      } else if (Math.abs(value) > MAX_SAFE && /^-?\d+$/.test(text)) {
        this.warn(
          () =>
            `the integer ${clip(text)} at ${this.where(start)} is beyond ±9007199254740991 and loses precision ` +
            `in JavaScript and other parsers that use 64-bit floats; consider a string`,
        );
      }
    }
    return num;
  }

  badNumber(start) {
    const s = this.s;
    const token = s.slice(start, Math.max(sticky(NUMBER_LIKE_RE, s, start), start + 1));
    const shown = "`" + clip(token) + "`";
    if (token === "-" || /^-[A-Za-z]/.test(token)) {
      if (s.startsWith("-Infinity", start)) {
        this.fail("`-Infinity` is not a JSON value", start, "use null, a number or a string");
      }
      this.fail("a `-` sign without a number", start);
    }
    if (/^-?0[xX]/.test(token)) {
      this.fail(`hexadecimal number ${shown}`, start, "JSON numbers are decimal");
    }
    if (/^-?0[0-9]/.test(token)) {
      this.fail(`number with a leading zero ${shown}`, start, "write it without leading zeros, or as a string if the zeros matter");
    }
    if (/^-?[0-9]+\.(?![0-9])/.test(token)) {
      this.fail(`number ending in a decimal point ${shown}`, start, "write digits after the point (1.0) or leave the point out");
    }
    if (/^-?[0-9.]+[eE][+-]?(?![0-9])/.test(token)) {
      this.fail(`number with an empty exponent ${shown}`, start, "write digits after the e, e.g. 1e6");
    }
    if (/^-?[0-9.eE+-]+[A-Za-z]/.test(token)) {
      this.fail(`invalid number ${shown}`, start, "numbers have no units or suffixes; use a string for text");
    }
    this.fail(`invalid number ${shown}`, start, "a JSON number looks like -12, 3.5 or 6.02e23");
  }

  parseString() {
    const s = this.s;
    const start = this.i;
    let i = start + 1;
    let out = "";
    for (;;) {
      const end = sticky(PLAIN_RE, s, i);
      if (end > i) {
        out += s.slice(i, end);
        i = end;
      }
      if (i >= this.n) {
        this.fail("unclosed string", start, 'add the closing "; the text may be cut off');
      }
      const c = s.charCodeAt(i);
      if (c === 0x22) {
        this.i = i + 1;
        return out;
      }
      if (c === 0x5c) {
        const e = s[i + 1];
        switch (e) {
          case '"':
          case "\\":
          case "/":
            out += e;
            break;
          case "b":
            out += "\b";
            break;
          case "f":
            out += "\f";
            break;
          case "n":
            out += "\n";
            break;
          case "r":
            out += "\r";
            break;
          case "t":
            out += "\t";
            break;
          case "u": {
            const hex = s.slice(i + 2, i + 6);
            if (!HEX4_RE.test(hex)) {
              this.fail("invalid \\u escape", i, "\\u must be followed by 4 hexadecimal digits, e.g. \\u00e9");
            }
            out += String.fromCharCode(parseInt(hex, 16));
            i += 4;
            break;
          }
          case undefined:
            this.fail("unclosed string", start, 'add the closing "; the text may be cut off');
            break;
          default:
            this.fail(
              `invalid escape \\${charAt(s, i + 1)}`,
              i,
              'the escapes are \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX; write a backslash itself as \\\\',
            );
        }
        i += 2;
        continue;
      }
      // A control character (U+0000 to U+001F), which must be escaped.
      if (c === 0x0a || c === 0x0d) {
        this.fail(
          "line break inside a string",
          i,
          `write it as \\n, or add the missing closing " of the string that starts at ${this.where(start)}`,
        );
      }
      if (c === 0x09) this.fail("tab character inside a string", i, "write it as \\t");
      const code = c.toString(16).padStart(4, "0");
      this.fail(`control character U+${code.toUpperCase()} inside a string`, i, `write it as \\u${code}`);
    }
  }

  enter() {
    if (this.open.length >= MAX_DEPTH) {
      this.fail(`nesting deeper than ${MAX_DEPTH} levels`, this.i, `the limit is ${MAX_DEPTH} nested arrays and objects`);
    }
    this.open.push(this.i);
    if (this.open.length > this.maxDepth) this.maxDepth = this.open.length;
    this.i++;
  }

  parseArray() {
    const s = this.s;
    const start = this.i;
    this.enter();
    const arr = [];
    this.skipWs();
    if (s[this.i] === "]") {
      this.i++;
      this.open.pop();
      return arr;
    }
    for (;;) {
      arr.push(this.parseValue());
      this.skipWs();
      const ch = s[this.i];
      if (ch === ",") {
        const comma = this.i++;
        this.skipWs();
        if (s[this.i] === "]") this.fail("trailing comma", comma, "remove the `,` before `]`");
        continue;
      }
      if (ch === "]") {
        this.i++;
        break;
      }
      if (ch === undefined) this.ended("`,` or `]`");
      this.noComment();
      if (ch === "}") {
        this.fail("`}` closes an array", this.i, `the array opened at ${this.where(start)} must be closed with \`]\``);
      }
      this.fail(
        `expected \`,\` or \`]\` after an array element, found ${show(charAt(s, this.i))}`,
        this.i,
        /["{[\-0-9tfn]/.test(ch) ? "a comma is missing" : "",
      );
    }
    this.open.pop();
    return arr;
  }

  parseObject() {
    const s = this.s;
    const start = this.i;
    this.enter();
    const obj = new Obj();
    this.skipWs();
    if (s[this.i] === "}") {
      this.i++;
      this.open.pop();
      return obj;
    }
    for (;;) {
      this.skipWs();
      const keyAt = this.i;
      if (s[keyAt] !== '"') this.badKey();
      const key = this.parseString();
      this.skipWs();
      if (s[this.i] !== ":") {
        if (this.i >= this.n) this.ended("`:`");
        this.fail(`expected \`:\` after the key ${JSON.stringify(clip(key))}, found ${show(charAt(s, this.i))}`, this.i);
      }
      this.i++;
      const value = this.parseValue();
      if (this.warnings && obj.map.has(key)) {
        this.warn(() => `duplicate key ${JSON.stringify(clip(key))} at ${this.where(keyAt)}: most parsers keep only its last value`);
      }
      obj.map.set(key, value);
      this.skipWs();
      const ch = s[this.i];
      if (ch === ",") {
        const comma = this.i++;
        this.skipWs();
        if (s[this.i] === "}") this.fail("trailing comma", comma, "remove the `,` before `}`");
        continue;
      }
      if (ch === "}") {
        this.i++;
        break;
      }
      if (ch === undefined) this.ended("`,` or `}`");
      this.noComment();
      if (ch === "]") {
        this.fail("`]` closes an object", this.i, `the object opened at ${this.where(start)} must be closed with \`}\``);
      }
      this.fail(
        `expected \`,\` or \`}\` after the value of ${JSON.stringify(clip(key))}, found ${show(charAt(s, this.i))}`,
        this.i,
        ch === '"' ? "a comma is missing" : "",
      );
    }
    this.open.pop();
    return obj;
  }

  /** Fails when a comment starts here. */
  noComment() {
    const s = this.s;
    if (s[this.i] === "/" && (s[this.i + 1] === "/" || s[this.i + 1] === "*")) {
      this.fail("comment", this.i, "JSON does not allow comments; remove it");
    }
  }

  badKey() {
    const s = this.s;
    const i = this.i;
    if (i >= this.n) this.ended("a key in double quotes");
    const ch = charAt(s, i);
    if (ch === "'") this.fail("single-quoted key", i, 'JSON keys use double quotes: "key"');
    this.noComment();
    if (/[A-Za-z_$]/.test(ch)) {
      const word = s.slice(i, sticky(WORD_RE, s, i));
      this.fail(`unquoted key \`${clip(word)}\``, i, `keys must be strings in double quotes: "${clip(word)}"`);
    }
    if (ch === ",") this.fail("expected a key, found `,`", i, "there is one comma too many");
    this.fail(`expected a key in double quotes, found ${show(ch)}`, i);
  }
}

/** `text` cut to 40 characters for a message. */
function clip(text) {
  return text.length > 40 ? text.slice(0, 40) + "…" : text;
}

// ---------------------------------------------------------------- paths

class PathSyntaxError {
  constructor(message, pos) {
    this.message = message;
    this.pos = pos;
  }
}

/**
 * A parsed path is a list of segments `{descendant, selectors}`. Selectors:
 * {t: "name", name} | {t: "wild"} | {t: "index", index}
 * | {t: "slice", start, end, step} | {t: "filter", expr}.
 */
function parsePath(text) {
  if (text.trim() === "") {
    throw "`path` is empty; pass a JSONPath starting with `$` (the whole document), e.g. `$.items[0].name`";
  }
  if (text.length > MAX_PATH_CHARS) {
    throw `\`path\` is ${count(text.length)} characters long; the limit is ${count(MAX_PATH_CHARS)}`;
  }
  const p = new PathParser(text);
  try {
    return p.parse();
  } catch (e) {
    if (e instanceof PathSyntaxError) {
      const column = locate(text, e.pos).column;
      throw `invalid path at column ${column}: ${e.message}. The path: ${text}`;
    }
    throw e;
  }
}

const NAME_START_RE = /[A-Za-z_\u0080-\uffff]/;
const NAME_RE = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_\-\u0080-\uffff]*/y;
const INT_RE = /-?[0-9]+/y;
const FUNCTIONS = { length: 1, count: 1, match: 2, search: 2, value: 1 };

class PathParser {
  constructor(text) {
    this.s = text;
    this.i = 0;
    this.n = text.length;
    this.depth = 0;
  }

  fail(message, pos = this.i) {
    throw new PathSyntaxError(message, pos);
  }

  found(pos = this.i) {
    return pos >= this.n ? "the end of the path" : show(charAt(this.s, pos));
  }

  skipWs() {
    while (this.i < this.n && " \t\n\r".includes(this.s[this.i])) this.i++;
  }

  parse() {
    this.skipWs();
    const ch = this.s[this.i];
    if (ch !== "$") {
      let hint = "";
      if (ch === "." || ch === "[") hint = `; write \`$${this.s.trim()}\``;
      else if (ch === "@") hint = "; `@` is the current value inside a filter `[?(...)]`, the path itself starts with `$`";
      else if (NAME_START_RE.test(ch)) hint = `; write \`$.${this.s.trim()}\``;
      this.fail(`a path starts with \`$\` (the whole document), found ${this.found()}${hint}`);
    }
    this.i++;
    const segments = this.segments(false);
    this.skipWs();
    if (this.i < this.n) {
      const ch2 = this.s[this.i];
      let hint = "";
      if (ch2 === "?" || ch2 === "(") hint = "; a filter goes in brackets: `[?(@.age > 30)]`";
      else if (ch2 === "]") hint = "; this `]` has no matching `[`";
      this.fail(`unexpected ${this.found()}${hint}`);
    }
    return segments;
  }

  /** Segments after `$` or `@`; in a filter, stops at anything else. */
  segments(inFilter) {
    const list = [];
    for (;;) {
      const save = this.i;
      this.skipWs();
      const ch = this.s[this.i];
      if (ch === ".") list.push(this.dotSegment());
      else if (ch === "[") list.push({ descendant: false, selectors: this.bracket() });
      else {
        this.i = save;
        return list;
      }
      if (inFilter && list.length > 1000) this.fail("the path in the filter is too long");
    }
  }

  dotSegment() {
    const s = this.s;
    const dot = this.i;
    if (s[dot + 1] === ".") {
      this.i = dot + 2;
      const ch = s[this.i];
      if (ch === "*") {
        this.i++;
        return { descendant: true, selectors: [{ t: "wild" }] };
      }
      if (ch === "[") return { descendant: true, selectors: this.bracket() };
      if (ch !== undefined && NAME_START_RE.test(ch)) return { descendant: true, selectors: [{ t: "name", name: this.name() }] };
      if (ch === ".") this.fail("`...` is not valid; `..` selects descendants, e.g. `$..name`");
      this.fail(`expected a name, \`*\` or \`[\` after \`..\`, found ${this.found()}`);
    }
    this.i = dot + 1;
    const ch = s[this.i];
    if (ch === "*") {
      this.i++;
      return { descendant: false, selectors: [{ t: "wild" }] };
    }
    if (ch !== undefined && NAME_START_RE.test(ch)) return { descendant: false, selectors: [{ t: "name", name: this.name() }] };
    if (ch === "[") this.fail("`.[` is not valid; write the brackets without the dot, e.g. `$.a[0]` or `$['key']`");
    if (ch !== undefined && /[0-9]/.test(ch)) {
      const digits = /[0-9]+/.exec(s.slice(this.i))[0];
      this.fail(`a name after \`.\` cannot start with a digit; write \`[${digits}]\` for an array index or \`['${digits}']\` for a key`);
    }
    if (ch === "'" || ch === '"') this.fail(`a quoted name goes in brackets: \`[${ch}name${ch}]\`, not \`.${ch}name${ch}\``);
    if (ch === undefined) this.fail("the path ends after `.`; add a name or `*`");
    this.fail(`expected a name or \`*\` after \`.\`, found ${this.found()}; use \`['...']\` for keys with other characters`);
  }

  name() {
    const end = sticky(NAME_RE, this.s, this.i);
    const name = this.s.slice(this.i, end);
    this.i = end;
    return name;
  }

  /** `[selector, ...]`, starting at `[`. */
  bracket() {
    const open = this.i;
    this.i++;
    this.skipWs();
    if (this.s[this.i] === "]") this.fail("empty brackets `[]`; put an index, a 'name', `*`, a slice or a filter `?(...)` inside");
    const selectors = [];
    for (;;) {
      this.skipWs();
      selectors.push(this.selector());
      this.skipWs();
      const ch = this.s[this.i];
      if (ch === ",") {
        this.i++;
        continue;
      }
      if (ch === "]") {
        this.i++;
        return selectors;
      }
      if (ch === undefined) this.fail(`the \`[\` at column ${locate(this.s, open).column} is not closed; add \`]\``);
      this.fail(`expected \`,\` or \`]\` in brackets, found ${this.found()}`);
    }
  }

  selector() {
    const s = this.s;
    const ch = s[this.i];
    if (ch === "'" || ch === '"') return { t: "name", name: this.stringLiteral() };
    if (ch === "*") {
      this.i++;
      return { t: "wild" };
    }
    if (ch === "?") {
      this.i++;
      const expr = this.logical();
      this.skipWs();
      if (this.i < this.n && this.s[this.i] !== "," && this.s[this.i] !== "]") this.badOperator("`]`");
      return { t: "filter", expr };
    }
    if (ch === "-" || ch === ":" || (ch !== undefined && /[0-9]/.test(ch))) return this.indexOrSlice();
    if (ch !== undefined && NAME_START_RE.test(ch)) {
      const word = s.slice(this.i, sticky(NAME_RE, s, this.i));
      this.fail(`a name in brackets must be quoted: \`['${word}']\`, or written \`.${word}\``);
    }
    if (ch === "(") this.fail("a filter starts with `?`: `[?(@.age > 30)]`");
    if (ch === "@") this.fail("a filter starts with `?`: `[?@.name == 'x']`");
    if (ch === undefined) this.fail("the path ends inside brackets; add a selector and `]`");
    this.fail(`expected an index, a 'name', \`*\`, a slice or a filter \`?\` in brackets, found ${this.found()}`);
  }

  integer(what) {
    const start = this.i;
    const end = sticky(INT_RE, this.s, start);
    if (end === start) this.fail(`expected ${what}, found ${this.found()}`);
    const text = this.s.slice(start, end);
    const value = Number(text);
    if (!Number.isSafeInteger(value)) this.fail(`the number ${clip(text)} is out of range`, start);
    this.i = end;
    return value;
  }

  indexOrSlice() {
    const parts = [undefined, undefined, undefined];
    let colons = 0;
    for (;;) {
      this.skipWs();
      const ch = this.s[this.i];
      if (ch === ":") {
        if (colons === 2) this.fail("a slice has at most two `:`, as in `[start:end:step]`");
        colons++;
        this.i++;
        continue;
      }
      if (ch === "-" || (ch !== undefined && /[0-9]/.test(ch))) {
        if (parts[colons] !== undefined) this.fail(`expected \`:\`, \`,\` or \`]\`, found ${this.found()}`);
        parts[colons] = this.integer("a whole number");
        if (this.s[this.i] === ".") this.fail("indexes are whole numbers");
        continue;
      }
      break;
    }
    if (colons === 0) return { t: "index", index: parts[0] };
    return { t: "slice", start: parts[0], end: parts[1], step: parts[2] ?? 1 };
  }

  /** A string literal in single or double quotes, with JSON-style escapes. */
  stringLiteral() {
    const s = this.s;
    const start = this.i;
    const quote = s[start];
    let out = "";
    let i = start + 1;
    for (;;) {
      if (i >= this.n) this.fail(`the string starting at column ${locate(s, start).column} is not closed; add ${quote}`, start);
      const ch = s[i];
      if (ch === quote) {
        this.i = i + 1;
        return out;
      }
      if (ch === "\\") {
        const e = s[i + 1];
        const simple = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", "/": "/", "\\": "\\", "'": "'", '"': '"' };
        if (e !== undefined && e in simple) {
          out += simple[e];
          i += 2;
          continue;
        }
        if (e === "u" && HEX4_RE.test(s.slice(i + 2, i + 6))) {
          out += String.fromCharCode(parseInt(s.slice(i + 2, i + 6), 16));
          i += 6;
          continue;
        }
        this.fail(`invalid escape \`\\${e ?? ""}\` in a string; write a backslash as \`\\\\\``, i);
      }
      out += ch;
      i++;
    }
  }

  // Filter expressions: logical := and ('||' and)*; and := unary ('&&' unary)*;
  // unary := '!' unary | '(' logical ')' | comparison-or-test.

  logical() {
    if (++this.depth > 64) this.fail("the filter is nested too deeply (over 64 levels)");
    let left = this.and();
    for (;;) {
      this.skipWs();
      if (this.s.startsWith("||", this.i)) {
        this.i += 2;
        left = { t: "or", a: left, b: this.and() };
      } else break;
    }
    this.depth--;
    return left;
  }

  and() {
    let left = this.unary();
    for (;;) {
      this.skipWs();
      if (this.s.startsWith("&&", this.i)) {
        this.i += 2;
        left = { t: "and", a: left, b: this.unary() };
      } else break;
    }
    return left;
  }

  unary() {
    this.skipWs();
    const s = this.s;
    if (s[this.i] === "!" && s[this.i + 1] !== "=") {
      if (++this.depth > 64) this.fail("the filter is nested too deeply (over 64 levels)");
      this.i++;
      this.skipWs();
      let operand;
      if (s[this.i] === "!" || s[this.i] === "(") {
        operand = this.unary();
      } else {
        // `!` applies to a test (a path or match/search), never to a comparison.
        const at = this.i;
        const e = this.operand();
        this.skipWs();
        if (this.comparisonAhead()) this.fail("put a comparison after `!` in parentheses: `!(@.a == 1)`");
        operand = this.asTest(e, at);
      }
      this.depth--;
      return { t: "not", e: operand };
    }
    if (s[this.i] === "(") {
      const open = this.i++;
      const inner = this.logical();
      this.skipWs();
      if (s[this.i] !== ")") {
        if (this.i >= this.n) this.fail(`the \`(\` at column ${locate(s, open).column} is not closed; add \`)\``);
        this.badOperator("`)`");
      }
      this.i++;
      return inner;
    }
    const at = this.i;
    const left = this.operand();
    this.skipWs();
    const op = this.operator();
    if (op) {
      const right = this.operand();
      this.comparable(left);
      this.comparable(right);
      return { t: "cmp", op, a: left, b: right };
    }
    return this.asTest(left, at);
  }

  /** An operand used as a test: a path tests existence; match/search test text. */
  asTest(e, at) {
    if (e.t === "path") return { t: "exists", path: e };
    if (e.t === "fn" && (e.name === "match" || e.name === "search")) return e;
    if (e.t === "fn") {
      this.fail(`\`${e.name}(...)\` gives a value, not true or false; compare it, e.g. \`${e.name}(@.tags) > 2\``, at);
    }
    this.fail("a literal alone is not a test; compare something with it, e.g. `@.active == true`", at);
  }

  comparisonAhead() {
    return /^(==|!=|<|>|=)/.test(this.s.slice(this.i, this.i + 2));
  }

  operator() {
    const s = this.s;
    const two = s.slice(this.i, this.i + 3);
    if (two.startsWith("===") || two.startsWith("!==")) this.fail(`use \`${two.slice(0, 2)}\`, not \`${two}\``);
    for (const op of ["==", "!=", "<=", ">=", "<", ">"]) {
      if (s.startsWith(op, this.i)) {
        this.i += op.length;
        return op;
      }
    }
    if (s[this.i] === "~" || s.startsWith("=~", this.i)) this.fail("use `match(@.x, 'regex')` or `search(@.x, 'regex')` for regular expressions");
    if (s[this.i] === "=") this.fail("use `==` to compare, not `=`");
    return null;
  }

  badOperator(closer) {
    const s = this.s;
    const word = /^[A-Za-z]+/.exec(s.slice(this.i))?.[0];
    if (word === "and" || word === "AND") this.fail("use `&&` for and");
    if (word === "or" || word === "OR") this.fail("use `||` for or");
    if (word === "in" || word === "nin") this.fail("`in` is not supported; combine comparisons with `||`, e.g. `@.x == 'a' || @.x == 'b'`");
    this.fail(`expected ${closer}, \`&&\`, \`||\` or a comparison, found ${this.found()}`);
  }

  /** Paths in comparisons must select at most one value. */
  comparable(e) {
    if (e.t === "path" && !e.singular) {
      this.fail(
        "a path in a comparison must select a single value (names and indexes only, no `*`, `..`, slices or filters); " +
          "use `count(...)` or an existence test for several",
        e.pos,
      );
    }
    if (e.t === "fn" && (e.name === "match" || e.name === "search")) {
      this.fail(`\`${e.name}(...)\` is already true or false; use it without comparing it`, e.pos);
    }
  }

  /** A path from `@` or `$`, a literal, or a function call. */
  operand() {
    this.skipWs();
    const s = this.s;
    const pos = this.i;
    const ch = s[pos];
    if (ch === "@" || ch === "$") {
      this.i++;
      const segments = this.segments(true);
      const singular = segments.every((g) => !g.descendant && g.selectors.length === 1 && (g.selectors[0].t === "name" || g.selectors[0].t === "index"));
      return { t: "path", root: ch, segments, singular, pos };
    }
    if (ch === "'" || ch === '"') return { t: "lit", value: this.stringLiteral(), pos };
    if (ch === "-" || (ch !== undefined && /[0-9]/.test(ch))) {
      const end = sticky(NUMBER_RE, s, pos);
      if (end === pos || /[0-9A-Za-z.]/.test(s[end] ?? "")) {
        const token = s.slice(pos, Math.max(sticky(NUMBER_LIKE_RE, s, pos), pos + 1));
        this.fail(`invalid number \`${clip(token)}\`; write numbers as in JSON, e.g. 30, -1.5 or 2e3`);
      }
      this.i = end;
      return { t: "lit", value: makeNumber(s.slice(pos, end)), pos };
    }
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(pos, pos + 64))?.[0];
    if (word !== undefined) {
      this.i = pos + word.length;
      if (word === "true" || word === "false") return { t: "lit", value: word === "true", pos };
      if (word === "null") return { t: "lit", value: null, pos };
      this.skipWs();
      if (s[this.i] === "(" && word in FUNCTIONS) return this.call(word, pos);
      if (word === "and" || word === "or" || word === "not") {
        this.fail(`use \`${{ and: "&&", or: "||", not: "!" }[word]}\`, not \`${word}\``, pos);
      }
      if (s[this.i] === "(") {
        this.fail(`unknown function \`${word}\`; the functions are length, count, match, search and value`, pos);
      }
      this.fail(`unexpected name \`${word}\`; refer to a member of the tested value as \`@.${word}\`, and quote strings: '${word}'`, pos);
    }
    if (ch === undefined) this.fail("the filter ends early; expected a value such as `@.name`, a number or a 'string'");
    this.fail(`expected a value (\`@.name\`, a number, a 'string', true, false or null), found ${this.found()}`);
  }

  call(name, pos) {
    this.i++; // (
    const args = [];
    this.skipWs();
    if (this.s[this.i] !== ")") {
      for (;;) {
        args.push(this.operand());
        this.skipWs();
        if (this.s[this.i] === ",") {
          this.i++;
          continue;
        }
        if (this.s[this.i] === ")") break;
        this.fail(`expected \`,\` or \`)\` in \`${name}(...)\`, found ${this.found()}`);
      }
    }
    this.i++;
    if (args.length !== FUNCTIONS[name]) {
      const usage = { length: "length(@.x)", count: "count(@.x[*])", match: "match(@.x, 'regex')", search: "search(@.x, 'regex')", value: "value(@..x)" }[name];
      this.fail(`\`${name}\` takes ${FUNCTIONS[name]} argument${FUNCTIONS[name] === 1 ? "" : "s"}, as in \`${usage}\`, but was given ${args.length}`, pos);
    }
    const fn = { t: "fn", name, args, pos };
    if (name === "count" || name === "value") {
      if (args[0].t !== "path") this.fail(`the argument of \`${name}\` must be a path such as \`@.items[*]\``, args[0].pos);
    } else {
      for (const a of args) {
        if (a.t === "fn" && (a.name === "match" || a.name === "search")) this.fail(`\`${a.name}\` gives true or false, not a value`, a.pos);
        if (a.t === "path" && !a.singular) this.fail(`the argument of \`${name}\` must be a path to a single value`, a.pos);
      }
    }
    if ((name === "match" || name === "search") && args[1].t === "lit") {
      const pattern = args[1].value;
      if (typeof pattern !== "string") this.fail(`the pattern of \`${name}\` must be a string such as 'ab+c'`, args[1].pos);
      try {
        fn.regex = new RegExp(name === "match" ? `^(?:${pattern})$` : pattern, "u");
      } catch (e) {
        this.fail(`invalid regular expression in \`${name}\`: ${e.message}`, args[1].pos);
      }
    }
    return fn;
  }
}

// ---------------------------------------------------------------- query

const NOTHING = Symbol("nothing");

/** The values `segments` select from `start` (`root` is the document for `$`). */
function select(segments, start, root) {
  let nodes = [start];
  for (let g = 0; g < segments.length; g++) {
    const segment = segments[g];
    const next = [];
    for (let k = 0; k < nodes.length; k++) {
      if (segment.descendant) descend(nodes[k], segment.selectors, next, root);
      else apply(segment.selectors, nodes[k], next, root);
      if (next.length > MAX_NODES) tooMany();
    }
    nodes = next;
    if (nodes.length === 0) break;
  }
  return nodes;
}

function tooMany() {
  throw `the path selects more than ${count(MAX_NODES)} values along the way; narrow it, e.g. avoid repeating \`..\``;
}

/** Applies `selectors` to `node` and to every value below it, in document order. */
function descend(node, selectors, out, root) {
  apply(selectors, node, out, root);
  if (out.length > MAX_NODES) tooMany();
  if (!isContainer(node)) return;
  const children = childrenOf(node);
  for (let k = 0; k < children.length; k++) {
    const child = children[k];
    if (typeof child === "object" && child !== null) descend(child, selectors, out, root);
  }
}

function apply(selectors, node, out, root) {
  if (!isContainer(node)) return;
  const isArray = Array.isArray(node);
  for (let s = 0; s < selectors.length; s++) {
    const sel = selectors[s];
    switch (sel.t) {
      case "name":
        if (!isArray && hasKey(node, sel.name)) out.push(member(node, sel.name));
        break;
      case "wild": {
        const children = childrenOf(node);
        for (let k = 0; k < children.length; k++) out.push(children[k]);
        break;
      }
      case "index":
        if (isArray) {
          const k = sel.index < 0 ? node.length + sel.index : sel.index;
          if (k >= 0 && k < node.length) out.push(node[k]);
        }
        break;
      case "slice":
        if (isArray) slice(node, sel, out);
        break;
      case "filter": {
        const children = childrenOf(node);
        for (let k = 0; k < children.length; k++) if (test(sel.expr, children[k], root)) out.push(children[k]);
        break;
      }
    }
  }
}

/** RFC 9535 array slice. */
function slice(arr, sel, out) {
  const len = arr.length;
  const step = sel.step;
  if (step === 0) return;
  const norm = (k) => (k >= 0 ? k : len + k);
  if (step > 0) {
    const lower = Math.min(Math.max(norm(sel.start ?? 0), 0), len);
    const upper = Math.min(Math.max(norm(sel.end ?? len), 0), len);
    for (let k = lower; k < upper; k += step) out.push(arr[k]);
  } else {
    const upper = Math.min(Math.max(sel.start === undefined ? len - 1 : norm(sel.start), -1), len - 1);
    const lower = Math.min(Math.max(sel.end === undefined ? -1 : norm(sel.end), -1), len - 1);
    for (let k = upper; k > lower; k += step) out.push(arr[k]);
  }
}

function test(e, cur, root) {
  switch (e.t) {
    case "or":
      return test(e.a, cur, root) || test(e.b, cur, root);
    case "and":
      return test(e.a, cur, root) && test(e.b, cur, root);
    case "not":
      return !test(e.e, cur, root);
    case "exists":
      return e.path.singular
        ? singular(e.path, cur, root) !== NOTHING
        : select(e.path.segments, e.path.root === "@" ? cur : root, root).length > 0;
    case "cmp":
      return compare(e.op, evaluate(e.a, cur, root), evaluate(e.b, cur, root));
    case "fn":
      return matches(e, cur, root);
  }
  return false;
}

function singular(path, cur, root) {
  let v = path.root === "@" ? cur : root;
  const segments = path.segments;
  for (let g = 0; g < segments.length; g++) {
    const sel = segments[g].selectors[0];
    if (sel.t === "name") {
      if (typeOf(v) !== "object" || !hasKey(v, sel.name)) return NOTHING;
      v = member(v, sel.name);
    } else {
      if (!Array.isArray(v)) return NOTHING;
      const k = sel.index < 0 ? v.length + sel.index : sel.index;
      if (k < 0 || k >= v.length) return NOTHING;
      v = v[k];
    }
  }
  return v;
}

/** The value of a comparison operand, or NOTHING. */
function evaluate(e, cur, root) {
  if (e.t === "lit") return e.value;
  if (e.t === "path") return singular(e, cur, root);
  const arg = e.args[0];
  switch (e.name) {
    case "length": {
      const v = evaluate(arg, cur, root);
      const t = typeOf(v);
      if (t === "string") return codePoints(v);
      if (t === "array") return v.length;
      if (t === "object") return keysOf(v).length;
      return NOTHING;
    }
    case "count":
      return select(arg.segments, arg.root === "@" ? cur : root, root).length;
    case "value": {
      const nodes = select(arg.segments, arg.root === "@" ? cur : root, root);
      return nodes.length === 1 ? nodes[0] : NOTHING;
    }
  }
  return NOTHING;
}

const regexCache = new Map();

function matches(e, cur, root) {
  const text = evaluate(e.args[0], cur, root);
  if (typeof text !== "string") return false;
  let regex = e.regex;
  if (!regex) {
    const pattern = evaluate(e.args[1], cur, root);
    if (typeof pattern !== "string") return false;
    const source = e.name === "match" ? `^(?:${pattern})$` : pattern;
    regex = regexCache.get(source);
    if (regex === undefined) {
      try {
        regex = new RegExp(source, "u");
      } catch {
        regex = null;
      }
      regexCache.set(source, regex);
    }
    if (regex === null) return false;
  }
  return regex.test(text);
}

/** RFC 9535 comparison of two operands (either may be NOTHING). */
function compare(op, a, b) {
  switch (op) {
    case "==":
      return equal(a, b);
    case "!=":
      return !equal(a, b);
    case "<":
      return less(a, b);
    case ">":
      return less(b, a);
    case "<=":
      return less(a, b) || equal(a, b);
    case ">=":
      return less(b, a) || equal(a, b);
  }
  return false;
}

function equal(a, b) {
  if (a === NOTHING || b === NOTHING) return a === b;
  const t = typeOf(a);
  if (t !== typeOf(b)) return false;
  if (t === "number") return compareNumbers(a, b) === 0;
  if (t === "array" || t === "object") return canonical(a, null) === canonical(b, null);
  return a === b;
}

function less(a, b) {
  const t = typeOf(a);
  if (t !== typeOf(b)) return false;
  if (t === "number") return compareNumbers(a, b) < 0;
  if (t === "string") return compareStrings(a, b) < 0;
  return false;
}

/**
 * A string equal for two values exactly when they are the same JSON value:
 * object keys sorted, numbers by value. `memo` caches containers.
 */
function canonical(v, memo) {
  const t = typeOf(v);
  if (t === "number") return numberKey(v);
  if (t === "string") return quote(v);
  if (t !== "array" && t !== "object") return String(v);
  if (memo) {
    const known = memo.get(v);
    if (known !== undefined) return known;
  }
  const parts = [];
  let text;
  if (t === "array") {
    for (let k = 0; k < v.length; k++) parts.push(canonical(v[k], memo));
    text = "[" + parts.join(",") + "]";
  } else {
    // Any fixed order will do here: the native one is the fastest.
    const keys = keysOf(v).sort();
    for (let k = 0; k < keys.length; k++) parts.push(quote(keys[k]) + ":" + canonical(member(v, keys[k]), memo));
    text = "{" + parts.join(",") + "}";
  }
  if (memo) memo.set(v, text);
  return text;
}

// ---------------------------------------------------------------- diff

const SHORT_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The path of member `key` below `path`, in a form `query` accepts. */
function memberPath(path, key) {
  if (SHORT_NAME_RE.test(key)) return `${path}.${key}`;
  let quoted = "";
  for (const ch of key) {
    const c = ch.codePointAt(0);
    if (ch === "'" || ch === "\\") quoted += "\\" + ch;
    else if (c < 0x20) quoted += "\\u" + c.toString(16).padStart(4, "0");
    else quoted += ch;
  }
  return `${path}['${quoted}']`;
}

function record(state, path, kind, before, after) {
  state.total++;
  if (state.changes.length >= MAX_CHANGES) return;
  const change = { path, kind };
  if (before !== NOTHING) change.before = shown(before, state.shape);
  if (after !== NOTHING) change.after = shown(after, state.shape);
  state.changes.push(change);
}

function shown(v, shape) {
  const text = toJson(v, 0, shape);
  if (text.length <= MAX_VALUE_CHARS) return text;
  let cut = MAX_VALUE_CHARS;
  if (isHighSurrogate(text.charCodeAt(cut - 1))) cut--;
  return text.slice(0, cut) + "…";
}

function compareValues(a, b, path, state) {
  const t = typeOf(a);
  if (t !== typeOf(b)) {
    record(state, path, "changed", a, b);
  } else if (t === "object") {
    const keysA = keysOf(a);
    for (let k = 0; k < keysA.length; k++) {
      const key = keysA[k];
      const sub = memberPath(path, key);
      if (hasKey(b, key)) compareValues(member(a, key), member(b, key), sub, state);
      else record(state, sub, "removed", member(a, key), NOTHING);
    }
    const keysB = keysOf(b);
    for (let k = 0; k < keysB.length; k++) {
      const key = keysB[k];
      if (!hasKey(a, key)) record(state, memberPath(path, key), "added", NOTHING, member(b, key));
    }
  } else if (t === "array") {
    compareArrays(a, b, path, state);
  } else if (!equal(a, b)) {
    record(state, path, "changed", a, b);
  }
}

/**
 * Matches equal elements of two arrays (longest common subsequence after
 * trimming the common ends), then reports each gap: elements paired up in
 * order are compared inside, the rest are removed or added.
 */
function compareArrays(a, b, path, state) {
  const ka = new Array(a.length);
  for (let k = 0; k < a.length; k++) ka[k] = canonical(a[k], state.canon);
  const kb = new Array(b.length);
  for (let k = 0; k < b.length; k++) kb[k] = canonical(b[k], state.canon);
  let head = 0;
  while (head < a.length && head < b.length && ka[head] === kb[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && ka[a.length - 1 - tail] === kb[b.length - 1 - tail]) tail++;
  const n = a.length - head - tail;
  const m = b.length - head - tail;
  // Matched pairs (index in a, index in b), in order, for the middle part.
  const pairs = [];
  if (n > 0 && m > 0 && (n + 1) * (m + 1) <= MAX_LCS_CELLS) {
    const width = m + 1;
    const table = new Uint16Array((n + 1) * width);
    for (let x = n - 1; x >= 0; x--) {
      for (let y = m - 1; y >= 0; y--) {
        table[x * width + y] =
          ka[head + x] === kb[head + y]
            ? table[(x + 1) * width + y + 1] + 1
            : Math.max(table[(x + 1) * width + y], table[x * width + y + 1]);
      }
    }
    let x = 0;
    let y = 0;
    while (x < n && y < m) {
      if (ka[head + x] === kb[head + y]) {
        pairs.push([head + x, head + y]);
        x++;
        y++;
      } else if (table[(x + 1) * width + y] >= table[x * width + y + 1]) x++;
      else y++;
    }
  }
  pairs.push([a.length - tail, b.length - tail]); // the common tail ends the last gap
  let x = head;
  let y = head;
  for (const [px, py] of pairs) {
    const removed = px - x;
    const added = py - y;
    const paired = Math.min(removed, added);
    for (let k = 0; k < paired; k++) compareValues(a[x + k], b[y + k], `${path}[${y + k}]`, state);
    for (let k = paired; k < removed; k++) record(state, `${path}[${x + k}]`, "removed", a[x + k], NOTHING);
    for (let k = paired; k < added; k++) record(state, `${path}[${y + k}]`, "added", NOTHING, b[y + k]);
    x = px + 1;
    y = py + 1;
  }
}
