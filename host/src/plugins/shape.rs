//! The one encoding of WIT types as JSON: a [`Shape`] is derived once per tool
//! from the component's types (plus the WIT docs, when the plugin ships them)
//! and then drives both the JSON Schema the model sees and the conversion of
//! arguments and results (see `values.rs`), so the two can never disagree.
//!
//! | WIT                  | JSON value                                  | JSON Schema                                        |
//! |----------------------|---------------------------------------------|----------------------------------------------------|
//! | `bool`               | `true`                                      | `boolean`                                          |
//! | `u8`..`s64`          | `42`                                        | `integer` with `minimum`/`maximum`                 |
//! | `f32`, `f64`         | `1.5`                                       | `number`                                           |
//! | `char`               | `"x"`                                       | `string`, exactly one character                    |
//! | `string`             | `"text"`                                    | `string`                                           |
//! | `list<T>`            | `[T, ...]`                                  | `array` of T                                       |
//! | `tuple<A, B>`        | `[A, B]`                                    | `array` with `prefixItems`, fixed length           |
//! | `record`             | `{"field": ...}`                            | `object`, option fields not `required`             |
//! | `enum`               | `"case"`                                    | `string` with `enum`                               |
//! | `flags`              | `["flag-a", "flag-b"]`                      | `array` of unique `enum` strings                   |
//! | `variant`            | `"case"` or `{"case": payload}`             | `oneOf`                                            |
//! | `option<T>`          | T, or `null`/absent                         | T and not `required` (else `anyOf [T, null]`)      |
//! | `result<T, E>`       | `{"ok": T}` or `{"err": E}`                 | `oneOf` (a function's own result is the tool's outcome instead) |

use serde_json::{Map, Value, json};
use wasmtime::component::types::Type;

/// A WIT type, reduced to what matters for JSON, with its documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    /// The structure.
    pub kind: Kind,
    /// The WIT `///` docs of the named type, if any.
    pub doc: Option<String>,
}

/// The structure of a [`Shape`].
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `bool`
    Bool,
    /// Any integer type.
    Int(IntKind),
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// `char`
    Char,
    /// `string`
    String,
    /// `list<T>`
    List(Box<Shape>),
    /// `record`
    Record(Vec<Field>),
    /// `tuple<...>`
    Tuple(Vec<Shape>),
    /// `variant`
    Variant(Vec<Case>),
    /// `enum` (cases never have payloads)
    Enum(Vec<Case>),
    /// `flags` (cases never have payloads)
    Flags(Vec<Case>),
    /// `option<T>`
    Option(Box<Shape>),
    /// `result<T, E>`
    Result {
        /// The `ok` payload type, if any.
        ok: Option<Box<Shape>>,
        /// The `err` payload type, if any.
        err: Option<Box<Shape>>,
    },
}

/// A record field.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// WIT name (kebab-case), used as the JSON key.
    pub name: String,
    /// Field type.
    pub shape: Shape,
    /// The field's `///` docs.
    pub doc: Option<String>,
}

/// A variant or enum case, or a flag.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// WIT name (kebab-case), used as the JSON string or key.
    pub name: String,
    /// Payload, for variant cases that have one.
    pub payload: Option<Shape>,
    /// The case's `///` docs.
    pub doc: Option<String>,
}

/// The integer types, each with its exact bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum IntKind {
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
}

impl IntKind {
    /// Smallest and largest value.
    pub fn bounds(self) -> (i128, i128) {
        match self {
            IntKind::S8 => (i8::MIN.into(), i8::MAX.into()),
            IntKind::U8 => (0, u8::MAX.into()),
            IntKind::S16 => (i16::MIN.into(), i16::MAX.into()),
            IntKind::U16 => (0, u16::MAX.into()),
            IntKind::S32 => (i32::MIN.into(), i32::MAX.into()),
            IntKind::U32 => (0, u32::MAX.into()),
            IntKind::S64 => (i64::MIN.into(), i64::MAX.into()),
            IntKind::U64 => (0, u64::MAX.into()),
        }
    }
}

/// A type that has no JSON encoding (resources, streams, futures...), so the
/// function using it cannot be a tool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} cannot be passed as JSON, so this function cannot be a tool")]
pub struct Unsupported(pub String);

