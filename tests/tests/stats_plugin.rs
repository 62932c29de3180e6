//! The first-party Python plugin `stats` (built with componentize-py) through the
//! real runtime: known answers, every error, its schema and docs, a million numbers.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use launch::plugins::{Registry, ToolError};
use launch_tests::{PluginDir, call_ok as ok, tool_error as tool_err};
use serde_json::{Value, json};

const TOOLS: [&str; 4] = [
    "stats_describe",
    "stats_percentiles",
    "stats_correlation",
    "stats_histogram",
];

fn load() -> (PluginDir, Registry) {
    let dir = PluginDir::new().plugin("stats");
    let r = dir.load();
    assert!(r.report().failed.is_empty(), "{:?}", r.report().failed);
    (dir, r)
}

/// Like `call_ok`, without printing the (huge) arguments on failure.
async fn big_ok(r: &Registry, tool: &str, args: &Value) -> Value {
    let started = Instant::now();
    let result = r.call(tool, args).await;
    eprintln!("{tool} on a million numbers: {:?}", started.elapsed());
    result.unwrap_or_else(|e| panic!("{tool}: {e}"))
}

/// Like `tool_error`, without printing the (huge) arguments on failure.
async fn big_err(r: &Registry, tool: &str, args: &Value) -> String {
    match r.call(tool, args).await {
        Err(ToolError::Failed { message, .. }) => message,
        Err(e) => panic!("{tool} should be a tool error, got {e}"),
        Ok(_) => panic!("{tool} should be a tool error, got a result"),
    }
}

