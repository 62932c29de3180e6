//! The `calculator` tool plugin: evaluates arithmetic expressions.
//!
//! The parser and evaluator live in [`eval`] and are plain Rust, unit-tested natively;
//! this file only binds them to the component's WIT world.

mod eval;

wit_bindgen::generate!({ path: "wit", world: "calculator", generate_all });

struct Component;

impl Guest for Component {
    fn evaluate(expression: String) -> Result<f64, String> {
        eval::evaluate(&expression)
    }
}

export!(Component);
