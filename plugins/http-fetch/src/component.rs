//! The component glue: WIT bindings and conversions to [`crate::fetch`].

// The generated export glue passes flattened records as many arguments.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({ path: "wit", world: "http-fetch", generate_all });

use launch::plugin::log::{self, Level};

use crate::fetch::{self, Method, Plan};
use crate::transport::WasiTransport;

struct Component;

impl Guest for Component {
    fn fetch(url: String, options: Option<FetchOptions>) -> Result<FetchResponse, String> {
        let options = match options {
            None => fetch::Options::default(),
            Some(o) => fetch::Options {
                method: match o.method.unwrap_or(HttpMethod::Get) {
                    HttpMethod::Get => Method::Get,
                    HttpMethod::Head => Method::Head,
                    HttpMethod::Post => Method::Post,
                    HttpMethod::Put => Method::Put,
                    HttpMethod::Delete => Method::Delete,
                    HttpMethod::Patch => Method::Patch,
                },
                headers: o.headers.unwrap_or_default(),
                body: o.body,
                max_bytes: o.max_bytes,
                timeout_ms: o.timeout_ms,
            },
        };
        let plan = Plan::new(&url, options)?;
        let method = plan.request().method.as_str();
        let target = plan.request().url.to_string();
        let mut transport = WasiTransport::new(plan.timeout_ms);
        let result = plan.run(&mut transport);
        let fields = |outcome: &str| {
            vec![
                ("method".to_string(), method.to_string()),
                ("url".to_string(), target.clone()),
                ("outcome".to_string(), outcome.to_string()),
            ]
        };
        match &result {
            Ok(out) => log::log(Level::Debug, "fetched", &fields(&out.status.to_string())),
            Err(message) => log::log(Level::Info, "fetch failed", &fields(message)),
        }
        let out = result?;
        Ok(FetchResponse {
            status: out.status,
            headers: out.headers,
            body: out.body,
            truncated: out.truncated,
            final_url: out.final_url,
        })
    }
}

export!(Component with_types_in self);