/// Why a type has no shape: it cannot be JSON (the function is not a tool),
/// or it is too large to describe (the plugin is refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Not representable as JSON.
    #[error(transparent)]
    Unsupported(#[from] Unsupported),
    /// Past a [`TypeBudget`] bound.
    #[error("{0}")]
    TooLarge(String),
}

/// Deepest nesting of types in a tool's parameters or result.
pub const MAX_TYPE_DEPTH: usize = 32;
/// Most type nodes (every use of a type counts) in one tool's signature.
pub const MAX_TOOL_TYPE_NODES: usize = 4096;
/// Most bytes of type names and docs in one tool's signature.
pub const MAX_TOOL_TYPE_TEXT: usize = 256 * 1024;
/// Most type nodes over all tools of one plugin.
pub const MAX_PLUGIN_TYPE_NODES: usize = 32_768;
/// Most bytes of type names and docs over all tools of one plugin.
pub const MAX_PLUGIN_TYPE_TEXT: usize = 2 * 1024 * 1024;

/// Bounds the work of deriving a plugin's shapes. WIT types form a DAG, so a
/// 2 KB component can declare a type that expands to billions of nodes
/// (`tuple<t, t>` of `tuple<u, u>` of ...); every expanded node is charged
/// here and derivation stops at the first bound passed, before the schema is
/// built.
#[derive(Debug, Default)]
pub struct TypeBudget {
    tool_nodes: usize,
    tool_text: usize,
    plugin_nodes: usize,
    plugin_text: usize,
}

impl TypeBudget {
    /// Starts the count of a new tool (the plugin-wide counts go on).
    pub fn next_tool(&mut self) {
        self.tool_nodes = 0;
        self.tool_text = 0;
    }

    fn charge(&mut self, depth: usize, text: usize) -> Result<(), ShapeError> {
        self.tool_nodes += 1;
        self.plugin_nodes += 1;
        self.tool_text += text;
        self.plugin_text += text;
        let over = if depth >= MAX_TYPE_DEPTH {
            format!("types nested deeper than {MAX_TYPE_DEPTH} levels")
        } else if self.tool_nodes > MAX_TOOL_TYPE_NODES {
            format!(
                "more than {MAX_TOOL_TYPE_NODES} type nodes in one function (each use of a type counts)"
            )
        } else if self.tool_text > MAX_TOOL_TYPE_TEXT {
            format!(
                "more than {} KiB of type names and docs in one function",
                MAX_TOOL_TYPE_TEXT / 1024
            )
        } else if self.plugin_nodes > MAX_PLUGIN_TYPE_NODES {
            format!("more than {MAX_PLUGIN_TYPE_NODES} type nodes over all its functions")
        } else if self.plugin_text > MAX_PLUGIN_TYPE_TEXT {
            format!(
                "more than {} MiB of type names and docs over all its functions",
                MAX_PLUGIN_TYPE_TEXT / (1024 * 1024)
            )
        } else {
            return Ok(());
        };
        Err(ShapeError::TooLarge(over))
    }
}

/// Optional WIT-side view of the same type, used only to find docs.
#[derive(Clone, Copy)]
pub struct WitType<'a> {
    /// The resolved WIT package the docs came from.
    pub resolve: &'a wit_parser::Resolve,
    /// The WIT type at this position.
    pub ty: wit_parser::Type,
}

impl<'a> WitType<'a> {
    /// Follows aliases to the defining type, keeping the first docs seen.
    fn def(self) -> Option<(&'a wit_parser::TypeDefKind, Option<String>)> {
        let mut ty = self.ty;
        let mut doc = None;
        loop {
            let wit_parser::Type::Id(id) = ty else {
                return None;
            };
            let def = self.resolve.types.get(id)?;
            if doc.is_none() {
                doc = clean_doc(def.docs.contents.as_deref());
            }
            match &def.kind {
                wit_parser::TypeDefKind::Type(inner) => ty = *inner,
                kind => return Some((kind, doc)),
            }
        }
    }

    fn with(self, ty: wit_parser::Type) -> Self {
        Self { ty, ..self }
    }
}

