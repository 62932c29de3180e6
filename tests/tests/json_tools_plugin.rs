//! The `json-tools` plugin (JavaScript, componentize-js) through the real runtime: exact results, every error with its message, the WIT docs, host validation, Unicode, depth and size limits.

#![allow(clippy::unwrap_used)]

use launch::plugins::{Registry, ToolError};
use launch_tests::{PluginDir, call_ok as ok, tool_error as tool_err};
use serde_json::{Value, json};

/// The example document of the `query` docs.
const USERS: &str = r#"{"users": [{"name": "Ada", "age": 36}, {"name": "Bob", "age": 25, "email": "bob@example.com"}]}"#;

/// A bookstore, the classic JSONPath example, with a few extras.
const STORE: &str = r#"{
  "store": {
    "book": [
      {"category": "reference", "author": "Nigel Rees", "title": "Sayings of the Century", "price": 8.95},
      {"category": "fiction", "author": "Evelyn Waugh", "title": "Sword of Honour", "price": 12.99},
      {"category": "fiction", "author": "Herman Melville", "title": "Moby Dick", "isbn": "0-553-21311-3", "price": 8.99},
      {"category": "fiction", "author": "J. R. R. Tolkien", "title": "The Lord of the Rings", "isbn": "0-395-19395-8", "price": 22.99}
    ],
    "bicycle": {"color": "red", "price": 399},
    "first name": "Ann's",
    "content-type": "text/plain",
    "10": "ten", "2": "two"
  },
  "limit": 10,
  "big": 12345678901234567890,
  "exact": 1.50
}"#;

fn load() -> (PluginDir, Registry) {
    let dir = PluginDir::new().plugin("json-tools");
    let r = dir.load();
    (dir, r)
}

/// `json_tools_query`: the JSON text it returns, parsed.
async fn query(r: &Registry, document: &str, path: &str) -> Value {
    let text = ok(
        r,
        "json_tools_query",
        json!({"document": document, "path": path}),
    )
    .await;
    serde_json::from_str(text.as_str().unwrap()).unwrap()
}

/// `json_tools_query`: the exact JSON text it returns.
async fn query_text(r: &Registry, document: &str, path: &str) -> String {
    let text = ok(
        r,
        "json_tools_query",
        json!({"document": document, "path": path}),
    )
    .await;
    text.as_str().unwrap().to_owned()
}

async fn query_err(r: &Registry, document: &str, path: &str) -> String {
    tool_err(
        r,
        "json_tools_query",
        json!({"document": document, "path": path}),
    )
    .await
}

