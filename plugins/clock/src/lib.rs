//! The `clock` tool plugin: current time, time-zone conversion and date arithmetic.
//!
//! The logic lives in [`time`] and is unit-tested natively; this file only binds it
//! to the component's WIT world. The current time comes from the WASI wall clock
//! (through `std::time::SystemTime`) and time zones from the IANA database compiled
//! into the component, so the plugin needs no capabilities.

// The bindings generated for `add` (whose `duration` record flattens into many core
// wasm parameters) trip this lint; it cannot be allowed on the macro call alone.
#![allow(clippy::too_many_arguments)]

mod time;

wit_bindgen::generate!({ path: "wit", world: "clock", generate_all });

struct Component;

impl Guest for Component {
    fn now(time_zone: Option<String>) -> Result<TimeInfo, String> {
        time::now(time_zone.as_deref())
    }

    fn convert(
        timestamp: String,
        to_zone: String,
        from_zone: Option<String>,
    ) -> Result<TimeInfo, String> {
        time::convert(&timestamp, &to_zone, from_zone.as_deref())
    }

    fn add(
        timestamp: String,
        duration: Duration,
        time_zone: Option<String>,
    ) -> Result<TimeInfo, String> {
        time::add(&timestamp, &duration, time_zone.as_deref())
    }

    fn difference(
        from: String,
        to: String,
        unit: TimeUnit,
        time_zone: Option<String>,
    ) -> Result<TimeDifference, String> {
        time::difference(&from, &to, unit, time_zone.as_deref())
    }
}

export!(Component);
