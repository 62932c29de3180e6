//! Logging and tracing: human-readable logs on stderr (filtered by
//! `LAUNCH_LOG`), plus optional export of the spans (turn, LLM call, tool
//! call) to an OpenTelemetry collector over OTLP/HTTP.

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the exporter alive; dropping it flushes the spans still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Installs the global subscriber. `otlp_endpoint` (e.g.
    /// `http://localhost:4318/v1/traces`) turns span export on.
    pub fn init(default_level: &str, otlp_endpoint: Option<&str>) -> Result<Self> {
        let filter =
            EnvFilter::try_from_env("LAUNCH_LOG").unwrap_or_else(|_| EnvFilter::new(default_level));
        // Colours only for a terminal: log files and collectors get plain text.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_filter(filter);
        let Some(endpoint) = otlp_endpoint else {
            tracing_subscriber::registry()
                .with(logs)
                .try_init()
                .context("cannot install the logger")?;
            return Ok(Self { provider: None });
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .build()
            .with_context(|| format!("cannot set up OTLP export to {endpoint}"))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name("launch")
                    .build(),
            )
            .build();
        // Spans only at info and above go out: the turn, LLM calls and tool calls.
        let spans = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("launch"))
            .with_filter(EnvFilter::new("info"));
        tracing_subscriber::registry()
            .with(logs)
            .with(spans)
            .try_init()
            .context("cannot install the logger")?;
        Ok(Self {
            provider: Some(provider),
        })
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: could not flush spans to the OTLP collector: {e}");
        }
    }
}