async fn format(r: &Registry, args: Value) -> String {
    ok(r, "json_tools_format", args)
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn query_selects_what_the_docs_promise() {
    let (_dir, r) = load();
    // The examples of the tool description, exactly.
    for (path, expected) in [
        ("$.users[0].name", r#"["Ada"]"#),
        ("$.users[*].name", r#"["Ada","Bob"]"#),
        ("$..age", "[36,25]"),
        ("$.users[?(@.age > 30)].name", r#"["Ada"]"#),
        ("$.users[?@.email].name", r#"["Bob"]"#),
        (
            "$.users[-1:]",
            r#"[{"name":"Bob","age":25,"email":"bob@example.com"}]"#,
        ),
        ("$.nobody", "[]"),
    ] {
        assert_eq!(query_text(&r, USERS, path).await, expected, "{path}");
    }
    // The brief's own example.
    assert_eq!(query_text(&r, r#"{"a":[1,2]}"#, "$.a[1]").await, "[2]");

    for (path, expected) in [
        ("$", json!([serde_json::from_str::<Value>(STORE).unwrap()])),
        ("$.store.book[0].title", json!(["Sayings of the Century"])),
        (
            "$['store']['book'][-1]['author']",
            json!(["J. R. R. Tolkien"]),
        ),
        (r#"$["store"].bicycle.color"#, json!(["red"])),
        ("$.store['first name']", json!(["Ann's"])),
        (r"$.store['Ann\'s']", json!([])),
        ("$.store.content-type", json!(["text/plain"])),
        ("$.store.book[1,3].price", json!([12.99, 22.99])),
        (
            "$.store.book[0:2].author",
            json!(["Nigel Rees", "Evelyn Waugh"]),
        ),
        ("$.store.book[::2].price", json!([8.95, 8.99])),
        (
            "$.store.book[::-1].price",
            json!([22.99, 8.99, 12.99, 8.95]),
        ),
        ("$.store.book[-2:].price", json!([8.99, 22.99])),
        ("$.store.book[:-3].price", json!([8.95])),
        ("$.store.book[5:1:-2].price", json!([22.99])),
        ("$.store.book[0:4:0]", json!([])),
        ("$.store.book[7]", json!([])),
        ("$.store.book[-5]", json!([])),
        ("$.store.book.title", json!([])),
        ("$.store.bicycle[0]", json!([])),
        ("$..isbn", json!(["0-553-21311-3", "0-395-19395-8"])),
        ("$.store..price", json!([8.95, 12.99, 8.99, 22.99, 399])),
        ("$.store.book[*].author[0]", json!([])),
        ("$..book[2]['title','price']", json!(["Moby Dick", 8.99])),
        (
            "$..book[?(@.isbn)].title",
            json!(["Moby Dick", "The Lord of the Rings"]),
        ),
        ("$..book[?!@.isbn].price", json!([8.95, 12.99])),
        (
            "$..book[?(@.price < 10)].title",
            json!(["Sayings of the Century", "Moby Dick"]),
        ),
        ("$..book[?(@.price <= 8.99)].price", json!([8.95, 8.99])),
        (
            "$..book[?(@.price >= 12.99 && @.category == 'fiction')].price",
            json!([12.99, 22.99]),
        ),
        (
            "$..book[?(@.price > 20 || @.author == \"Nigel Rees\")].price",
            json!([8.95, 22.99]),
        ),
        (
            "$..book[?(!(@.category == 'fiction'))].price",
            json!([8.95]),
        ),
        ("$..book[?(@.category != 'fiction')].price", json!([8.95])),
        ("$..book[?(@.price < $.limit)].price", json!([8.95, 8.99])),
        ("$..book[?(@.missing == null)].price", json!([])),
        (
            "$..book[?(@.missing != 1)].price",
            json!([8.95, 12.99, 8.99, 22.99]),
        ),
        ("$..book[?(@.price > 'a')].price", json!([])),
        ("$..book[?(@.author < 'H')].author", json!(["Evelyn Waugh"])),
        (
            "$..book[?match(@.author, 'H.*e')].author",
            json!(["Herman Melville"]),
        ),
        ("$..book[?match(@.author, 'Herman')].author", json!([])),
        (
            "$..book[?search(@.author, 'R\\\\.')].author",
            json!(["J. R. R. Tolkien"]),
        ),
        ("$..book[?length(@.title) > 16].price", json!([8.95, 22.99])),
        ("$.store[?length(@) == 3]", json!(["ten", "two"])),
        (
            "$[?count(@.book[*]) == 4]",
            json!([serde_json::from_str::<Value>(STORE).unwrap()["store"]]),
        ),
        (
            "$.store.book[?value(@..isbn) == '0-553-21311-3'].title",
            json!(["Moby Dick"]),
        ),
        (
            "$.store.book[?(@.price == 8.950)].title",
            json!(["Sayings of the Century"]),
        ),
        ("$[?(@ == 1.5)]", json!([1.5])),
        (
            "$[?(@ == 12345678901234567890)]",
            json!([12345678901234567890u64]),
        ),
        ("$[?(@ == 12345678901234567891)]", json!([])),
        ("$.store.bicycle.*", json!(["red", 399])),
        ("$.store.bicycle[*]", json!(["red", 399])),
        (
            "$..book[0][*]",
            json!(["reference", "Nigel Rees", "Sayings of the Century", 8.95]),
        ),
        ("  $ .limit  ", json!([10])),
    ] {
        assert_eq!(query(&r, STORE, path).await, expected, "{path}");
    }
    // Numbers come back exactly as written, and keys in document order even
    // where JavaScript would reorder them (integer-like keys first).
    assert_eq!(
        query_text(&r, STORE, "$['big','exact']").await,
        "[12345678901234567890,1.50]"
    );
    assert_eq!(
        query_text(&r, STORE, "$.store[?(@ != 1)]").await,
        r#"[[{"category":"reference","author":"Nigel Rees","title":"Sayings of the Century","price":8.95},{"category":"fiction","author":"Evelyn Waugh","title":"Sword of Honour","price":12.99},{"category":"fiction","author":"Herman Melville","title":"Moby Dick","isbn":"0-553-21311-3","price":8.99},{"category":"fiction","author":"J. R. R. Tolkien","title":"The Lord of the Rings","isbn":"0-395-19395-8","price":22.99}],{"color":"red","price":399},"Ann's","text/plain","ten","two"]"#
    );
    // Descendants in document order, the node itself first.
    assert_eq!(
        query_text(&r, r#"{"a":{"a":1,"b":[{"a":2}]},"c":{"a":3}}"#, "$..a").await,
        r#"[{"a":1,"b":[{"a":2}]},1,2,3]"#
    );
    assert_eq!(
        query_text(&r, "[[1,[2]],3]", "$..*").await,
        "[[1,[2]],3,1,[2],2]"
    );
    // Duplicate keys: the last value wins, as with JSON.parse.
    assert_eq!(query_text(&r, r#"{"a":1,"a":2}"#, "$.a").await, "[2]");
    // Scalars at the top level.
    assert_eq!(query_text(&r, " 42 ", "$").await, "[42]");
    assert_eq!(query_text(&r, "\"x\"", "$[0]").await, "[]");
}

#[tokio::test]
async fn query_errors_name_the_problem_and_where() {
    let (_dir, r) = load();
    for (path, expected) in [
        (
            "",
            "`path` is empty; pass a JSONPath starting with `$` (the whole document), e.g. `$.items[0].name`",
        ),
        (
            "a.b",
            "invalid path at column 1: a path starts with `$` (the whole document), found `a`; write `$.a.b`. The path: a.b",
        ),
        (
            ".a",
            "invalid path at column 1: a path starts with `$` (the whole document), found `.`; write `$.a`. The path: .a",
        ),
        (
            "@.a",
            "invalid path at column 1: a path starts with `$` (the whole document), found `@`; `@` is the current value inside a filter `[?(...)]`, the path itself starts with `$`. The path: @.a",
        ),
        (
            "$.users[name]",
            "invalid path at column 9: a name in brackets must be quoted: `['name']`, or written `.name`. The path: $.users[name]",
        ),
        (
            "$.0",
            "invalid path at column 3: a name after `.` cannot start with a digit; write `[0]` for an array index or `['0']` for a key. The path: $.0",
        ),
        (
            "$.",
            "invalid path at column 3: the path ends after `.`; add a name or `*`. The path: $.",
        ),
        (
            "$.a.[0]",
            "invalid path at column 5: `.[` is not valid; write the brackets without the dot, e.g. `$.a[0]` or `$['key']`. The path: $.a.[0]",
        ),
        (
            "$...a",
            "invalid path at column 4: `...` is not valid; `..` selects descendants, e.g. `$..name`. The path: $...a",
        ),
        (
            "$.a#b",
            "invalid path at column 4: unexpected `#`. The path: $.a#b",
        ),
        (
            "$.a]",
            "invalid path at column 4: unexpected `]`; this `]` has no matching `[`. The path: $.a]",
        ),
        (
            "$[0",
            "invalid path at column 4: the `[` at column 2 is not closed; add `]`. The path: $[0",
        ),
        (
            "$[]",
            "invalid path at column 3: empty brackets `[]`; put an index, a 'name', `*`, a slice or a filter `?(...)` inside. The path: $[]",
        ),
        (
            "$['a",
            "invalid path at column 3: the string starting at column 3 is not closed; add '. The path: $['a",
        ),
        (
            "$[1.5]",
            "invalid path at column 4: indexes are whole numbers. The path: $[1.5]",
        ),
        (
            "$[1:2:3:4]",
            "invalid path at column 8: a slice has at most two `:`, as in `[start:end:step]`. The path: $[1:2:3:4]",
        ),
        (
            "$[99999999999999999999]",
            "invalid path at column 3: the number 99999999999999999999 is out of range. The path: $[99999999999999999999]",
        ),
        (
            "$[(@.a)]",
            "invalid path at column 3: a filter starts with `?`: `[?(@.age > 30)]`. The path: $[(@.a)]",
        ),
        (
            "$[?(@.age = 3)]",
            "invalid path at column 11: use `==` to compare, not `=`. The path: $[?(@.age = 3)]",
        ),
        (
            "$[?(@.age === 3)]",
            "invalid path at column 11: use `==`, not `===`. The path: $[?(@.age === 3)]",
        ),
        (
            "$[?(@.a > 1 and @.b)]",
            "invalid path at column 13: use `&&` for and. The path: $[?(@.a > 1 and @.b)]",
        ),
        (
            "$[?(@.a > 1 or @.b)]",
            "invalid path at column 13: use `||` for or. The path: $[?(@.a > 1 or @.b)]",
        ),
        (
            "$[?(@.a == 1]",
            "invalid path at column 13: expected `)`, `&&`, `||` or a comparison, found `]`. The path: $[?(@.a == 1]",
        ),
        (
            "$[?(@.a == 1",
            "invalid path at column 13: the `(` at column 4 is not closed; add `)`. The path: $[?(@.a == 1",
        ),
        (
            "$[?@.name == Ada]",
            "invalid path at column 14: unexpected name `Ada`; refer to a member of the tested value as `@.Ada`, and quote strings: 'Ada'. The path: $[?@.name == Ada]",
        ),
        (
            "$[?@.a == 01]",
            "invalid path at column 11: invalid number `01`; write numbers as in JSON, e.g. 30, -1.5 or 2e3. The path: $[?@.a == 01]",
        ),
        (
            "$[?@[*] == 1]",
            "invalid path at column 4: a path in a comparison must select a single value (names and indexes only, no `*`, `..`, slices or filters); use `count(...)` or an existence test for several. The path: $[?@[*] == 1]",
        ),
        (
            "$[?!@.a == 1]",
            "invalid path at column 9: put a comparison after `!` in parentheses: `!(@.a == 1)`. The path: $[?!@.a == 1]",
        ),
        (
            "$[?length(@.a)]",
            "invalid path at column 4: `length(...)` gives a value, not true or false; compare it, e.g. `length(@.tags) > 2`. The path: $[?length(@.a)]",
        ),
        (
            "$[?true]",
            "invalid path at column 4: a literal alone is not a test; compare something with it, e.g. `@.active == true`. The path: $[?true]",
        ),
        (
            "$[?size(@) > 1]",
            "invalid path at column 4: unknown function `size`; the functions are length, count, match, search and value. The path: $[?size(@) > 1]",
        ),
        (
            "$[?match(@.a) ]",
            "invalid path at column 4: `match` takes 2 arguments, as in `match(@.x, 'regex')`, but was given 1. The path: $[?match(@.a) ]",
        ),
        (
            "$[?match(@.a, '(') ]",
            "invalid path at column 15: invalid regular expression in `match`: unterminated parenthetical. The path: $[?match(@.a, '(') ]",
        ),
        (
            "$[?match(@.a, 'x') == true]",
            "invalid path at column 4: `match(...)` is already true or false; use it without comparing it. The path: $[?match(@.a, 'x') == true]",
        ),
        (
            "$[?@.a =~ 'x']",
            "invalid path at column 8: use `match(@.x, 'regex')` or `search(@.x, 'regex')` for regular expressions. The path: $[?@.a =~ 'x']",
        ),
        (
            "$[?@.a in ['x']]",
            "invalid path at column 8: `in` is not supported; combine comparisons with `||`, e.g. `@.x == 'a' || @.x == 'b'`. The path: $[?@.a in ['x']]",
        ),
    ] {
        assert_eq!(query_err(&r, USERS, path).await, expected, "{path}");
    }
    // A column counts characters, not bytes or UTF-16 units.
    assert_eq!(
        query_err(&r, USERS, "$['😀é'] #").await,
        "invalid path at column 9: unexpected `#`. The path: $['😀é'] #"
    );
    let long = format!("$.{}", "a".repeat(10_000));
    assert_eq!(
        query_err(&r, USERS, &long).await,
        "`path` is 10,002 characters long; the limit is 10,000"
    );
    // An invalid document is reported with its position, whatever the path.
    assert_eq!(
        query_err(&r, r#"{"a":[1,2]"#, "$.a[1]").await,
        "`document` is not valid JSON: the text ends too early at line 1, column 11; expected `,` or `}`: the object opened at line 1, column 1 is not closed; the text may be cut off. Near: {\"a\":[1,2]"
    );
    // A path that multiplies values without bound stops with advice.
    let wide = format!("[{}]", vec!["[1,[2,[3,[4,[5]]]]]"; 20_000].join(","));
    assert_eq!(
        query_err(&r, &wide, "$..*..*..*").await,
        "the path selects more than 500,000 values along the way; narrow it, e.g. avoid repeating `..`"
    );
}

#[tokio::test]
async fn format_pretty_prints_minifies_and_keeps_the_data_exact() {
    let (_dir, r) = load();
    let doc = r#"{"b": 1, "a": [true, null]}"#;
    // The example of the description.
    assert_eq!(
        format(&r, json!({"document": doc, "indent": 2, "sort-keys": true})).await,
        "{\n  \"a\": [\n    true,\n    null\n  ],\n  \"b\": 1\n}"
    );
    assert_eq!(
        format(&r, json!({"document": doc, "indent": 0})).await,
        r#"{"b":1,"a":[true,null]}"#
    );
    // Defaults: indent 2, document order.
    assert_eq!(
        format(&r, json!({"document": doc})).await,
        "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}"
    );
    assert_eq!(
        format(
            &r,
            json!({"document": doc, "indent": null, "sort-keys": null})
        )
        .await,
        "{\n  \"b\": 1,\n  \"a\": [\n    true,\n    null\n  ]\n}"
    );
    assert_eq!(
        format(&r, json!({"document": "[1,{\"x\":[]}]", "indent": 4})).await,
        "[\n    1,\n    {\n        \"x\": []\n    }\n]"
    );
    // Exact numbers, integer-like keys kept in place, minimal escapes.
    let tricky = r#"{"z": 1.50, "10": 12345678901234567890, "2": -0, "e": 1E+2, "s": "\u00e9\/\"\\\n\u0001\ud83d\ude00", "o": {}, "l": []}"#;
    assert_eq!(
        format(&r, json!({"document": tricky, "indent": 0})).await,
        r#"{"z":1.50,"10":12345678901234567890,"2":-0,"e":1E+2,"s":"é/\"\\\n\u0001😀","o":{},"l":[]}"#
    );
    assert_eq!(
        format(
            &r,
            json!({"document": tricky, "indent": 0, "sort-keys": true})
        )
        .await,
        r#"{"10":12345678901234567890,"2":-0,"e":1E+2,"l":[],"o":{},"s":"é/\"\\\n\u0001😀","z":1.50}"#
    );
    // Sorting is by code point at every depth: `B` < `a` < `é` < U+FFFD < `😀`.
    assert_eq!(
        format(
            &r,
            json!({"document": r#"{"😀":1,"\ufffd":2,"é":3,"a":{"y":1,"x":2},"B":4}"#, "indent": 0, "sort-keys": true})
        )
        .await,
        "{\"B\":4,\"a\":{\"x\":2,\"y\":1},\"é\":3,\"\u{fffd}\":2,\"😀\":1}"
    );
    // A lone surrogate stays escaped (it is not valid Unicode text).
    assert_eq!(
        format(&r, json!({"document": r#"["\udc00x"]"#, "indent": 0})).await,
        r#"["\udc00x"]"#
    );
    // Errors.
    assert_eq!(
        tool_err(
            &r,
            "json_tools_format",
            json!({"document": doc, "indent": 11})
        )
        .await,
        "`indent` must be 0 to 10 spaces, got 11; use 2 for readable JSON or 0 for one line"
    );
    assert_eq!(
        tool_err(&r, "json_tools_format", json!({"document": "{\"a\": 1,}"})).await,
        "`document` is not valid JSON: trailing comma at line 1, column 8; remove the `,` before `}`. Near: {\"a\": 1,}"
    );
    assert_eq!(
        tool_err(&r, "json_tools_format", json!({"document": ""})).await,
        "`document` is not valid JSON: the document is empty at line 1, column 1; pass JSON text such as {\"a\": 1}"
    );
}

#[tokio::test]
async fn diff_lists_changes_by_path() {
    let (_dir, r) = load();
    // The example of the description.
    assert_eq!(
        ok(
            &r,
            "json_tools_diff",
            json!({"before": r#"{"a": 1, "b": [1, 2], "c": true}"#, "after": r#"{"a": 2, "b": [1, 2, 3]}"#})
        )
        .await,
        json!({"equal": false, "total": 3, "changes": [
            {"path": "$.a", "kind": "changed", "before": "1", "after": "2"},
            {"path": "$.b[2]", "kind": "added", "after": "3"},
            {"path": "$.c", "kind": "removed", "before": "true"},
        ]})
    );
    // Equal by JSON meaning: key order, number spelling, whitespace.
    assert_eq!(
        ok(
            &r,
            "json_tools_diff",
            json!({"before": r#"{"a": 1.0, "b": {"x": [1e2, -0], "y": "s"}}"#, "after": r#"{"b":{"y":"s","x":[100,0]},"a":1}"#})
        )
        .await,
        json!({"equal": true, "total": 0, "changes": []})
    );
    // Insertions and removals in arrays are found; replaced elements are
    // compared inside; indexes count in `after` (added, changed) and
    // `before` (removed).
    let before =
        r#"{"items": [{"id": 1, "price": 5}, {"id": 2, "price": 7}, {"id": 3}, {"id": 4}]}"#;
    let after =
        r#"{"items": [{"id": 0}, {"id": 1, "price": 5}, {"id": 2, "price": 8}, {"id": 4}]}"#;
    assert_eq!(
        ok(
            &r,
            "json_tools_diff",
            json!({"before": before, "after": after})
        )
        .await,
        json!({"equal": false, "total": 3, "changes": [
            {"path": "$.items[0]", "kind": "added", "after": r#"{"id":0}"#},
            {"path": "$.items[2].price", "kind": "changed", "before": "7", "after": "8"},
            {"path": "$.items[2]", "kind": "removed", "before": r#"{"id":3}"#},
        ]})
    );
    let inserted = ok(
        &r,
        "json_tools_diff",
        json!({"before": "[1,2,3,4,5,6,7,8,9]", "after": "[0,1,2,3,4,5,6,7,8,9]"}),
    )
    .await;
    assert_eq!(
        inserted,
        json!({"equal": false, "total": 1, "changes": [{"path": "$[0]", "kind": "added", "after": "0"}]})
    );
    // Types, keys that need brackets, the whole document.
    assert_eq!(
        ok(
            &r,
            "json_tools_diff",
            json!({"before": r#"{"n": 1, "first name": "A", "it's": [], "x-y": null}"#, "after": r#"{"n": "1", "first name": "B", "it's": {}, "x-y": false}"#})
        )
        .await,
        json!({"equal": false, "total": 4, "changes": [
            {"path": "$.n", "kind": "changed", "before": "1", "after": "\"1\""},
            {"path": "$['first name']", "kind": "changed", "before": "\"A\"", "after": "\"B\""},
            {"path": "$['it\\'s']", "kind": "changed", "before": "[]", "after": "{}"},
            {"path": "$['x-y']", "kind": "changed", "before": "null", "after": "false"},
        ]})
    );
    assert_eq!(
        ok(
            &r,
            "json_tools_diff",
            json!({"before": "12345678901234567890", "after": "12345678901234567891"})
        )
        .await,
        json!({"equal": false, "total": 1, "changes": [
            {"path": "$", "kind": "changed", "before": "12345678901234567890", "after": "12345678901234567891"}
        ]})
    );
    // The paths work with `query`.
    let doc = r#"{"first name": {"it's": [10, 20]}}"#;
    let changed = ok(
        &r,
        "json_tools_diff",
        json!({"before": doc, "after": r#"{"first name": {"it's": [10, 21]}}"#}),
    )
    .await;
    let path = changed["changes"][0]["path"].as_str().unwrap();
    assert_eq!(path, "$['first name']['it\\'s'][1]");
    assert_eq!(query_text(&r, doc, path).await, "[20]");
    // At most 200 changes are listed, all are counted; long values are cut.
    let many_before = serde_json::to_string(&(0..500).collect::<Vec<_>>()).unwrap();
    let many_after = serde_json::to_string(&(0..500).map(|n| n * 2).collect::<Vec<_>>()).unwrap();
    let many = ok(
        &r,
        "json_tools_diff",
        json!({"before": many_before, "after": many_after}),
    )
    .await;
    assert_eq!(many["total"], 499);
    assert_eq!(many["changes"].as_array().unwrap().len(), 200);
    let long = format!("\"{}\"", "x".repeat(5000));
    let cut = ok(
        &r,
        "json_tools_diff",
        json!({"before": "[]", "after": format!("[{long}]")}),
    )
    .await;
    let shown = cut["changes"][0]["after"].as_str().unwrap();
    assert_eq!(shown, format!("\"{}…", "x".repeat(999)));
    // Errors name the document.
    assert_eq!(
        tool_err(
            &r,
            "json_tools_diff",
            json!({"before": "{}", "after": "{'a': 1}"})
        )
        .await,
        "`after` is not valid JSON: single-quoted key at line 1, column 2; JSON keys use double quotes: \"key\". Near: {'a': 1}"
    );
    assert_eq!(
        tool_err(
            &r,
            "json_tools_diff",
            json!({"before": "[1 2]", "after": "[]"})
        )
        .await,
        "`before` is not valid JSON: expected `,` or `]` after an array element, found `2` at line 1, column 4; a comma is missing. Near: [1 2]"
    );
}

#[tokio::test]
async fn validate_locates_and_explains_syntax_errors() {
    let (_dir, r) = load();
    for (doc, line, column, error) in [
        (
            "{\"a\": 1,}",
            1,
            8,
            "trailing comma at line 1, column 8; remove the `,` before `}`. Near: {\"a\": 1,}",
        ),
        (
            "[1,]",
            1,
            3,
            "trailing comma at line 1, column 3; remove the `,` before `]`. Near: [1,]",
        ),
        (
            "{'a': 1}",
            1,
            2,
            "single-quoted key at line 1, column 2; JSON keys use double quotes: \"key\". Near: {'a': 1}",
        ),
        (
            "['a']",
            1,
            2,
            "single-quoted string at line 1, column 2; JSON strings use double quotes: \"text\". Near: ['a']",
        ),
        (
            "{a: 1}",
            1,
            2,
            "unquoted key `a` at line 1, column 2; keys must be strings in double quotes: \"a\". Near: {a: 1}",
        ),
        (
            "{\n  \"a\": 1\n  \"b\": 2\n}",
            3,
            3,
            "expected `,` or `}` after the value of \"a\", found `\"` at line 3, column 3; a comma is missing. Near:   \"b\": 2",
        ),
        (
            "[1 2]",
            1,
            4,
            "expected `,` or `]` after an array element, found `2` at line 1, column 4; a comma is missing. Near: [1 2]",
        ),
        (
            "{\"a\" 1}",
            1,
            6,
            "expected `:` after the key \"a\", found `1` at line 1, column 6. Near: {\"a\" 1}",
        ),
        (
            "// note\n{}",
            1,
            1,
            "comment at line 1, column 1; JSON does not allow comments; remove it. Near: // note",
        ),
        (
            "{\"a\": 1 /* x */}",
            1,
            9,
            "comment at line 1, column 9; JSON does not allow comments; remove it. Near: {\"a\": 1 /* x */}",
        ),
        (
            "[NaN]",
            1,
            2,
            "`NaN` is not a JSON value at line 1, column 2; use null, a number or a string. Near: [NaN]",
        ),
        (
            "[-Infinity]",
            1,
            2,
            "`-Infinity` is not a JSON value at line 1, column 2; use null, a number or a string. Near: [-Infinity]",
        ),
        (
            "[undefined]",
            1,
            2,
            "`undefined` is not JSON at line 1, column 2; write null. Near: [undefined]",
        ),
        (
            "[None]",
            1,
            2,
            "`None` is not JSON at line 1, column 2; write null. Near: [None]",
        ),
        (
            "[True]",
            1,
            2,
            "`True` is not JSON at line 1, column 2; literals are lower case: true. Near: [True]",
        ),
        (
            "[yes]",
            1,
            2,
            "unexpected word `yes` at line 1, column 2; strings must be in double quotes: \"yes\". Near: [yes]",
        ),
        (
            "[01]",
            1,
            2,
            "number with a leading zero `01` at line 1, column 2; write it without leading zeros, or as a string if the zeros matter. Near: [01]",
        ),
        (
            "[1.]",
            1,
            2,
            "number ending in a decimal point `1.` at line 1, column 2; write digits after the point (1.0) or leave the point out. Near: [1.]",
        ),
        (
            "[.5]",
            1,
            2,
            "number without a leading digit at line 1, column 2; write 0.5, not .5. Near: [.5]",
        ),
        (
            "[+1]",
            1,
            2,
            "number with a `+` sign at line 1, column 2; write 1, not +1. Near: [+1]",
        ),
        (
            "[1e]",
            1,
            2,
            "number with an empty exponent `1e` at line 1, column 2; write digits after the e, e.g. 1e6. Near: [1e]",
        ),
        (
            "[0x1F]",
            1,
            2,
            "hexadecimal number `0x1F` at line 1, column 2; JSON numbers are decimal. Near: [0x1F]",
        ),
        (
            "[10px]",
            1,
            2,
            "invalid number `10px` at line 1, column 2; numbers have no units or suffixes; use a string for text. Near: [10px]",
        ),
        (
            "[-]",
            1,
            2,
            "a `-` sign without a number at line 1, column 2. Near: [-]",
        ),
        (
            "[1,,2]",
            1,
            4,
            "expected a value, found `,` at line 1, column 4; a value is missing, or there is one comma too many. Near: [1,,2]",
        ),
        (
            "{\"a\":[1,2}",
            1,
            10,
            "`}` closes an array at line 1, column 10; the array opened at line 1, column 6 must be closed with `]`. Near: {\"a\":[1,2}",
        ),
        (
            "[{\"a\":1]",
            1,
            8,
            "`]` closes an object at line 1, column 8; the object opened at line 1, column 2 must be closed with `}`. Near: [{\"a\":1]",
        ),
        (
            "{\"a\": [1, {\"b\": 2}",
            1,
            19,
            "the text ends too early at line 1, column 19; expected `,` or `]`: the array opened at line 1, column 7 is not closed; the text may be cut off. Near: {\"a\": [1, {\"b\": 2}",
        ),
        (
            "{\"a\": \"x\ny\"}",
            1,
            9,
            "line break inside a string at line 1, column 9; write it as \\n, or add the missing closing \" of the string that starts at line 1, column 7. Near: {\"a\": \"x",
        ),
        (
            "[\"a\tb\"]",
            1,
            4,
            "tab character inside a string at line 1, column 4; write it as \\t. Near: [\"a b\"]",
        ),
        (
            "[\"a\u{1}\"]",
            1,
            4,
            "control character U+0001 inside a string at line 1, column 4; write it as \\u0001. Near: [\"a\u{1}\"]",
        ),
        (
            "[\"\\x\"]",
            1,
            3,
            "invalid escape \\x at line 1, column 3; the escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX; write a backslash itself as \\\\. Near: [\"\\x\"]",
        ),
        (
            "[\"\\u12G4\"]",
            1,
            3,
            "invalid \\u escape at line 1, column 3; \\u must be followed by 4 hexadecimal digits, e.g. \\u00e9. Near: [\"\\u12G4\"]",
        ),
        (
            "\"abc",
            1,
            1,
            "unclosed string at line 1, column 1; add the closing \"; the text may be cut off. Near: \"abc",
        ),
        (
            "{\"a\":1} {\"b\":2}",
            1,
            9,
            "unexpected `{` after the end of the value at line 1, column 9; a document holds exactly one value; to pass several, put them in an array: [value1, value2]. Near: {\"a\":1} {\"b\":2}",
        ),
        (
            "[1]]",
            1,
            4,
            "unexpected `]` after the end of the value at line 1, column 4; there are more closing brackets than opening ones. Near: [1]]",
        ),
        (
            "",
            1,
            1,
            "the document is empty at line 1, column 1; pass JSON text such as {\"a\": 1}",
        ),
        (
            "{",
            1,
            2,
            "the text ends too early at line 1, column 2; expected a key in double quotes: the object opened at line 1, column 1 is not closed; the text may be cut off. Near: {",
        ),
        (
            "{\"a\":",
            1,
            6,
            "the text ends too early at line 1, column 6; expected a value: the object opened at line 1, column 1 is not closed; the text may be cut off. Near: {\"a\":",
        ),
        (
            "[“x”]",
            1,
            2,
            "typographic quote `“` at line 1, column 2; JSON strings use the plain double quote \". Near: [“x”]",
        ),
        (
            "[\u{a0}1]",
            1,
            2,
            "expected a value (an object, array, string, number, true, false or null), found U+00A0 at line 1, column 2. Near: [\u{a0}1]",
        ),
    ] {
        let v = ok(&r, "json_tools_validate", json!({"document": doc})).await;
        assert_eq!(
            v,
            json!({"valid": false, "error": error, "line": line, "column": column, "warnings": []}),
            "{doc:?}"
        );
    }
    // Valid documents: a summary, and warnings for risky constructs.
    for (doc, summary) in [
        (
            "[1, 2]",
            "an array of 2 elements (2 numbers); 3 values in all, nested 1 level deep",
        ),
        (
            USERS,
            "an object with 1 member (\"users\"); 9 values in all, nested 3 levels deep",
        ),
        (
            "[1, \"a\", null, {}, [], true, 2]",
            "an array of 7 elements (2 numbers, 1 string, 1 null, 1 object, 1 array, 1 boolean); 8 values in all, nested 2 levels deep",
        ),
        (
            "\"héllo 😀\"",
            "a string of 7 characters; 1 value in all, not nested",
        ),
        (" -1.5e3 ", "the number -1.5e3; 1 value in all, not nested"),
        (
            "\u{feff}null",
            "the literal null; 1 value in all, not nested",
        ),
        (
            "{}",
            "an object with 0 members; 1 value in all, nested 1 level deep",
        ),
    ] {
        let v = ok(&r, "json_tools_validate", json!({"document": doc})).await;
        assert_eq!(
            v,
            json!({"valid": true, "summary": summary, "warnings": []}),
            "{doc}"
        );
    }
    let v = ok(
        &r,
        "json_tools_validate",
        json!({"document": "{\"a\": 1,\n \"a\": 2, \"n\": -12345678901234567890, \"f\": 1e999, \"ok\": 9007199254740991}"}),
    )
    .await;
    assert_eq!(
        v,
        json!({"valid": true, "summary": "an object with 4 members (\"a\", \"n\", \"f\", \"ok\"); 6 values in all, nested 1 level deep", "warnings": [
            "duplicate key \"a\" at line 2, column 2: most parsers keep only its last value",
            "the integer -12345678901234567890 at line 2, column 15 is beyond ±9007199254740991 and loses precision in JavaScript and other parsers that use 64-bit floats; consider a string",
            "the number 1e999 at line 2, column 43 is beyond the range of 64-bit floats (about ±1.8e308)",
        ]})
    );
    // Keys are listed in document order, integer-like ones included.
    assert_eq!(
        ok(
            &r,
            "json_tools_validate",
            json!({"document": r#"{"b": 1, "10": 2, "a": 3, "2": 4}"#})
        )
        .await["summary"],
        "an object with 4 members (\"b\", \"10\", \"a\", \"2\"); 5 values in all, nested 1 level deep"
    );
    // Warnings stop at 20, then say how many more there are.
    let dups = format!("{{{}}}", vec!["\"k\": 1"; 31].join(","));
    let v = ok(&r, "json_tools_validate", json!({"document": dups})).await;
    let warnings = v["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 21);
    assert_eq!(warnings[20], "… and 10 more warnings");
}

#[tokio::test]
async fn descriptions_come_from_the_wit_docs() {
    let (_dir, r) = load();
    let mut names: Vec<_> = r
        .tools()
        .filter(|t| &*t.plugin.name == "json-tools")
        .map(|t| t.name.clone())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "json_tools_diff",
            "json_tools_format",
            "json_tools_query",
            "json_tools_validate"
        ]
    );
    for (tool, opening, params) in [
        (
            "json_tools_query",
            "Select values from a JSON document with a JSONPath expression (RFC 9535)",
            &[
                ("document", "a string holding JSON"),
                ("path", "`$.items[*].id`"),
            ][..],
        ),
        (
            "json_tools_format",
            "Reformat a JSON document: pretty-print it",
            &[
                ("document", "1,000,000 bytes"),
                ("indent", "0 to 10"),
                ("sort-keys", "by Unicode code point"),
            ][..],
        ),
        (
            "json_tools_diff",
            "Compare two JSON documents and list exactly what differs",
            &[("before", "first (older)"), ("after", "second (newer)")][..],
        ),
        (
            "json_tools_validate",
            "Check whether a text is valid JSON",
            &[("document", "The text to check")][..],
        ),
    ] {
        let t = r.get(tool).unwrap();
        assert!(
            t.description.starts_with(opening),
            "{tool}: {}",
            t.description
        );
        assert!(!t.description.contains("@param"), "{tool}");
        for (param, text) in params {
            let d = t.parameters["properties"][param]["description"]
                .as_str()
                .unwrap_or_else(|| panic!("{tool}.{param} has no description"));
            assert!(d.contains(text), "{tool}.{param}: {d}");
        }
    }
    let query = r.get("json_tools_query").unwrap();
    for syntax in [
        "`[start:end:step]`",
        "`..`",
        "`[?(@.age > 30)]`",
        "match(",
        "1,000,000 bytes",
    ] {
        assert!(query.description.contains(syntax), "{syntax}");
    }
    assert_eq!(query.parameters["required"], json!(["document", "path"]));
    let format = r.get("json_tools_format").unwrap();
    assert_eq!(format.parameters["required"], json!(["document"]));
    assert_eq!(
        format.parameters["properties"]["indent"]["maximum"],
        json!(255)
    );
    // Result records carry their docs too.
    let diff = r
        .get("json_tools_diff")
        .unwrap()
        .output_schema
        .clone()
        .unwrap();
    let change = &diff["properties"]["changes"]["items"];
    assert_eq!(
        change["properties"]["kind"]["enum"],
        json!(["added", "removed", "changed"])
    );
    assert!(
        change["properties"]["path"]["description"]
            .as_str()
            .unwrap()
            .contains("usable with `query`")
    );
    let validation = r
        .get("json_tools_validate")
        .unwrap()
        .output_schema
        .clone()
        .unwrap();
    assert!(
        validation["properties"]["column"]["description"]
            .as_str()
            .unwrap()
            .contains("in characters")
    );
}

#[tokio::test]
async fn the_host_validates_arguments_before_the_plugin_runs() {
    let (_dir, r) = load();
    for (tool, args, needle) in [
        (
            "json_tools_query",
            json!({"document": {"a": [1, 2]}, "path": "$.a"}),
            "`$.document`: expected a string, got object",
        ),
        ("json_tools_query", json!({"document": "{}"}), "path"),
        (
            "json_tools_query",
            json!({"document": "{}", "path": 1}),
            "`$.path`: expected a string",
        ),
        (
            "json_tools_format",
            json!({"document": "{}", "indent": -1}),
            "`$.indent`",
        ),
        (
            "json_tools_format",
            json!({"document": "{}", "indent": 256}),
            "`$.indent`",
        ),
        (
            "json_tools_format",
            json!({"document": "{}", "indent": "2"}),
            "`$.indent`",
        ),
        (
            "json_tools_format",
            json!({"document": "{}", "sort-keys": "yes"}),
            "`$.sort-keys`",
        ),
        (
            "json_tools_format",
            json!({"document": "{}", "sortKeys": true}),
            "sortKeys",
        ),
        (
            "json_tools_diff",
            json!({"before": "[]", "after": ["x"]}),
            "`$.after`",
        ),
        ("json_tools_validate", json!({"document": null}), "document"),
    ] {
        match r.call(tool, &args).await {
            Err(e @ ToolError::InvalidArguments(_)) => {
                let message = e.to_string();
                assert!(message.contains(needle), "{tool}({args}): {message}");
            }
            other => panic!("{tool}({args}) should be rejected by the host, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn unicode_is_kept_counted_and_located() {
    let (_dir, r) = load();
    let doc =
        r#"{"名前": "東京", "emoji": "😀👍🏽", "e\u0301": "combining", "ß": ["Straße", "\u00e9"]}"#;
    assert_eq!(query_text(&r, doc, "$.名前").await, r#"["東京"]"#);
    assert_eq!(query_text(&r, doc, "$['名前']").await, r#"["東京"]"#);
    assert_eq!(
        query_text(&r, doc, "$['e\\u0301']").await,
        r#"["combining"]"#
    );
    assert_eq!(query_text(&r, doc, "$.ß[1]").await, r#"["é"]"#);
    assert_eq!(query_text(&r, doc, "$.ß[?(@ == 'é')]").await, r#"["é"]"#);
    // length() counts code points: 😀 is one, 👍🏽 is two (thumb + skin tone).
    assert_eq!(
        query_text(&r, doc, "$[?length(@) == 3]").await,
        r#"["😀👍🏽"]"#
    );
    assert_eq!(
        query_text(&r, doc, "$..[?match(@, 'Stra.e')]").await,
        r#"["Straße"]"#
    );
    assert_eq!(
        format(&r, json!({"document": doc, "indent": 0, "sort-keys": true})).await,
        "{\"emoji\":\"😀👍🏽\",\"e\u{301}\":\"combining\",\"ß\":[\"Straße\",\"\u{e9}\"],\"名前\":\"東京\"}"
    );
    // Columns count characters: the error is right after 😀 and 東.
    let v = ok(
        &r,
        "json_tools_validate",
        json!({"document": "[\"😀東\" x]"}),
    )
    .await;
    assert_eq!(
        v,
        json!({"valid": false, "line": 1, "column": 7, "warnings": [],
            "error": "expected `,` or `]` after an array element, found `x` at line 1, column 7. Near: [\"😀東\" x]"})
    );
    let v = ok(
        &r,
        "json_tools_validate",
        json!({"document": "[\"a\",\n 😀]"}),
    )
    .await;
    assert_eq!(v["line"], 2);
    assert_eq!(v["column"], 2);
    assert_eq!(
        v["error"],
        "expected a value (an object, array, string, number, true, false or null), found `😀` at line 2, column 2. Near:  😀]"
    );
    // Diff paths quote keys that are not plain ASCII names, and work in `query`.
    let changed = ok(
        &r,
        "json_tools_diff",
        json!({"before": doc, "after": doc.replace("東京", "大阪")}),
    )
    .await;
    assert_eq!(
        changed,
        json!({"equal": false, "total": 1, "changes": [
            {"path": "$['名前']", "kind": "changed", "before": "\"東京\"", "after": "\"大阪\""}
        ]})
    );
    // Key bytes beyond the BMP and escapes round-trip through diff paths.
    let odd = r#"{"a\nb": {"😀'\\": 1}}"#;
    let changed = ok(
        &r,
        "json_tools_diff",
        json!({"before": odd, "after": r#"{"a\nb": {"😀'\\": 2}}"#}),
    )
    .await;
    let path = changed["changes"][0]["path"].as_str().unwrap();
    assert_eq!(path, r"$['a\u000ab']['😀\'\\']");
    assert_eq!(query_text(&r, odd, path).await, "[1]");
}

#[tokio::test]
async fn deep_nesting_works_to_the_limit_and_fails_clearly_beyond() {
    let (_dir, r) = load();
    let nest = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let deepest = nest(512);
    assert_eq!(query_text(&r, &deepest, "$..[?(@ == 1)]").await, "[1]");
    assert_eq!(
        query_text(&r, &deepest, &format!("${}", "[0]".repeat(512))).await,
        "[1]"
    );
    assert_eq!(
        format(&r, json!({"document": deepest, "indent": 0})).await,
        deepest
    );
    let pretty = format(&r, json!({"document": deepest, "indent": 1})).await;
    assert_eq!(pretty.lines().count(), 1025);
    assert_eq!(
        ok(
            &r,
            "json_tools_diff",
            json!({"before": deepest, "after": nest(512).replace('1', "2")})
        )
        .await["changes"][0]["path"],
        format!("${}", "[0]".repeat(512))
    );
    let objects = format!(
        "{}{}",
        "{\"a\":".repeat(512),
        "}".repeat(512).replacen('}', "1}", 1)
    );
    assert_eq!(
        ok(&r, "json_tools_validate", json!({"document": objects})).await["summary"],
        "an object with 1 member (\"a\"); 513 values in all, nested 512 levels deep"
    );
    // One level more is a clear error, at the bracket that goes too deep.
    assert_eq!(
        query_err(&r, &nest(513), "$").await,
        format!(
            "`document` is not valid JSON: nesting deeper than 512 levels at line 1, column 513; the limit is 512 nested arrays and objects. Near: …{}1{}…",
            "[".repeat(31),
            "]".repeat(28)
        )
    );
    // Far beyond: the same error, no crash, and the plugin keeps working.
    for depth in [10_000, 300_000] {
        let v = ok(&r, "json_tools_validate", json!({"document": nest(depth)})).await;
        assert_eq!(v["valid"], false);
        assert_eq!(v["column"], 513);
        assert!(
            v["error"]
                .as_str()
                .unwrap()
                .starts_with("nesting deeper than 512 levels at line 1, column 513"),
            "{v}"
        );
        assert!(
            tool_err(
                &r,
                "json_tools_diff",
                json!({"before": nest(depth), "after": "1"})
            )
            .await
            .starts_with("`before` is not valid JSON: nesting deeper than 512 levels")
        );
    }
    assert_eq!(query_text(&r, "[1]", "$[0]").await, "[1]");
    // Deep filters are bounded too.
    let filter = format!("$[?{}@.a{}]", "(".repeat(65), ")".repeat(65));
    assert_eq!(
        query_err(&r, "[]", &filter).await,
        format!(
            "invalid path at column 68: the filter is nested too deeply (over 64 levels). The path: {filter}"
        )
    );
}

/// A document of about `n` bytes: an array of records.
fn records(n: usize) -> String {
    let mut out = String::from("[");
    let mut i = 0;
    while out.len() < n - 200 {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            r#"{{"id":{i},"name":"user {i}","tags":["t{}","é"],"score":{}.5,"active":{}}}"#,
            i % 7,
            i % 100,
            i % 2 == 0
        ));
        i += 1;
    }
    out.push(']');
    out
}

#[tokio::test]
async fn large_documents_within_the_limits() {
    let (_dir, r) = load();
    let big = records(990_000);
    assert!(big.len() <= 1_000_000 && big.len() > 980_000);
    let n = serde_json::from_str::<Value>(&big)
        .unwrap()
        .as_array()
        .unwrap()
        .len();

    let started = std::time::Instant::now();
    let ids = big_query(&r, &big, "$[?(@.score > 98 && @.active == false)].id").await;
    let elapsed = started.elapsed();
    let expected: Vec<usize> = (0..n).filter(|i| i % 100 == 99).collect();
    assert_eq!(ids, json!(expected));
    eprintln!("query on {} bytes ({n} records): {elapsed:?}", big.len());
    assert_eq!(big_query(&r, &big, "$[-1].id").await, json!([n - 1]));
    assert_eq!(
        big_query(&r, &big, "$[?count(@..*) == 7].id").await,
        json!((0..n).collect::<Vec<_>>())
    );

    let started = std::time::Instant::now();
    let v = big_ok(&r, "json_tools_validate", json!({"document": big})).await;
    eprintln!("validate: {:?}", started.elapsed());
    assert_eq!(
        v,
        json!({"valid": true, "warnings": [], "summary": format!(
            "an array of {} elements ({} objects); {} values in all, nested 3 levels deep",
            group(n),
            group(n),
            group(1 + n * 8)
        )})
    );

    // One record edited in the middle of two large documents.
    let mid = n / 2;
    let after = big.replacen(
        &format!(r#"{{"id":{mid},"name":"user {mid}""#),
        &format!(r#"{{"id":{mid},"name":"renamed""#),
        1,
    );
    let started = std::time::Instant::now();
    let d = big_ok(
        &r,
        "json_tools_diff",
        json!({"before": big, "after": after}),
    )
    .await;
    eprintln!("diff: {:?}", started.elapsed());
    assert_eq!(
        d,
        json!({"equal": false, "total": 1, "changes": [
            {"path": format!("$[{mid}].name"), "kind": "changed", "before": format!("\"user {mid}\""), "after": "\"renamed\""}
        ]})
    );

    // A result just under the limit comes back whole: 750 kB of JSON text is
    // about 905 kB once quoted for the host.
    let smaller = records(750_000);
    let started = std::time::Instant::now();
    assert_eq!(
        big_ok(
            &r,
            "json_tools_format",
            json!({"document": smaller, "indent": 0})
        )
        .await,
        json!(smaller)
    );
    eprintln!("format indent 0: {:?}", started.elapsed());
    // Over the output limit: refused with advice, not truncated.
    for (args, advice) in [
        (
            json!({"document": big, "indent": 0}),
            "use `indent` 0 for compact output, or `query` the part you need",
        ),
        (
            json!({"document": smaller, "indent": 2}),
            "use `indent` 0 for compact output, or `query` the part you need",
        ),
    ] {
        let e = big_err(&r, "json_tools_format", args).await;
        assert!(
            e.starts_with("the result is ")
                && e.ends_with(&format!(
                    " bytes of JSON, more than the 1,000,000 this tool returns; {advice}"
                )),
            "{e}"
        );
    }
    // The exact size the host would send: 1,193,746 bytes for the compact text.
    assert_eq!(
        big_err(
            &r,
            "json_tools_query",
            json!({"document": big, "path": "$"})
        )
        .await,
        format!(
            "the result is {} bytes of JSON, more than the 1,000,000 this tool returns; narrow the path, e.g. take a slice such as `[0:20]` or select single fields",
            group(serde_json::to_string(&format!("[{big}]")).unwrap().len())
        )
    );

    // One long string (660 kB with quotes, accents and emoji; 880 kB once quoted for the host).
    let blob = "ab\"é😀\\".repeat(55_000);
    let doc = format!(
        r#"{{"blob":{},"n":[1.50,2]}}"#,
        serde_json::to_string(&blob).unwrap()
    );
    assert!(doc.len() < 1_000_000, "{}", doc.len());
    let text = big_ok(
        &r,
        "json_tools_query",
        json!({"document": doc, "path": "$.blob"}),
    )
    .await;
    let found: Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
    assert_eq!(found, json!([blob]));
    assert_eq!(
        big_ok(
            &r,
            "json_tools_format",
            json!({"document": doc, "indent": 0, "sort-keys": true})
        )
        .await,
        json!(doc)
    );
    let changed = doc.replacen("ab", "xy", 1);
    let d = big_ok(
        &r,
        "json_tools_diff",
        json!({"before": doc, "after": changed}),
    )
    .await;
    let shown = d["changes"][0]["after"].as_str().unwrap();
    assert!(
        shown.starts_with("\"xy\\\"é😀\\\\ab") && shown.ends_with('…'),
        "{shown:.80}"
    );
    // Cut after 1,000 UTF-16 units (999 rather than split an emoji), then `…`.
    assert!(
        (1_000..=1_001).contains(&shown.encode_utf16().count()),
        "{}",
        shown.encode_utf16().count()
    );

    // Over the input limit: a clear error before any parsing.
    let too_big = format!("[{}1]", " ".repeat(1_000_000));
    for (tool, args, name) in [
        (
            "json_tools_query",
            json!({"document": too_big, "path": "$"}),
            "document",
        ),
        (
            "json_tools_format",
            json!({"document": too_big}),
            "document",
        ),
        (
            "json_tools_validate",
            json!({"document": too_big}),
            "document",
        ),
        (
            "json_tools_diff",
            json!({"before": "[]", "after": too_big}),
            "after",
        ),
    ] {
        assert_eq!(
            big_err(&r, tool, args).await,
            format!(
                "`{name}` is at least 1,000,003 bytes of UTF-8; the limit is 1,000,000 bytes. Pass a smaller document or only the part you need."
            )
        );
    }
    // Multi-byte characters count as bytes: 400,000 × `é` is 800,002 bytes.
    let accents = format!("\"{}\"", "é".repeat(400_000));
    assert_eq!(
        big_ok(&r, "json_tools_validate", json!({"document": accents})).await["valid"],
        true
    );
    let accents = format!("\"{}\"", "é".repeat(500_000));
    assert_eq!(
        big_err(&r, "json_tools_validate", json!({"document": accents})).await,
        "`document` is 1,000,002 bytes of UTF-8; the limit is 1,000,000 bytes. Pass a smaller document or only the part you need."
    );
}

/// Calls a tool with large arguments, keeping them out of failure messages.
async fn big_call(r: &Registry, tool: &str, args: Value) -> Result<Value, ToolError> {
    r.call(tool, &args).await
}

async fn big_ok(r: &Registry, tool: &str, args: Value) -> Value {
    big_call(r, tool, args)
        .await
        .unwrap_or_else(|e| panic!("{tool}: {e}"))
}

async fn big_err(r: &Registry, tool: &str, args: Value) -> String {
    match big_call(r, tool, args).await {
        Err(ToolError::Failed { message, .. }) => message,
        Err(e) => panic!("{tool} should be a tool error, got {e}"),
        Ok(v) => panic!("{tool} should be a tool error, got {:.300}", v.to_string()),
    }
}

async fn big_query(r: &Registry, document: &str, path: &str) -> Value {
    let text = big_ok(
        r,
        "json_tools_query",
        json!({"document": document, "path": path}),
    )
    .await;
    serde_json::from_str(text.as_str().unwrap()).unwrap()
}

fn group(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test]
async fn small_calls_are_fast() {
    let (_dir, r) = load();
    let args = json!({"document": r#"{"a":[1,2]}"#, "path": "$.a[1]"});
    ok(&r, "json_tools_query", args.clone()).await;
    let mut samples = Vec::new();
    for _ in 0..20 {
        let started = std::time::Instant::now();
        assert_eq!(ok(&r, "json_tools_query", args.clone()).await, json!("[2]"));
        samples.push(started.elapsed());
    }
    samples.sort();
    eprintln!(
        "json_tools_query on a small document: median {:?}, max {:?}",
        samples[samples.len() / 2],
        samples[samples.len() - 1]
    );
    assert!(
        samples[samples.len() / 2] < std::time::Duration::from_millis(500),
        "{samples:?}"
    );
}