/// `actual` is a number within 1e-9 of `expected` (relative, for big numbers).
#[track_caller]
fn assert_close(actual: &Value, expected: f64, what: &str) {
    let a = actual
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: {actual} is not a number"));
    assert!(
        (a - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        "{what}: got {a:e}, expected {expected:e}"
    );
}

/// `actual` is a list of numbers, each within 1e-9 of `expected`.
#[track_caller]
fn assert_all_close(actual: &Value, expected: &[f64], what: &str) {
    let items = actual
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {actual}"));
    assert_eq!(items.len(), expected.len(), "{what}: {actual}");
    for (i, (a, e)) in items.iter().zip(expected).enumerate() {
        assert_close(a, *e, &format!("{what}[{i}]"));
    }
}

/// Checks every field of a `summary`; `spread` is (stdev, variance) or none.
#[track_caller]
fn assert_summary(s: &Value, count: u64, mean: f64, median: f64, spread: Option<(f64, f64)>) {
    assert_eq!(s["count"], json!(count), "{s}");
    assert_close(&s["mean"], mean, "mean");
    assert_close(&s["median"], median, "median");
    match spread {
        Some((stdev, variance)) => {
            assert_close(&s["stdev"], stdev, "stdev");
            assert_close(&s["variance"], variance, "variance");
        }
        None => {
            let o = s.as_object().unwrap();
            assert!(
                !o.contains_key("stdev") && !o.contains_key("variance"),
                "{s}"
            );
        }
    }
}

// Expected values below come from Python's `statistics` module (exact
// fractions) and `math.fsum`, or by hand where noted.

#[tokio::test]
async fn describe_matches_known_answers() {
    let (_dir, r) = load();
    let d = |values: Value| {
        let r = &r;
        async move { ok(r, "stats_describe", json!({ "values": values })).await }
    };

    // By hand: deviations 9+1+1+1+0+0+4+16 = 32, over 7.
    let s = d(json!([2, 4, 4, 4, 5, 5, 7, 9])).await;
    assert_summary(&s, 8, 5.0, 4.5, Some((2.138_089_935_299_395, 32.0 / 7.0)));
    assert_eq!(
        (s["min"].clone(), s["max"].clone()),
        (json!(2.0), json!(9.0))
    );
    assert_close(&s["sum"], 40.0, "sum");

    let s = d(json!([1.5, 2.25, 3.0, 10.125, -4.5, 0.1, 0.2, 0.3])).await;
    assert_summary(
        &s,
        8,
        1.621875,
        0.9,
        Some((4.108_776_266_811_602, 16.882_042_410_714_284)),
    );
    assert_close(&s["sum"], 12.975, "sum");
    assert_close(&s["min"], -4.5, "min");
    assert_close(&s["max"], 10.125, "max");

    // Odd count, unsorted: the median is the middle value once sorted.
    let s = d(json!([9, 1, 5])).await;
    assert_summary(&s, 3, 5.0, 5.0, Some((4.0, 16.0)));

    // One number: no sample spread, so stdev and variance are absent.
    let s = d(json!([7.25])).await;
    assert_summary(&s, 1, 7.25, 7.25, None);
    assert_eq!(s["sum"], json!(7.25));

    // Negative numbers only.
    let s = d(json!([-3, -1, -2])).await;
    assert_summary(&s, 3, -2.0, -2.0, Some((1.0, 1.0)));
    assert_close(&s["sum"], -6.0, "sum");
}

#[tokio::test]
async fn describe_loses_no_precision_and_reports_overflow() {
    let (_dir, r) = load();
    let d = |values: Value| {
        let r = &r;
        async move { ok(r, "stats_describe", json!({ "values": values })).await }
    };

    // A naive sum gives 0; the exact sum is 1.
    let s = d(json!([1e16, 1.0, -1e16])).await;
    assert_eq!(s["sum"], json!(1.0));
    assert_summary(&s, 3, 0.333_333_333_333_333_3, 1.0, Some((1e16, 1e32)));

    // A big mean and a small spread: the textbook one-pass formula
    // (sum of squares - square of sum / n) gives 0 here.
    let s = d(json!([1e9 + 0.1, 1e9 + 0.2, 1e9 + 0.3, 1e9 + 0.4])).await;
    assert_summary(
        &s,
        4,
        1_000_000_000.25,
        1_000_000_000.25,
        Some((0.129_099_414_093_878, 0.016_666_658_719_382_593)),
    );
    assert_close(&s["sum"], 4_000_000_001.0, "sum");

    // Huge and tiny numbers are scaled before squaring: no overflow to
    // infinity, no underflow to 0 (by hand: deviations ±1 in units of 1e153).
    let s = d(json!([3e153, 5e153])).await;
    assert_summary(
        &s,
        2,
        4e153,
        4e153,
        Some((std::f64::consts::SQRT_2 * 1e153, 2e306)),
    );
    let s = d(json!([1e-160, 3e-160])).await;
    let stdev = s["stdev"].as_f64().unwrap();
    assert!(
        (stdev / (std::f64::consts::SQRT_2 * 1e-160) - 1.0).abs() < 1e-9,
        "{s}"
    );

    // Results beyond the float range are errors that say what to do.
    let e = tool_err(&r, "stats_describe", json!({"values": [1e308, 1e308]})).await;
    assert!(
        e.contains("sum of `values` is beyond the 64-bit float range")
            && e.contains("divide every number by 1e308 and multiply the results back"),
        "{e}"
    );
    let e = tool_err(&r, "stats_describe", json!({"values": [1e200, 3e200]})).await;
    assert!(
        e.contains("variance of `values` is beyond the 64-bit float range")
            && e.contains("the standard deviation is 1.414213562373095e+200")
            && e.contains("divide every number by 1e200"),
        "{e}"
    );
}

#[tokio::test]
async fn percentiles_interpolate_linearly_like_numpy() {
    let (_dir, r) = load();
    let p = |values: Value, ps: Value| {
        let r = &r;
        async move { ok(r, "stats_percentiles", json!({"values": values, "ps": ps})).await }
    };
    // Sorted: 1 1 2 3 3 4 5 5 5 6 9; p sits at p/100 * 10. p99 is 6 + 0.9 * 3,
    // p99.9 is 6 + 0.99 * 3 (statistics.quantiles(method="inclusive") agrees).
    let data = json!([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]);
    assert_all_close(
        &p(data.clone(), json!([0, 10, 25, 33, 50, 75, 99, 99.9, 100])).await,
        &[1.0, 1.0, 2.5, 3.0, 4.0, 5.0, 8.7, 8.97, 9.0],
        "pi digits",
    );
    // Results follow the order of `ps`, repeats included.
    assert_all_close(
        &p(data, json!([100, 0, 50, 50])).await,
        &[9.0, 1.0, 4.0, 4.0],
        "order",
    );
    // The description's example.
    assert_all_close(
        &p(json!([15, 20, 35, 40, 50]), json!([25, 50, 90])).await,
        &[20.0, 35.0, 46.0],
        "example",
    );
    // Even count: the median is the mean of the middle two.
    assert_all_close(
        &p(json!([4, 1, 3, 2]), json!([50, 12.5])).await,
        &[2.5, 1.375],
        "even",
    );
    // One number is every percentile.
    assert_all_close(
        &p(json!([42]), json!([0, 37.5, 100])).await,
        &[42.0, 42.0, 42.0],
        "single",
    );
    // Interpolating between numbers of opposite sign near the float limit
    // does not overflow: halfway between -1e308 and 1e308 is 0.
    assert_all_close(
        &p(json!([-1e308, 1e308]), json!([50, 0, 100])).await,
        &[0.0, -1e308, 1e308],
        "extremes",
    );
}

#[tokio::test]
async fn correlation_is_pearsons_r() {
    let (_dir, r) = load();
    let c = |xs: Value, ys: Value| {
        let r = &r;
        async move { ok(r, "stats_correlation", json!({"xs": xs, "ys": ys})).await }
    };
    // By hand: sxy 6, sxx 10, syy 6, r = 6 / sqrt(60).
    assert_close(
        &c(json!([1, 2, 3, 4, 5]), json!([2, 4, 5, 4, 5])).await,
        6.0 / 60f64.sqrt(),
        "example",
    );
    let xs = json!([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    let ys = [2.1, 3.9, 6.2, 7.8, 10.1, 12.2, 13.8, 16.1, 18.0, 19.9];
    assert_close(
        &c(xs.clone(), json!(ys)).await,
        0.999_691_003_212_358_6,
        "rising",
    );
    let falling: Vec<f64> = ys.iter().map(|y| -y).collect();
    assert_close(
        &c(xs, json!(falling)).await,
        -0.999_691_003_212_358_6,
        "falling",
    );
    // Pearson measures linearity: a square is related, not linear.
    assert_close(
        &c(json!([1, 2, 3, 4, 5]), json!([1, 4, 9, 16, 25])).await,
        0.981_104_910_251_592_9,
        "square",
    );
    // Exactly linear gives exactly 1 and -1 (never a rounded 1.0000000000000002).
    assert_eq!(c(json!([1, 2, 3]), json!([2, 4, 6])).await, json!(1.0));
    assert_eq!(
        c(json!([1, 2, 3]), json!([0.3, 0.2, 0.1])).await,
        json!(-1.0)
    );
    // Unrelated: r = 0 by hand (sxy = 0).
    assert_close(
        &c(json!([1, 2, 3, 4]), json!([1, -1, -1, 1])).await,
        0.0,
        "none",
    );
    // Scale does not matter, even at the ends of the float range.
    assert_close(
        &c(
            json!([1e200, 2e200, 3e200, 4e200, 5e200]),
            json!([2e-200, 4e-200, 5e-200, 4e-200, 5e-200]),
        )
        .await,
        6.0 / 60f64.sqrt(),
        "scaled",
    );
}

#[tokio::test]
async fn histogram_counts_equal_width_bins() {
    let (_dir, r) = load();
    let h = |args: Value| {
        let r = &r;
        async move { ok(r, "stats_histogram", args).await }
    };
    assert_eq!(
        h(json!({"values": [1, 2, 2, 3, 3, 3, 4], "bins": 3})).await,
        json!([
            {"low": 1.0, "high": 2.0, "count": 1},
            {"low": 2.0, "high": 3.0, "count": 2},
            {"low": 3.0, "high": 4.0, "count": 4},
        ])
    );
    // Default: Sturges' rule, ceil(log2(7)) + 1 = 4 bins of width 0.75.
    assert_eq!(
        h(json!({"values": [4, 3, 3, 3, 2, 2, 1]})).await,
        json!([
            {"low": 1.0, "high": 1.75, "count": 1},
            {"low": 1.75, "high": 2.5, "count": 2},
            {"low": 2.5, "high": 3.25, "count": 3},
            {"low": 3.25, "high": 4.0, "count": 1},
        ])
    );
    // Each bin holds its lower edge; the last also holds the maximum.
    assert_eq!(
        h(json!({"values": [-10, -5, 0, 5, 10], "bins": 2})).await,
        json!([
            {"low": -10.0, "high": 0.0, "count": 2},
            {"low": 0.0, "high": 10.0, "count": 3},
        ])
    );
    assert_eq!(
        h(json!({"values": [0.5, 2.5], "bins": 1})).await,
        json!([{"low": 0.5, "high": 2.5, "count": 2}])
    );
    // Equal numbers: one bin from the number to itself, whatever `bins` says.
    assert_eq!(
        h(json!({"values": [5, 5, 5], "bins": 10})).await,
        json!([{"low": 5.0, "high": 5.0, "count": 3}])
    );
    // More bins than numbers: empty bins are kept, edges are contiguous,
    // counts add up.
    let bins = h(json!({"values": [0, 1, 100], "bins": 1000})).await;
    let bins = bins.as_array().unwrap();
    assert_eq!(bins.len(), 1000);
    assert_eq!(bins[0], json!({"low": 0.0, "high": 0.1, "count": 1}));
    assert_eq!(bins[10], json!({"low": 1.0, "high": 1.1, "count": 1}));
    assert_eq!(bins[999]["high"], json!(100.0));
    assert_eq!(bins[999]["count"], json!(1));
    assert!(
        bins.windows(2).all(|w| w[0]["high"] == w[1]["low"]),
        "edges are contiguous"
    );
    let total: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 3);
}

#[tokio::test]
async fn errors_say_what_was_wrong_and_what_to_send() {
    let (_dir, r) = load();
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "stats_describe",
            json!({"values": []}),
            &["`values` is empty", "pass at least one number"],
        ),
        (
            "stats_percentiles",
            json!({"values": [], "ps": [50]}),
            &["`values` is empty"],
        ),
        (
            "stats_histogram",
            json!({"values": []}),
            &["`values` is empty"],
        ),
        (
            "stats_percentiles",
            json!({"values": [1, 2], "ps": []}),
            &["`ps` is empty", "[25, 50, 75]"],
        ),
        (
            "stats_percentiles",
            json!({"values": [1, 2], "ps": [50, 101]}),
            &["`ps[1]` is 101, outside 0 to 100", "50 for the median"],
        ),
        (
            "stats_percentiles",
            json!({"values": [1, 2], "ps": [-0.5]}),
            &["`ps[0]` is -0.5, outside 0 to 100"],
        ),
        (
            "stats_percentiles",
            json!({"values": [1, 2], "ps": vec![50; 1001]}),
            &["`ps` has 1,001 percentiles; the limit is 1,000"],
        ),
        (
            "stats_correlation",
            json!({"xs": [1, 2, 3], "ys": [1, 2]}),
            &["`xs` has 3 numbers but `ys` has 2", "same number of each"],
        ),
        (
            "stats_correlation",
            json!({"xs": [1], "ys": [2]}),
            &["hold one pair", "at least 2 pairs"],
        ),
        (
            "stats_correlation",
            json!({"xs": [], "ys": []}),
            &["hold no pairs", "at least 2 pairs"],
        ),
        (
            "stats_correlation",
            json!({"xs": [1, 2, 3], "ys": [4, 4, 4]}),
            &["every number in `ys` is 4", "undefined"],
        ),
        (
            "stats_histogram",
            json!({"values": [1, 2], "bins": 0}),
            &["`bins` is 0; pass 1 to 1,000 bins"],
        ),
        (
            "stats_histogram",
            json!({"values": [1, 2], "bins": 1001}),
            &["`bins` is 1001; pass 1 to 1,000 bins"],
        ),
    ];
    for (tool, args, needles) in cases {
        let e = tool_err(&r, tool, args.clone()).await;
        for needle in needles {
            assert!(e.contains(needle), "{tool}({args}): {e:?} lacks {needle:?}");
        }
    }
    // Too many numbers, for every list parameter.
    let too_many = vec![0.5; 1_000_001];
    for (tool, args, name) in [
        ("stats_describe", json!({"values": too_many}), "values"),
        (
            "stats_percentiles",
            json!({"values": too_many, "ps": [50]}),
            "values",
        ),
        ("stats_histogram", json!({"values": too_many}), "values"),
        (
            "stats_correlation",
            json!({"xs": too_many, "ys": too_many}),
            "xs",
        ),
    ] {
        let e = big_err(&r, tool, &args).await;
        assert!(
            e.contains(&format!(
                "`{name}` has 1,000,001 numbers; the limit is 1,000,000"
            )) && e.contains("random sample"),
            "{tool}: {e}"
        );
    }
}

