//! JSON <-> component values, following the encoding of `shape.rs`.
//!
//! Arguments are validated while they are converted, so a mismatch is found
//! before the plugin runs and reported with its path (`$.ops[0].from`), the
//! expected type and what was sent instead.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};
use wasmtime::component::Val;

use super::shape::{Case, Field, Kind, Shape, quoted_names};

/// An argument that does not match the tool's schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid argument at `{path}`: expected {expected}, got {got}")]
pub struct ArgError {
    /// Where in the arguments, as `$.field[index]`.
    pub path: String,
    /// What the schema wants there.
    pub expected: String,
    /// What was sent, abbreviated.
    pub got: String,
}

/// One named parameter of a tool.
#[derive(Debug, Clone)]
pub struct Param {
    /// WIT name, the JSON key in the arguments object.
    pub name: String,
    /// Its type.
    pub shape: Shape,
}

/// Converts the tool-call arguments object into the function's parameters.
/// `null` and a missing object mean "no arguments".
pub fn args_to_vals(params: &[Param], args: &Value) -> Result<Vec<Val>, ArgError> {
    let empty = Map::new();
    let object = match args {
        Value::Object(map) => map,
        Value::Null => &empty,
        other => {
            return Err(ArgError {
                path: "$".into(),
                expected: format!(
                    "an object with the arguments {}",
                    params
                        .iter()
                        .map(|p| format!("`{}`", p.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                got: describe(other),
            });
        }
    };
    check_unknown_keys(object, params.iter().map(|p| p.name.as_str()), "$")?;
    params
        .iter()
        .map(|p| member_to_val(object.get(&p.name), &p.shape, &format!("$.{}", p.name)))
        .collect()
}

/// A member (parameter or record field) that may be absent when optional.
fn member_to_val(value: Option<&Value>, shape: &Shape, path: &str) -> Result<Val, ArgError> {
    match (value, &shape.kind) {
        (None, Kind::Option(_)) => Ok(Val::Option(None)),
        (None, _) => Err(ArgError {
            path: path.to_owned(),
            expected: shape.expected(),
            got: "nothing (this argument is required)".into(),
        }),
        (Some(v), _) => json_to_val(v, shape, path),
    }
}

fn check_unknown_keys<'a>(
    object: &Map<String, Value>,
    known: impl Iterator<Item = &'a str> + Clone,
    path: &str,
) -> Result<(), ArgError> {
    for key in object.keys() {
        if !known.clone().any(|k| k == key) {
            let names: Vec<String> = known.clone().map(|k| format!("`{k}`")).collect();
            return Err(ArgError {
                path: join_key(path, key),
                expected: if names.is_empty() {
                    "no keys at all".into()
                } else {
                    format!("one of the keys {}", names.join(", "))
                },
                got: format!("the unknown key `{key}`"),
            });
        }
    }
    Ok(())
}

fn join_key(path: &str, key: &str) -> String {
    format!("{path}.{key}")
}

/// Converts one JSON value to a component value of the given shape.
pub fn json_to_val(value: &Value, shape: &Shape, path: &str) -> Result<Val, ArgError> {
    let mismatch = || ArgError {
        path: path.to_owned(),
        expected: shape.expected(),
        got: describe(value),
    };
    Ok(match &shape.kind {
        Kind::Bool => Val::Bool(value.as_bool().ok_or_else(mismatch)?),
        Kind::Int(kind) => {
            let n = integer(value).ok_or_else(mismatch)?;
            let (min, max) = kind.bounds();
            if n < min || n > max {
                return Err(mismatch());
            }
            use super::shape::IntKind as I;
            // The range check above makes every conversion exact.
            match kind {
                I::S8 => Val::S8(n as i8),
                I::U8 => Val::U8(n as u8),
                I::S16 => Val::S16(n as i16),
                I::U16 => Val::U16(n as u16),
                I::S32 => Val::S32(n as i32),
                I::U32 => Val::U32(n as u32),
                I::S64 => Val::S64(n as i64),
                I::U64 => Val::U64(n as u64),
            }
        }
        Kind::F32 => {
            let f = value.as_f64().ok_or_else(mismatch)?;
            if f.abs() > f64::from(f32::MAX) {
                return Err(ArgError {
                    expected: "a number within the range of a 32-bit float".into(),
                    ..mismatch()
                });
            }
            Val::Float32(f as f32)
        }
        Kind::F64 => Val::Float64(value.as_f64().ok_or_else(mismatch)?),
        Kind::Char => {
            let s = value.as_str().ok_or_else(mismatch)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch()),
            }
        }
        Kind::String => Val::String(value.as_str().ok_or_else(mismatch)?.to_owned()),
        Kind::List(inner) => {
            let items = value.as_array().ok_or_else(mismatch)?;
            Val::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| json_to_val(v, inner, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::Tuple(items) => {
            let values = value
                .as_array()
                .filter(|a| a.len() == items.len())
                .ok_or_else(mismatch)?;
            Val::Tuple(
                values
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (v, s))| json_to_val(v, s, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::Record(fields) => {
            let object = value.as_object().ok_or_else(mismatch)?;
            check_unknown_keys(object, fields.iter().map(|f| f.name.as_str()), path)?;
            Val::Record(
                fields
                    .iter()
                    .map(|Field { name, shape, .. }| {
                        member_to_val(object.get(name), shape, &join_key(path, name))
                            .map(|v| (name.clone(), v))
                    })
                    .collect::<Result<_, _>>()?,
            )
        }
        Kind::Enum(cases) => {
            Val::Enum(case_named(cases, value.as_str().ok_or_else(mismatch)?).ok_or_else(mismatch)?)
        }
        Kind::Flags(cases) => {
            let items = value.as_array().ok_or_else(mismatch)?;
            let mut names: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let name = item
                    .as_str()
                    .and_then(|s| case_named(cases, s))
                    .ok_or_else(|| ArgError {
                        path: format!("{path}[{i}]"),
                        expected: format!("one of {}", quoted_names(cases)),
                        got: describe(item),
                    })?;
                if names.contains(&name) {
                    return Err(ArgError {
                        path: format!("{path}[{i}]"),
                        expected: "each flag at most once".into(),
                        got: format!("\"{name}\" again"),
                    });
                }
                names.push(name);
            }
            Val::Flags(names)
        }
        Kind::Variant(cases) => {
            let (tag, payload) = tag_and_payload(value).ok_or_else(mismatch)?;
            let case = cases.iter().find(|c| c.name == tag).ok_or_else(mismatch)?;
            match (&case.payload, payload) {
                (None, None) => Val::Variant(case.name.clone(), None),
                (Some(shape), Some(p)) => Val::Variant(
                    case.name.clone(),
                    Some(Box::new(json_to_val(
                        p,
                        shape,
                        &join_key(path, &case.name),
                    )?)),
                ),
                (None, Some(_)) => {
                    return Err(ArgError {
                        expected: format!(
                            "the bare string \"{}\" (this case has no payload)",
                            case.name
                        ),
                        ..mismatch()
                    });
                }
                (Some(shape), None) => {
                    return Err(ArgError {
                        expected: format!(
                            "{{\"{}\": {}}} (this case needs a payload)",
                            case.name,
                            shape.expected()
                        ),
                        ..mismatch()
                    });
                }
            }
        }
        Kind::Option(inner) => match value {
            Value::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(json_to_val(v, inner, path)?))),
        },
        Kind::Result { ok, err } => {
            let (tag, payload) = tag_and_payload(value)
                .filter(|(_, p)| p.is_some())
                .ok_or_else(mismatch)?;
            let payload = payload.unwrap_or(&Value::Null);
            let arm = |shape: &Option<Box<Shape>>| -> Result<Option<Box<Val>>, ArgError> {
                match shape {
                    Some(s) => Ok(Some(Box::new(json_to_val(
                        payload,
                        s,
                        &join_key(path, tag),
                    )?))),
                    None if payload.is_null() => Ok(None),
                    None => Err(ArgError {
                        path: join_key(path, tag),
                        expected: "null (this arm has no payload)".into(),
                        got: describe(payload),
                    }),
                }
            };
            match tag {
                "ok" => Val::Result(Ok(arm(ok)?)),
                "err" => Val::Result(Err(arm(err)?)),
                _ => return Err(mismatch()),
            }
        }
    })
}

/// `"case"` or `{"case": payload}`.
fn tag_and_payload(value: &Value) -> Option<(&str, Option<&Value>)> {
    match value {
        Value::String(s) => Some((s, None)),
        Value::Object(map) if map.len() == 1 => {
            map.iter().next().map(|(k, v)| (k.as_str(), Some(v)))
        }
        _ => None,
    }
}

fn case_named(cases: &[Case], name: &str) -> Option<String> {
    cases
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.name.clone())
}

