//! The `{{name}}` Launch plugin: each function exported by the world in
//! `wit/world.wit` is a tool; the descriptions the model reads are the `///`
//! comments there.

wit_bindgen::generate!({ path: "wit", world: "{{name}}", generate_all });

struct Plugin;

impl Guest for Plugin {
    fn greet(name: String, times: Option<u8>) -> Result<String, String> {
        // An `Err` is a tool error: the model sees the message and can retry.
        if name.trim().is_empty() {
            return Err("name is empty; pass the name of the person to greet".into());
        }
        let times = times.unwrap_or(1);
        if !(1..=10).contains(&times) {
            return Err(format!("times must be between 1 and 10, got {times}"));
        }
        Ok(vec![format!("Hello, {name}!"); usize::from(times)].join(" "))
    }
}

export!(Plugin);