fn clean_doc(doc: Option<&str>) -> Option<String> {
    doc.map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

impl Shape {
    #[cfg(test)]
    fn plain(kind: Kind) -> Self {
        Self { kind, doc: None }
    }

    /// Derives the shape of a component type; `wit`, when present, is the same
    /// type in the plugin's WIT and contributes docs only. Every node is
    /// charged to `budget`, so a type bomb is refused rather than expanded.
    pub fn from_type(
        ty: &Type,
        wit: Option<WitType<'_>>,
        budget: &mut TypeBudget,
    ) -> Result<Self, ShapeError> {
        Self::build(ty, wit, budget, 0)
    }

    fn build(
        ty: &Type,
        wit: Option<WitType<'_>>,
        budget: &mut TypeBudget,
        depth: usize,
    ) -> Result<Self, ShapeError> {
        use wit_parser::TypeDefKind as W;
        let def = wit.and_then(WitType::def);
        let (wit_kind, doc) = match def {
            Some((kind, doc)) => (Some(kind), doc),
            None => (None, None),
        };
        let names: usize = match ty {
            Type::Record(r) => r.fields().map(|f| f.name.len()).sum(),
            Type::Variant(v) => v.cases().map(|c| c.name.len()).sum(),
            Type::Enum(e) => e.names().map(str::len).sum(),
            Type::Flags(f) => f.names().map(str::len).sum(),
            _ => 0,
        };
        // Docs of fields and cases are copied into every use of the type too.
        let doc_len = |d: &wit_parser::Docs| d.contents.as_ref().map_or(0, String::len);
        let member_docs: usize = match wit_kind {
            Some(W::Record(r)) => r.fields.iter().map(|f| doc_len(&f.docs)).sum(),
            Some(W::Variant(v)) => v.cases.iter().map(|c| doc_len(&c.docs)).sum(),
            Some(W::Enum(e)) => e.cases.iter().map(|c| doc_len(&c.docs)).sum(),
            Some(W::Flags(f)) => f.flags.iter().map(|c| doc_len(&c.docs)).sum(),
            _ => 0,
        };
        budget.charge(
            depth,
            names + member_docs + doc.as_ref().map_or(0, String::len),
        )?;
        let kind = match ty {
            Type::Bool => Kind::Bool,
            Type::S8 => Kind::Int(IntKind::S8),
            Type::U8 => Kind::Int(IntKind::U8),
            Type::S16 => Kind::Int(IntKind::S16),
            Type::U16 => Kind::Int(IntKind::U16),
            Type::S32 => Kind::Int(IntKind::S32),
            Type::U32 => Kind::Int(IntKind::U32),
            Type::S64 => Kind::Int(IntKind::S64),
            Type::U64 => Kind::Int(IntKind::U64),
            Type::Float32 => Kind::F32,
            Type::Float64 => Kind::F64,
            Type::Char => Kind::Char,
            Type::String => Kind::String,
            Type::List(list) => {
                let inner = match (wit, wit_kind) {
                    (Some(w), Some(W::List(t))) => Some(w.with(*t)),
                    _ => None,
                };
                Kind::List(Box::new(Shape::build(
                    &list.ty(),
                    inner,
                    budget,
                    depth + 1,
                )?))
            }
            Type::Record(record) => {
                let wit_fields = match wit_kind {
                    Some(W::Record(r)) if r.fields.len() == record.fields().len() => {
                        Some(&r.fields)
                    }
                    _ => None,
                };
                let mut fields = Vec::with_capacity(record.fields().len());
                for (i, field) in record.fields().enumerate() {
                    let wf = wit_fields
                        .and_then(|f| f.get(i))
                        .filter(|f| f.name == field.name);
                    let inner = wit.zip(wf).map(|(w, f)| w.with(f.ty));
                    fields.push(Field {
                        name: field.name.to_owned(),
                        shape: Shape::build(&field.ty, inner, budget, depth + 1)?,
                        doc: wf.and_then(|f| clean_doc(f.docs.contents.as_deref())),
                    });
                }
                Kind::Record(fields)
            }
            Type::Tuple(tuple) => {
                let wit_types = match wit_kind {
                    Some(W::Tuple(t)) if t.types.len() == tuple.types().len() => Some(&t.types),
                    _ => None,
                };
                let items = tuple
                    .types()
                    .enumerate()
                    .map(|(i, t)| {
                        let inner = wit
                            .zip(wit_types.and_then(|ts| ts.get(i)))
                            .map(|(w, t)| w.with(*t));
                        Shape::build(&t, inner, budget, depth + 1)
                    })
                    .collect::<Result<_, _>>()?;
                Kind::Tuple(items)
            }
            Type::Variant(variant) => {
                let wit_cases = match wit_kind {
                    Some(W::Variant(v)) => Some(&v.cases),
                    _ => None,
                };
                let mut cases = Vec::new();
                for (i, case) in variant.cases().enumerate() {
                    let wc = wit_cases
                        .and_then(|c| c.get(i))
                        .filter(|c| c.name == case.name);
                    let payload = match case.ty {
                        Some(t) => {
                            let inner = wit.zip(wc.and_then(|c| c.ty)).map(|(w, t)| w.with(t));
                            Some(Shape::build(&t, inner, budget, depth + 1)?)
                        }
                        None => None,
                    };
                    cases.push(Case {
                        name: case.name.to_owned(),
                        payload,
                        doc: wc.and_then(|c| clean_doc(c.docs.contents.as_deref())),
                    });
                }
                Kind::Variant(cases)
            }
            Type::Enum(e) => {
                let docs: Vec<Option<String>> = match wit_kind {
                    Some(W::Enum(we)) => we
                        .cases
                        .iter()
                        .map(|c| clean_doc(c.docs.contents.as_deref()))
                        .collect(),
                    _ => Vec::new(),
                };
                Kind::Enum(named_cases(e.names(), &docs))
            }
            Type::Flags(f) => {
                let docs: Vec<Option<String>> = match wit_kind {
                    Some(W::Flags(wf)) => wf
                        .flags
                        .iter()
                        .map(|c| clean_doc(c.docs.contents.as_deref()))
                        .collect(),
                    _ => Vec::new(),
                };
                Kind::Flags(named_cases(f.names(), &docs))
            }
            Type::Option(o) => {
                let inner = match (wit, wit_kind) {
                    (Some(w), Some(W::Option(t))) => Some(w.with(*t)),
                    _ => None,
                };
                let inner = Shape::build(&o.ty(), inner, budget, depth + 1)?;
                if matches!(inner.kind, Kind::Option(_)) {
                    return Err(Unsupported(
                        "a nested option<option<T>> (its `none` and `some(none)` look the same in JSON)".into(),
                    )
                    .into());
                }
                Kind::Option(Box::new(inner))
            }
            Type::Result(r) => {
                let (wok, werr) = match (wit, wit_kind) {
                    (Some(w), Some(W::Result(res))) => {
                        (res.ok.map(|t| w.with(t)), res.err.map(|t| w.with(t)))
                    }
                    _ => (None, None),
                };
                Kind::Result {
                    ok: r
                        .ok()
                        .map(|t| Shape::build(&t, wok, budget, depth + 1).map(Box::new))
                        .transpose()?,
                    err: r
                        .err()
                        .map(|t| Shape::build(&t, werr, budget, depth + 1).map(Box::new))
                        .transpose()?,
                }
            }
            Type::Own(_) | Type::Borrow(_) => {
                return Err(Unsupported("a resource handle".into()).into());
            }
            Type::Future(_) => return Err(Unsupported("a future".into()).into()),
            Type::Stream(_) => return Err(Unsupported("a stream".into()).into()),
            Type::ErrorContext => return Err(Unsupported("an error-context".into()).into()),
            Type::Map(_) => return Err(Unsupported("a map".into()).into()),
            Type::FixedLengthList(_) => {
                return Err(Unsupported("a fixed-length list".into()).into());
            }
        };
        Ok(Self { kind, doc })
    }

    /// An upper bound of the host bytes wasmtime allocates per unit of
    /// hostcall fuel while lifting a value of this shape into a `Val`.
    ///
    /// Wasmtime charges fuel for the `Val` slots and the bytes of names it
    /// copies, but a one-letter flag costs one unit and a whole `String` on
    /// the host (and an enum case the same): `list<flags>` with 32 short
    /// flags builds ~25x more host memory than it is charged. Dividing the
    /// host's budget by this ratio makes the fuel a real bound on memory.
    /// Lists are where a value can grow, so the ratio is the worst, over every
    /// list element type, of (slot + host bytes) / (slot + fuel) per element,
    /// with the host side taken at its largest and the fuel at its smallest.
    pub fn lift_cost_ratio(&self) -> f64 {
        let mut worst = 1.0;
        self.lift_cost(&mut worst);
        worst
    }

    /// (host bytes beyond the value's own slot, fuel charged for them), both
    /// worst case; list element ratios go to `worst`.
    fn lift_cost(&self, worst: &mut f64) -> (f64, f64) {
        // glibc's smallest chunk is 32 bytes; larger ones add 8 and round to 16.
        fn alloc(n: usize) -> f64 {
            if n == 0 {
                0.0
            } else {
                ((n + 8).div_ceil(16) * 16).max(32) as f64
            }
        }
        let slot = std::mem::size_of::<wasmtime::component::Val>() as f64;
        let string = std::mem::size_of::<String>() as f64;
        let (mut host, mut fuel) = (0.0, 0.0);
        match &self.kind {
            Kind::Bool | Kind::Int(_) | Kind::F32 | Kind::F64 | Kind::Char => {}
            // Bytes are charged one for one; the allocation's minimum is not.
            Kind::String => host = alloc(1),
            Kind::List(inner) => {
                let (h, f) = inner.lift_cost(worst);
                *worst = f64::max(*worst, (slot + h) / (slot + f));
            }
            Kind::Record(fields) => {
                for field in fields {
                    let (h, f) = field.shape.lift_cost(worst);
                    host += string + slot + alloc(field.name.len()) + h;
                    fuel += slot + field.name.len() as f64 + f;
                }
            }
            Kind::Tuple(items) => {
                for item in items {
                    let (h, f) = item.lift_cost(worst);
                    host += slot + h;
                    fuel += slot + f;
                }
            }
            // Every flag set: a `String` in a `Vec` (capacity up to twice the
            // count) and its allocation; none set costs no fuel.
            Kind::Flags(cases) => {
                host = cases
                    .iter()
                    .map(|c| 2.0 * string + alloc(c.name.len()))
                    .sum();
            }
            Kind::Enum(cases) | Kind::Variant(cases) => {
                let mut cheapest = f64::MAX;
                for case in cases {
                    let (mut h, mut f) = (alloc(case.name.len()), case.name.len() as f64);
                    if let Some(payload) = &case.payload {
                        let (ph, pf) = payload.lift_cost(worst);
                        h += alloc(slot as usize) + ph;
                        f += slot + pf;
                    }
                    host = f64::max(host, h);
                    cheapest = cheapest.min(f);
                }
                fuel = if cases.is_empty() { 0.0 } else { cheapest };
            }
            Kind::Option(inner) => host = alloc(slot as usize) + inner.lift_cost(worst).0,
            Kind::Result { ok, err } => {
                for arm in [ok, err].into_iter().flatten() {
                    host = f64::max(host, alloc(slot as usize) + arm.lift_cost(worst).0);
                }
            }
        }
        (host, fuel)
    }

    /// Whether a parameter or field of this shape may be left out.
    pub fn is_optional(&self) -> bool {
        matches!(self.kind, Kind::Option(_))
    }

    /// A short, human description of the expected JSON, for error messages.
    pub fn expected(&self) -> String {
        match &self.kind {
            Kind::Bool => "a boolean".into(),
            Kind::Int(k) => {
                let (min, max) = k.bounds();
                format!("an integer from {min} to {max}")
            }
            Kind::F32 | Kind::F64 => "a number".into(),
            Kind::Char => "a string of exactly one character".into(),
            Kind::String => "a string".into(),
            Kind::List(_) => "an array".into(),
            Kind::Record(_) => "an object".into(),
            Kind::Tuple(items) => format!("an array of exactly {} items", items.len()),
            Kind::Enum(cases) => format!("one of {}", quoted_names(cases)),
            Kind::Flags(cases) => {
                format!("an array of distinct values from {}", quoted_names(cases))
            }
            Kind::Variant(cases) => {
                let forms: Vec<String> = cases
                    .iter()
                    .map(|c| match c.payload {
                        None => format!("\"{}\"", c.name),
                        Some(_) => format!("{{\"{}\": ...}}", c.name),
                    })
                    .collect();
                format!("one of {}", forms.join(", "))
            }
            Kind::Option(inner) => format!("{} or null", inner.expected()),
            Kind::Result { .. } => "an object {\"ok\": ...} or {\"err\": ...}".into(),
        }
    }

    /// The JSON Schema of this shape.
    pub fn schema(&self) -> Value {
        let mut schema = match &self.kind {
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int(k) => {
                let (min, max) = k.bounds();
                json!({"type": "integer", "minimum": int_json(min), "maximum": int_json(max)})
            }
            Kind::F32 | Kind::F64 => json!({"type": "number"}),
            Kind::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
            Kind::String => json!({"type": "string"}),
            Kind::List(inner) => json!({"type": "array", "items": inner.schema()}),
            Kind::Record(fields) => object_schema(
                fields
                    .iter()
                    .map(|f| (f.name.as_str(), &f.shape, f.doc.as_deref())),
            ),
            Kind::Tuple(items) => json!({
                "type": "array",
                "prefixItems": items.iter().map(Shape::schema).collect::<Vec<_>>(),
                "items": false,
                "minItems": items.len(),
                "maxItems": items.len(),
            }),
            Kind::Enum(cases) => {
                let mut s = json!({"type": "string", "enum": case_names(cases)});
                if let Some(d) = case_docs(cases) {
                    s["description"] = d.into();
                }
                s
            }
            Kind::Flags(cases) => {
                let mut items = json!({"type": "string", "enum": case_names(cases)});
                if let Some(d) = case_docs(cases) {
                    items["description"] = d.into();
                }
                json!({"type": "array", "items": items, "uniqueItems": true})
            }
            Kind::Variant(cases) => {
                let mut one_of = Vec::new();
                let bare: Vec<&Case> = cases.iter().filter(|c| c.payload.is_none()).collect();
                if !bare.is_empty() {
                    let mut s = json!({"type": "string", "enum": bare.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()});
                    if let Some(d) = case_docs(bare.iter().copied()) {
                        s["description"] = d.into();
                    }
                    one_of.push(s);
                }
                for case in cases {
                    if let Some(payload) = &case.payload {
                        one_of.push(tagged(&case.name, payload.schema(), case.doc.as_deref()));
                    }
                }
                json!({"oneOf": one_of})
            }
            Kind::Option(inner) => json!({"anyOf": [inner.schema(), {"type": "null"}]}),
            Kind::Result { ok, err } => {
                let arm = |s: &Option<Box<Shape>>| {
                    s.as_ref().map_or(json!({"type": "null"}), |s| s.schema())
                };
                json!({"oneOf": [tagged("ok", arm(ok), None), tagged("err", arm(err), None)]})
            }
        };
        if let Some(doc) = &self.doc {
            // Cases already carry their own descriptions; keep the type's first.
            let existing = schema
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_owned);
            schema["description"] = match existing {
                Some(cases) => format!("{doc}\n{cases}").into(),
                None => doc.clone().into(),
            };
        }
        schema
    }

    /// Schema of a value that may be omitted (a parameter or record field):
    /// an option's inner type, since omission already means `none`.
    fn member_schema(&self) -> Value {
        match &self.kind {
            Kind::Option(inner) => {
                let mut s = inner.schema();
                if let (Some(doc), None) = (&self.doc, s.get("description")) {
                    s["description"] = doc.clone().into();
                }
                s
            }
            _ => self.schema(),
        }
    }
}