async fn invalid(r: &Registry, tool: &str, args: Value) -> String {
    match r.call(tool, &args).await {
        Err(ToolError::InvalidArguments(e)) => e.to_string(),
        other => panic!("{tool}({args}) should be rejected by the host, got {other:?}"),
    }
}

#[tokio::test]
async fn the_host_validates_arguments_before_the_plugin_runs() {
    let (_dir, r) = load();
    for (tool, args, needles) in [
        (
            "stats_describe",
            json!({"values": [1, "2"]}),
            ["`$.values[1]`", "expected a number, got string \"2\""],
        ),
        (
            "stats_describe",
            json!({"values": "1, 2, 3"}),
            ["`$.values`", "got string"],
        ),
        (
            "stats_describe",
            json!({}),
            ["`$.values`", "this argument is required"],
        ),
        (
            "stats_describe",
            json!({"values": [1], "value": [2]}),
            ["`$.value`", "unknown key"],
        ),
        // JSON has no NaN: serde_json writes it as null, which is not a number.
        (
            "stats_describe",
            json!({"values": [1.0, f64::NAN]}),
            ["`$.values[1]`", "got null"],
        ),
        (
            "stats_percentiles",
            json!({"values": [1], "ps": 50}),
            ["`$.ps`", "got integer 50"],
        ),
        (
            "stats_correlation",
            json!({"xs": [1, 2], "ys": [1, null]}),
            ["`$.ys[1]`", "got null"],
        ),
        (
            "stats_histogram",
            json!({"values": [1], "bins": -1}),
            ["`$.bins`", "an integer from 0 to 4294967295"],
        ),
        (
            "stats_histogram",
            json!({"values": [1], "bins": 2.5}),
            ["`$.bins`", "2.5"],
        ),
    ] {
        let e = invalid(&r, tool, args.clone()).await;
        for needle in needles {
            assert!(e.contains(needle), "{tool}({args}): {e:?} lacks {needle:?}");
        }
    }
}

