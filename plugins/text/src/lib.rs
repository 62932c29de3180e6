//! The `text` tool plugin: statistics, transformations, splitting, search, slugs and
//! word frequencies.
//!
//! Its WIT signatures deliberately use every kind of WIT type (records, enums,
//! variants with and without payloads, options, lists, flags and tuples), so it also
//! exercises the host's JSON-schema derivation end to end. The logic lives in [`ops`]
//! and is unit-tested natively; this file only binds it to the component's world.

mod ops;

wit_bindgen::generate!({ path: "wit", world: "text", generate_all });

struct Component;

impl Guest for Component {
    fn stats(text: String) -> Result<TextStats, String> {
        ops::stats(&text)
    }

    fn transform(text: String, steps: Vec<TransformOp>) -> Result<String, String> {
        ops::transform(&text, &steps)
    }

    fn split(text: String, by: Separator, limit: Option<u32>) -> Result<Vec<String>, String> {
        ops::split(&text, &by, limit)
    }

    fn find(
        text: String,
        pattern: String,
        options: MatchOptions,
        max_results: Option<u32>,
    ) -> Result<FindResult, String> {
        ops::find(&text, &pattern, options, max_results)
    }

    fn slugify(text: String, max_length: Option<u32>) -> Result<String, String> {
        ops::slugify(&text, max_length)
    }

    fn count_words(text: String, top: Option<u32>) -> Result<Vec<(String, u32)>, String> {
        ops::count_words(&text, top)
    }
}

export!(Component);