fn named_cases<'a>(names: impl Iterator<Item = &'a str>, docs: &[Option<String>]) -> Vec<Case> {
    names
        .enumerate()
        .map(|(i, name)| Case {
            name: name.to_owned(),
            payload: None,
            doc: docs.get(i).cloned().flatten(),
        })
        .collect()
}

fn int_json(v: i128) -> Value {
    // Every bound fits i64 or u64.
    i64::try_from(v)
        .map(Value::from)
        .or_else(|_| u64::try_from(v).map(Value::from))
        .unwrap_or(Value::Null)
}

pub(super) fn quoted_names(cases: &[Case]) -> String {
    cases
        .iter()
        .map(|c| format!("\"{}\"", c.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn case_names(cases: &[Case]) -> Vec<&str> {
    cases.iter().map(|c| c.name.as_str()).collect()
}

/// "`a`: doc\n`b`: doc" for the cases that have docs, so models see them even
/// where a schema keyword for per-value docs is not supported.
fn case_docs<'a>(cases: impl IntoIterator<Item = &'a Case>) -> Option<String> {
    let lines: Vec<String> = cases
        .into_iter()
        .filter_map(|c| {
            c.doc
                .as_ref()
                .map(|d| format!("- `{}`: {}", c.name, d.replace('\n', " ")))
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn tagged(tag: &str, payload: Value, doc: Option<&str>) -> Value {
    let mut s = json!({
        "type": "object",
        "properties": { tag: payload },
        "required": [tag],
        "additionalProperties": false,
    });
    if let Some(doc) = doc {
        s["description"] = doc.into();
    }
    s
}

/// An object schema for named members (record fields or function parameters).
pub fn object_schema<'a>(
    members: impl Iterator<Item = (&'a str, &'a Shape, Option<&'a str>)>,
) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, shape, doc) in members {
        let mut s = shape.member_schema();
        if let Some(doc) = doc {
            s["description"] = match s.get("description").and_then(Value::as_str) {
                Some(type_doc) if type_doc != doc => format!("{doc}\n{type_doc}").into(),
                _ => doc.into(),
            };
        }
        if !shape.is_optional() {
            required.push(Value::from(name));
        }
        properties.insert(name.to_owned(), s);
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(kind: Kind) -> Shape {
        Shape::plain(kind)
    }

    #[test]
    fn integers_carry_exact_bounds() {
        assert_eq!(
            s(Kind::Int(IntKind::U8)).schema(),
            json!({"type": "integer", "minimum": 0, "maximum": 255})
        );
        assert_eq!(
            s(Kind::Int(IntKind::S64)).schema(),
            json!({"type": "integer", "minimum": i64::MIN, "maximum": i64::MAX})
        );
        assert_eq!(
            s(Kind::Int(IntKind::U64)).schema()["maximum"],
            json!(u64::MAX)
        );
    }

    #[test]
    fn optional_members_are_not_required() {
        let name = s(Kind::String);
        let title = s(Kind::Option(Box::new(s(Kind::String))));
        let schema =
            object_schema([("name", &name, Some("Who.")), ("title", &title, None)].into_iter());
        assert_eq!(schema["required"], json!(["name"]));
        assert_eq!(schema["properties"]["title"], json!({"type": "string"}));
        assert_eq!(schema["properties"]["name"]["description"], "Who.");
        assert_eq!(schema["additionalProperties"], json!(false));
    }

    #[test]
    fn nested_option_spells_out_null() {
        let list = s(Kind::List(Box::new(s(Kind::Option(Box::new(s(
            Kind::Bool,
        )))))));
        assert_eq!(
            list.schema()["items"],
            json!({"anyOf": [{"type": "boolean"}, {"type": "null"}]})
        );
    }

    #[test]
    fn variants_mix_bare_and_tagged_cases() {
        let v = s(Kind::Variant(vec![
            Case {
                name: "point".into(),
                payload: None,
                doc: Some("A dot.".into()),
            },
            Case {
                name: "circle".into(),
                payload: Some(s(Kind::F64)),
                doc: None,
            },
        ]));
        let schema = v.schema();
        assert_eq!(schema["oneOf"][0]["enum"], json!(["point"]));
        assert_eq!(schema["oneOf"][0]["description"], "- `point`: A dot.");
        assert_eq!(schema["oneOf"][1]["required"], json!(["circle"]));
        assert_eq!(v.expected(), "one of \"point\", {\"circle\": ...}");
    }

    #[test]
    fn tuples_have_fixed_length() {
        let t = s(Kind::Tuple(vec![
            s(Kind::Int(IntKind::U8)),
            s(Kind::String),
        ]));
        let schema = t.schema();
        assert_eq!(schema["minItems"], 2);
        assert_eq!(schema["maxItems"], 2);
        assert_eq!(schema["items"], json!(false));
    }

    #[test]
    fn lift_cost_ratio_is_high_for_short_flags_and_low_for_plain_data() {
        let flags = s(Kind::Flags(
            (0..32)
                .map(|i| Case {
                    name: char::from(b'a' + (i % 26) as u8).to_string(),
                    payload: None,
                    doc: None,
                })
                .collect(),
        ));
        let list_of_flags = s(Kind::List(Box::new(flags)));
        assert!(list_of_flags.lift_cost_ratio() > 25.0);
        let strings = s(Kind::List(Box::new(s(Kind::String))));
        assert!(
            strings.lift_cost_ratio() < 2.0,
            "{}",
            strings.lift_cost_ratio()
        );
        assert_eq!(s(Kind::F64).lift_cost_ratio(), 1.0);
    }

    #[test]
    fn flags_are_unique_names() {
        let f = s(Kind::Flags(vec![
            Case {
                name: "read".into(),
                payload: None,
                doc: None,
            },
            Case {
                name: "write".into(),
                payload: None,
                doc: None,
            },
        ]));
        assert_eq!(
            f.schema(),
            json!({"type": "array", "items": {"type": "string", "enum": ["read", "write"]}, "uniqueItems": true})
        );
    }
}
