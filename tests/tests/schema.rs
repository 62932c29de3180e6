//! WIT -> JSON Schema derivation and JSON <-> value conversion, end to end
//! through a real component (`kitchen-sink` echoes every WIT type kind).

#![allow(clippy::unwrap_used)]

use launch::plugins::{Registry, ToolError};
use launch_tests::PluginDir;
use serde_json::{Value, json};

fn registry() -> (PluginDir, Registry) {
    let dir = PluginDir::new().fixture("kitchen-sink");
    let registry = dir.load();
    assert!(
        registry.report().failed.is_empty(),
        "{:?}",
        registry.report().failed
    );
    (dir, registry)
}

fn params(registry: &Registry, tool: &str) -> Value {
    registry.get(tool).unwrap().parameters.clone()
}

async fn echo(registry: &Registry, tool: &str, args: Value) -> Value {
    registry
        .call(tool, &args)
        .await
        .unwrap_or_else(|e| panic!("{tool}({args}): {e}"))
}

async fn invalid(registry: &Registry, tool: &str, args: Value) -> String {
    match registry.call(tool, &args).await {
        Err(ToolError::InvalidArguments(e)) => e.to_string(),
        other => panic!("{tool}({args}) should be rejected, got {other:?}"),
    }
}

#[tokio::test]
async fn every_kind_round_trips_through_the_component() {
    let (_dir, r) = registry();
    let cases = [
        ("kitchen_sink_echo_bool", json!(true)),
        ("kitchen_sink_echo_s8", json!(-128)),
        ("kitchen_sink_echo_u8", json!(255)),
        ("kitchen_sink_echo_s16", json!(-32768)),
        ("kitchen_sink_echo_u16", json!(65535)),
        ("kitchen_sink_echo_s32", json!(i32::MIN)),
        ("kitchen_sink_echo_u32", json!(u32::MAX)),
        ("kitchen_sink_echo_s64", json!(i64::MIN)),
        ("kitchen_sink_echo_u64", json!(u64::MAX)),
        ("kitchen_sink_echo_f32", json!(1.5)),
        ("kitchen_sink_echo_f64", json!(-0.125)),
        ("kitchen_sink_echo_char", json!("🦀")),
        ("kitchen_sink_echo_string", json!("héllo\n\"world\"")),
        ("kitchen_sink_echo_tuple", json!([7, "seven", true])),
        ("kitchen_sink_echo_enum", json!("green")),
        ("kitchen_sink_echo_flags", json!(["read", "execute"])),
        ("kitchen_sink_echo_variant", json!("point")),
        ("kitchen_sink_echo_variant", json!({"circle": 2.5})),
        (
            "kitchen_sink_echo_variant",
            json!({"rect": {"width": 1.0, "height": 2.0}}),
        ),
        ("kitchen_sink_echo_option", json!("some")),
        ("kitchen_sink_echo_option", Value::Null),
    ];
    for (tool, value) in cases {
        let arg = match tool {
            "kitchen_sink_echo_enum" => "c",
            "kitchen_sink_echo_flags" => "p",
            "kitchen_sink_echo_variant" => "s",
            _ => "value",
        };
        assert_eq!(echo(&r, tool, json!({ arg: value })).await, value, "{tool}");
    }
    assert_eq!(
        echo(&r, "kitchen_sink_echo_list", json!({"values": [1, 2, 3]})).await,
        json!([1, 2, 3])
    );
    assert_eq!(
        echo(&r, "kitchen_sink_echo_strings", json!({"values": []})).await,
        json!([])
    );
    let person = json!({
        "name": "Ada", "age": 36, "address": {"street": "1 Loop", "city": "London"},
        "tags": ["math"], "favorite-color": "blue"
    });
    assert_eq!(
        echo(&r, "kitchen_sink_echo_record", json!({"r": person})).await,
        person
    );
    // An option field that is `none` is absent both ways; `null` means `none` too.
    let mut no_age = person.clone();
    no_age.as_object_mut().unwrap().remove("age");
    assert_eq!(
        echo(&r, "kitchen_sink_echo_record", json!({"r": no_age.clone()})).await,
        no_age
    );
    let mut null_age = person.clone();
    null_age["age"] = Value::Null;
    assert_eq!(
        echo(&r, "kitchen_sink_echo_record", json!({"r": null_age})).await,
        no_age
    );
    assert_eq!(
        echo(
            &r,
            "kitchen_sink_echo_list_of_records",
            json!({"people": [person.clone(), person.clone()]})
        )
        .await,
        json!([person, person])
    );
    assert_eq!(
        echo(&r, "kitchen_sink_wrap_result", json!({"r": {"ok": 5}})).await,
        json!("ok: 5")
    );
    assert_eq!(
        echo(&r, "kitchen_sink_wrap_result", json!({"r": {"err": "no"}})).await,
        json!("err: no")
    );
}