/// An integer from a JSON number; integral floats such as `3.0` count.
fn integer(value: &Value) -> Option<i128> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() < 1.9e19).then_some(f as i128)
}

/// What a JSON value is, for error messages; long values are abbreviated.
pub fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let text = value.to_string();
    let text = if text.len() > 60 {
        let cut = (0..=57)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}...", &text[..cut])
    } else {
        text
    };
    format!("{kind} {text}")
}

/// Converts a component value to JSON if its compact JSON text takes at most
/// `limit` bytes, else [`TooLarge`]. The size is measured first, by writing
/// the text to a counter that stops at the limit (nothing is allocated), so a
/// hostile result costs no more than its lifted value before it is refused;
/// only a value within the limit is turned into a tree, through the same
/// serializer (which passes exact lengths, so arrays and objects are built
/// with exact capacities). Non-finite floats become `null`, as JSON has no
/// encoding for them.
pub fn val_to_json(val: &Val, limit: u64) -> Result<Value, TooLarge> {
    let mut counter = Counter { written: 0, limit };
    serde_json::to_writer(&mut counter, &Json(val)).map_err(|_| TooLarge)?;
    // Cannot fail: every object key `Json` writes is a string.
    Ok(serde_json::to_value(Json(val)).unwrap_or(Value::Null))
}