#[tokio::test]
async fn schemas_and_descriptions_come_from_the_wit() {
    let (_dir, r) = load();
    // componentize-py's own `init` export is not a tool: the packed world
    // does not declare it.
    let ours: Vec<&str> = r.tools().map(|t| t.name.as_str()).collect();
    let mut expected = TOOLS.to_vec();
    expected.sort_unstable();
    assert_eq!(ours, expected);
    let params = [
        ("stats_describe", &["values"][..]),
        ("stats_percentiles", &["values", "ps"]),
        ("stats_correlation", &["xs", "ys"]),
        ("stats_histogram", &["values", "bins"]),
    ];
    for (name, names) in params {
        let tool = r.get(name).unwrap();
        assert!(tool.description.len() > 200, "{name}: {}", tool.description);
        assert!(
            !tool.description.contains("@param") && !tool.description.contains("undocumented"),
            "{name}: {}",
            tool.description
        );
        assert!(tool.description.contains("Example:"), "{name}");
        assert!(tool.description.contains("Errors:"), "{name}");
        let props = tool.parameters["properties"].as_object().unwrap();
        assert_eq!(
            props.keys().map(String::as_str).collect::<Vec<_>>(),
            names,
            "{name}"
        );
        for (param, schema) in props {
            let text = schema["description"].as_str().unwrap_or_default();
            assert!(text.len() > 30, "{name}.{param}: {schema}");
        }
        assert_eq!(tool.parameters["additionalProperties"], json!(false));
    }

    let describe = r.get("stats_describe").unwrap();
    assert_eq!(
        describe.parameters["properties"]["values"],
        json!({
            "type": "array",
            "items": {"type": "number"},
            "description": describe.parameters["properties"]["values"]["description"],
        })
    );
    assert!(describe.description.contains("STDEV.S"));
    let out = describe.output_schema.as_ref().unwrap();
    assert_eq!(out["type"], "object");
    for field in [
        "count", "mean", "median", "stdev", "variance", "min", "max", "sum",
    ] {
        let text = out["properties"][field]["description"]
            .as_str()
            .unwrap_or_default();
        assert!(!text.is_empty(), "summary.{field}");
    }
    // Optional fields are not required: left out when there is one number.
    assert_eq!(
        out["required"],
        json!(["count", "mean", "median", "min", "max", "sum"])
    );
    assert!(
        out["properties"]["stdev"]["description"]
            .as_str()
            .unwrap()
            .contains("count - 1")
    );

    let percentiles = r.get("stats_percentiles").unwrap();
    assert_eq!(percentiles.parameters["required"], json!(["values", "ps"]));
    assert!(
        percentiles.parameters["properties"]["ps"]["description"]
            .as_str()
            .unwrap()
            .contains("from 0 to 100")
    );
    assert!(percentiles.description.contains("linear interpolation"));

    let histogram = r.get("stats_histogram").unwrap();
    assert_eq!(histogram.parameters["required"], json!(["values"]));
    assert_eq!(
        histogram.parameters["properties"]["bins"]["type"],
        "integer"
    );
    let bin = &histogram.output_schema.as_ref().unwrap()["items"];
    for field in ["low", "high", "count"] {
        assert!(
            !bin["properties"][field]["description"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "bin.{field}"
        );
    }
    assert_eq!(
        r.get("stats_correlation").unwrap().output_schema,
        Some(json!({"type": "number"}))
    );

    // Every function and parameter is documented: no warnings.
    let report = r.report();
    let stats = report.loaded.iter().find(|p| p.name == "stats").unwrap();
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    assert_eq!(stats.ignored_exports, ["exports#init"]);
}

#[tokio::test]
async fn a_million_numbers_fit_within_the_manifest_limits() {
    let (_dir, r) = load();
    // 0, 1, ..., 999,999 in a scrambled order (a permutation: 7919 is prime and
    // does not divide 10^6).
    let n = 1_000_000_u64;
    let values: Vec<f64> = (0..n).map(|i| ((i * 7919) % n) as f64).collect();

    let s = big_ok(&r, "stats_describe", &json!({ "values": values })).await;
    // By hand: the mean of 0..n-1 is (n-1)/2; the sample variance is n(n+1)/12.
    let nf = n as f64;
    let variance = nf * (nf + 1.0) / 12.0;
    assert_summary(
        &s,
        n,
        (nf - 1.0) / 2.0,
        (nf - 1.0) / 2.0,
        Some((variance.sqrt(), variance)),
    );
    assert_eq!(s["min"], json!(0.0));
    assert_eq!(s["max"], json!(999_999.0));
    assert_eq!(s["sum"], json!(499_999_500_000.0));

    let p = big_ok(
        &r,
        "stats_percentiles",
        &json!({"values": values, "ps": [0, 1, 50, 99.99, 100]}),
    )
    .await;
    // Percentile p of 0..n-1 is p/100 * (n - 1).
    assert_all_close(
        &p,
        &[0.0, 9_999.99, 499_999.5, 999_899.000_1, 999_999.0],
        "percentiles",
    );

    let h = big_ok(&r, "stats_histogram", &json!({"values": values, "bins": 4})).await;
    let counts: Vec<u64> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect();
    // Edges 0, 249999.75, 499999.5, 749999.25, 999999.
    assert_eq!(counts, [250_000, 250_000, 250_000, 250_000]);

    // Two lists of a million: this is what the manifest's 128 MiB is for.
    let ys: Vec<f64> = values.iter().map(|x| 7.0 - 3.0 * x).collect();
    let c = big_ok(&r, "stats_correlation", &json!({"xs": values, "ys": ys})).await;
    assert_close(&c, -1.0, "linear");
}