#[tokio::test]
async fn schemas_are_exact() {
    let (_dir, r) = registry();
    assert_eq!(
        params(&r, "kitchen_sink_echo_u8")["properties"]["value"],
        json!({"type": "integer", "minimum": 0, "maximum": 255, "description": "The integer to echo, from 0 to 255."})
    );
    assert_eq!(
        params(&r, "kitchen_sink_echo_s64")["properties"]["value"]["minimum"],
        json!(i64::MIN)
    );
    assert_eq!(
        params(&r, "kitchen_sink_echo_u64")["properties"]["value"]["maximum"],
        json!(u64::MAX)
    );
    let c = &params(&r, "kitchen_sink_echo_char")["properties"]["value"];
    assert_eq!(
        (c["minLength"].clone(), c["maxLength"].clone()),
        (json!(1), json!(1))
    );
    let t = &params(&r, "kitchen_sink_echo_tuple")["properties"]["value"];
    assert_eq!(t["prefixItems"].as_array().unwrap().len(), 3);
    assert_eq!(
        t["prefixItems"][0],
        json!({"type": "integer", "minimum": 0, "maximum": 255})
    );
    assert_eq!(
        (t["minItems"].clone(), t["maxItems"].clone()),
        (json!(3), json!(3))
    );
    let f = &params(&r, "kitchen_sink_echo_flags")["properties"]["p"];
    assert_eq!(f["items"]["enum"], json!(["read", "write", "execute"]));
    assert_eq!(f["uniqueItems"], json!(true));
    let v = &params(&r, "kitchen_sink_echo_variant")["properties"]["s"]["oneOf"];
    assert_eq!(v[0]["enum"], json!(["point"]));
    assert_eq!(v[1]["required"], json!(["circle"]));
    assert_eq!(
        v[2]["properties"]["rect"]["required"],
        json!(["width", "height"])
    );
    let w = &params(&r, "kitchen_sink_wrap_result")["properties"]["r"]["oneOf"];
    assert_eq!(w[0]["properties"]["ok"]["type"], "integer");
    assert_eq!(w[1]["properties"]["err"]["type"], "string");
}

#[tokio::test]
async fn optional_params_are_not_required() {
    let (_dir, r) = registry();
    let greet = params(&r, "kitchen_sink_greet");
    assert_eq!(greet["required"], json!(["name"]));
    assert_eq!(greet["properties"]["times"]["maximum"], json!(255));
    assert_eq!(greet["additionalProperties"], json!(false));
    let person = &params(&r, "kitchen_sink_echo_record")["properties"]["r"];
    assert_eq!(
        person["required"],
        json!(["name", "address", "tags", "favorite-color"])
    );
    assert_eq!(
        params(&r, "kitchen_sink_echo_option")["required"],
        json!([])
    );
    let once = echo(&r, "kitchen_sink_greet", json!({"name": "Ada"})).await;
    let fancy = echo(
        &r,
        "kitchen_sink_greet",
        json!({"name": "Ada", "title": "Dr.", "times": 2}),
    )
    .await;
    assert_ne!(once, fancy);
    assert!(fancy.as_str().unwrap().contains("Dr."), "{fancy}");
}

#[tokio::test]
async fn docs_reach_descriptions_fields_and_cases() {
    let (_dir, r) = registry();
    let tool = r.get("kitchen_sink_echo_record").unwrap();
    assert!(
        tool.description.starts_with("Return a record"),
        "{}",
        tool.description
    );
    assert!(!tool.description.contains("@param"));
    let person = &tool.parameters["properties"]["r"];
    assert!(
        person["description"]
            .as_str()
            .unwrap()
            .starts_with("The person to echo.")
    );
    assert_eq!(
        person["properties"]["name"]["description"],
        "The person's full name."
    );
    let color = person["properties"]["favorite-color"]["description"]
        .as_str()
        .unwrap();
    assert!(color.contains("- `red`: Red, like a stop sign."), "{color}");
    let shape = &r.get("kitchen_sink_echo_variant").unwrap().parameters["properties"]["s"]["oneOf"];
    assert!(
        shape.to_string().contains("description"),
        "variant cases carry docs: {shape}"
    );
}