/// A JSON result passed its byte limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// Counts written bytes and fails past the limit.
struct Counter {
    written: u64,
    limit: u64,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.written += buf.len() as u64;
        if self.written > self.limit {
            return Err(std::io::Error::other("output limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The one JSON encoding of component values (the table in `shape.rs`), as
/// a serializer: [`val_to_json`] both measures and builds with it.
struct Json<'a>(&'a Val);

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Val::Bool(b) => s.serialize_bool(*b),
            Val::S8(n) => s.serialize_i8(*n),
            Val::U8(n) => s.serialize_u8(*n),
            Val::S16(n) => s.serialize_i16(*n),
            Val::U16(n) => s.serialize_u16(*n),
            Val::S32(n) => s.serialize_i32(*n),
            Val::U32(n) => s.serialize_u32(*n),
            Val::S64(n) => s.serialize_i64(*n),
            Val::U64(n) => s.serialize_u64(*n),
            Val::Float32(f) if f.is_finite() => s.serialize_f64(f64::from(*f)),
            Val::Float64(f) if f.is_finite() => s.serialize_f64(*f),
            Val::Float32(_) | Val::Float64(_) => s.serialize_unit(),
            Val::Char(c) => s.serialize_char(*c),
            Val::String(text) => s.serialize_str(text),
            Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
                s.collect_seq(items.iter().map(Json))
            }
            // An option field that is `none` is left out, exactly as arguments
            // leave it out, so records have one encoding in both directions.
            Val::Record(fields) => {
                let present = fields
                    .iter()
                    .filter(|(_, v)| !matches!(v, Val::Option(None)));
                let mut map = s.serialize_map(Some(present.clone().count()))?;
                for (k, v) in present {
                    map.serialize_entry(k, &Json(v))?;
                }
                map.end()
            }
            Val::Variant(name, None) | Val::Enum(name) => s.serialize_str(name),
            Val::Variant(name, Some(payload)) => single(s, name, Some(payload)),
            Val::Option(None) => s.serialize_unit(),
            Val::Option(Some(v)) => Json(v).serialize(s),
            Val::Result(Ok(v)) => single(s, "ok", v.as_deref()),
            Val::Result(Err(v)) => single(s, "err", v.as_deref()),
            Val::Flags(names) => s.collect_seq(names),
            Val::Map(pairs) => s.collect_seq(pairs.iter().map(|(k, v)| [Json(k), Json(v)])),
            // Rejected when the tool is loaded; kept total so a bug cannot panic.
            Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
                s.serialize_unit()
            }
        }
    }
}

/// `{"key": value}` (`null` for no value).
fn single<S: Serializer>(s: S, key: &str, value: Option<&Val>) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry(key, &value.map(Json))?;
    map.end()
}

#[cfg(test)]
mod tests {
    use super::super::shape::IntKind;
    use super::*;
    use serde_json::json;

    fn s(kind: Kind) -> Shape {
        Shape { kind, doc: None }
    }

    fn case(name: &str, payload: Option<Shape>) -> Case {
        Case {
            name: name.into(),
            payload,
            doc: None,
        }
    }

    /// The tree, checked against the text the same serializer writes.
    fn to_json(val: &Val) -> Value {
        let value = val_to_json(val, u64::MAX).unwrap();
        let text = serde_json::to_vec(&Json(val)).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&text).unwrap(), value);
        value
    }

    fn round_trip(shape: &Shape, value: Value) {
        let val = json_to_val(&value, shape, "$").unwrap();
        assert_eq!(to_json(&val), value);
    }

    #[test]
    fn every_kind_round_trips() {
        round_trip(&s(Kind::Bool), json!(true));
        round_trip(&s(Kind::Int(IntKind::S8)), json!(-128));
        round_trip(&s(Kind::Int(IntKind::U64)), json!(u64::MAX));
        round_trip(&s(Kind::F64), json!(1.5));
        round_trip(&s(Kind::Char), json!("é"));
        round_trip(&s(Kind::String), json!("hello"));
        round_trip(
            &s(Kind::List(Box::new(s(Kind::Int(IntKind::U32))))),
            json!([1, 2, 3]),
        );
        round_trip(
            &s(Kind::Tuple(vec![
                s(Kind::Int(IntKind::U8)),
                s(Kind::String),
            ])),
            json!([7, "x"]),
        );
        let shape = s(Kind::Variant(vec![
            case("point", None),
            case("circle", Some(s(Kind::F64))),
        ]));
        round_trip(&shape, json!("point"));
        round_trip(&shape, json!({"circle": 2.5}));
        round_trip(&s(Kind::Enum(vec![case("red", None)])), json!("red"));
        round_trip(
            &s(Kind::Flags(vec![case("read", None), case("write", None)])),
            json!(["write", "read"]),
        );
        let result = s(Kind::Result {
            ok: Some(Box::new(s(Kind::Int(IntKind::U32)))),
            err: Some(Box::new(s(Kind::String))),
        });
        round_trip(&result, json!({"ok": 3}));
        round_trip(&result, json!({"err": "bad"}));
    }

    fn err(shape: &Shape, value: Value) -> ArgError {
        json_to_val(&value, shape, "$.x").unwrap_err()
    }

    #[test]
    fn out_of_range_integers_name_the_bounds() {
        let e = err(&s(Kind::Int(IntKind::U8)), json!(256));
        assert_eq!(
            e.to_string(),
            "invalid argument at `$.x`: expected an integer from 0 to 255, got integer 256"
        );
        let e = err(&s(Kind::Int(IntKind::U32)), json!(-1));
        assert!(e.expected.contains("0 to 4294967295"));
        let e = err(&s(Kind::Int(IntKind::S32)), json!(1.5));
        assert_eq!(e.got, "number 1.5");
        assert!(json_to_val(&json!(3.0), &s(Kind::Int(IntKind::S32)), "$").is_ok());
    }

    #[test]
    fn wrong_types_and_unknown_cases() {
        assert_eq!(err(&s(Kind::String), json!(5)).got, "integer 5");
        let e = err(
            &s(Kind::Enum(vec![case("red", None), case("green", None)])),
            json!("blue"),
        );
        assert_eq!(e.expected, "one of \"red\", \"green\"");
        let e = err(&s(Kind::Char), json!("ab"));
        assert_eq!(e.expected, "a string of exactly one character");
        let e = err(
            &s(Kind::Flags(vec![case("read", None)])),
            json!(["read", "read"]),
        );
        assert_eq!(e.path, "$.x[1]");
    }

    #[test]
    fn record_paths_point_at_the_bad_field() {
        let shape = s(Kind::Record(vec![
            Field {
                name: "name".into(),
                shape: s(Kind::String),
                doc: None,
            },
            Field {
                name: "age".into(),
                shape: s(Kind::Option(Box::new(s(Kind::Int(IntKind::U8))))),
                doc: None,
            },
        ]));
        assert!(json_to_val(&json!({"name": "Ada"}), &shape, "$").is_ok());
        assert!(json_to_val(&json!({"name": "Ada", "age": null}), &shape, "$").is_ok());
        let e = err(&shape, json!({"name": "Ada", "age": 300}));
        assert_eq!(e.path, "$.x.age");
        let e = err(&shape, json!({"age": 3}));
        assert_eq!(e.path, "$.x.name");
        assert_eq!(e.got, "nothing (this argument is required)");
        let e = err(&shape, json!({"name": "Ada", "nmae": 1}));
        assert_eq!(e.path, "$.x.nmae");
        assert!(e.expected.contains("`name`, `age`"));
    }

    #[test]
    fn variant_payload_mismatches_explain_the_form() {
        let shape = s(Kind::Variant(vec![
            case("point", None),
            case("circle", Some(s(Kind::F64))),
        ]));
        assert!(
            err(&shape, json!({"point": 1}))
                .expected
                .contains("no payload")
        );
        assert!(
            err(&shape, json!("circle"))
                .expected
                .contains("needs a payload")
        );
        assert_eq!(err(&shape, json!({"circle": "big"})).path, "$.x.circle");
    }

    #[test]
    fn args_object_is_required_and_checked() {
        let params = vec![
            Param {
                name: "expression".into(),
                shape: s(Kind::String),
            },
            Param {
                name: "precision".into(),
                shape: s(Kind::Option(Box::new(s(Kind::Int(IntKind::U8))))),
            },
        ];
        assert_eq!(
            args_to_vals(&params, &json!({"expression": "1+1"}))
                .unwrap()
                .len(),
            2
        );
        let e = args_to_vals(&params, &json!("1+1")).unwrap_err();
        assert_eq!(e.path, "$");
        assert!(e.expected.contains("`expression`, `precision`"));
        let e = args_to_vals(&params, &json!({})).unwrap_err();
        assert_eq!(e.path, "$.expression");
        assert!(args_to_vals(&[], &Value::Null).unwrap().is_empty());
    }

    #[test]
    fn non_finite_results_become_null() {
        assert_eq!(to_json(&Val::Float64(f64::NAN)), Value::Null);
        assert_eq!(to_json(&Val::Float32(f32::INFINITY)), Value::Null);
        assert_eq!(to_json(&Val::Float32(0.5)), json!(0.5));
    }

    #[test]
    fn conversion_stops_at_the_limit() {
        let names: Vec<String> = (0..32).map(|i| format!("{i}")).collect();
        let list = Val::List(vec![Val::Flags(names); 10_000]);
        assert_eq!(val_to_json(&list, 4096), Err(TooLarge));
        let small = Val::Record(vec![
            ("a".into(), Val::Option(None)),
            ("b".into(), Val::Result(Ok(None))),
            (
                "c".into(),
                Val::Variant("v".into(), Some(Box::new(Val::U8(1)))),
            ),
        ]);
        let text = r#"{"b":{"ok":null},"c":{"v":1}}"#;
        assert_eq!(to_json(&small).to_string(), text);
        assert!(val_to_json(&small, text.len() as u64).is_ok());
        assert_eq!(val_to_json(&small, text.len() as u64 - 1), Err(TooLarge));
    }
}