#[tokio::test]
async fn bad_arguments_get_path_and_expected_type() {
    let (_dir, r) = registry();
    assert_eq!(
        invalid(&r, "kitchen_sink_echo_u8", json!({"value": 256})).await,
        "invalid argument at `$.value`: expected an integer from 0 to 255, got integer 256"
    );
    assert_eq!(
        invalid(&r, "kitchen_sink_echo_s8", json!({"value": "5"})).await,
        "invalid argument at `$.value`: expected an integer from -128 to 127, got string \"5\""
    );
    assert_eq!(
        invalid(&r, "kitchen_sink_echo_enum", json!({"c": "purple"})).await,
        "invalid argument at `$.c`: expected one of \"red\", \"green\", \"blue\", got string \"purple\""
    );
    assert_eq!(
        invalid(&r, "kitchen_sink_echo_string", json!({})).await,
        "invalid argument at `$.value`: expected a string, got nothing (this argument is required)"
    );
    let person =
        json!({"name": "Ada", "address": {"street": "x"}, "tags": [], "favorite-color": "red"});
    assert_eq!(
        invalid(&r, "kitchen_sink_echo_record", json!({"r": person})).await,
        "invalid argument at `$.r.address.city`: expected a string, got nothing (this argument is required)"
    );
    let msg = invalid(&r, "kitchen_sink_echo_list", json!({"values": [1, -2]})).await;
    assert!(
        msg.starts_with(
            "invalid argument at `$.values[1]`: expected an integer from 0 to 4294967295"
        ),
        "{msg}"
    );
    let msg = invalid(&r, "kitchen_sink_echo_tuple", json!({"value": [1, "x"]})).await;
    assert!(
        msg.contains("expected an array of exactly 3 items"),
        "{msg}"
    );
    let msg = invalid(&r, "kitchen_sink_echo_flags", json!({"p": ["read", "fly"]})).await;
    assert!(
        msg.starts_with(
            "invalid argument at `$.p[1]`: expected one of \"read\", \"write\", \"execute\""
        ),
        "{msg}"
    );
    let msg = invalid(
        &r,
        "kitchen_sink_echo_variant",
        json!({"s": {"circle": "big"}}),
    )
    .await;
    assert!(
        msg.starts_with("invalid argument at `$.s.circle`: expected a number"),
        "{msg}"
    );
    let msg = invalid(
        &r,
        "kitchen_sink_echo_bool",
        json!({"value": true, "extra": 1}),
    )
    .await;
    assert!(
        msg.contains("`$.extra`") && msg.contains("the unknown key `extra`"),
        "{msg}"
    );
    let msg = invalid(&r, "kitchen_sink_echo_bool", json!([true])).await;
    assert!(
        msg.starts_with("invalid argument at `$`: expected an object"),
        "{msg}"
    );
    let msg = invalid(&r, "kitchen_sink_echo_char", json!({"value": "ab"})).await;
    assert!(msg.contains("exactly one character"), "{msg}");
    let msg = invalid(&r, "kitchen_sink_echo_f32", json!({"value": 1e300})).await;
    assert!(msg.contains("32-bit float"), "{msg}");
}

#[tokio::test]
async fn guest_err_is_a_tool_error_with_its_message() {
    let (_dir, r) = registry();
    match r
        .call("kitchen_sink_fail", &json!({"message": "it broke"}))
        .await
    {
        Err(ToolError::Failed { message, details }) => {
            assert_eq!(message, "it broke");
            assert_eq!(details, json!("it broke"));
        }
        other => panic!("expected a tool error, got {other:?}"),
    }
    assert_eq!(
        echo(&r, "kitchen_sink_divide", json!({"a": 7, "b": -2})).await,
        json!(-3)
    );
    let err = r
        .call("kitchen_sink_divide", &json!({"a": 1, "b": 0}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tool_error");
}
