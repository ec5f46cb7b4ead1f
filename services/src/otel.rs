//! One trace across the pipeline: the W3C trace context carried by HTTP headers and Kafka
//! record headers (`traceparent`, `tracestate`, as the Strimzi Bridge's OpenTelemetry
//! instrumentation writes them), and each service's spans sent to an OTLP endpoint.
//!
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (OTLP over HTTP, e.g. Jaeger's `http://jaeger:4318`) turns
//! exporting on; without it a service still passes the context it received on, unchanged,
//! so a trace started upstream is not cut by a hop that does not report.

use std::collections::HashMap;

use anyhow::{Context as _, Result};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanKind, TraceContextExt, Tracer as _, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;

/// The environment variable naming the OTLP/HTTP endpoint.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// A service's tracer: spans exported when an endpoint is configured.
pub struct Tracing {
    exporting: Option<(SdkTracerProvider, SdkTracer)>,
    propagator: TraceContextPropagator,
}

impl Tracing {
    /// [`from_env`](Self::from_env) off the async runtime: the exporter's blocking HTTP
    /// client must be made (and dropped, [`close`](Self::close)) outside it.
    pub async fn start_for(service: &str) -> Result<Self> {
        let service = service.to_string();
        tokio::task::spawn_blocking(move || Self::from_env(&service)).await?
    }

    /// Tracing for `service` (the spans' `service.name`), exporting to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set.
    pub fn from_env(service: &str) -> Result<Self> {
        let endpoint = std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty());
        let exporting = match endpoint {
            None => None,
            Some(endpoint) => {
                let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
                let exporter = SpanExporter::builder()
                    .with_http()
                    .with_endpoint(&url)
                    .build()
                    .with_context(|| format!("the OTLP exporter to {url}"))?;
                let resource = Resource::builder()
                    .with_service_name(service.to_string())
                    .build();
                let provider = SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build();
                let tracer = provider.tracer("kiosk");
                Some((provider, tracer))
            }
        };
        Ok(Tracing {
            exporting,
            propagator: TraceContextPropagator::new(),
        })
    }

    /// Propagation only: contexts are read and passed on, no span is made or exported.
    pub fn disabled() -> Self {
        Tracing {
            exporting: None,
            propagator: TraceContextPropagator::new(),
        }
    }

    /// A span named `name` of `kind`, child of `parent` (a new trace when `parent` has
    /// none): the context to pass on, and to [`end`](Self::end). Without an endpoint, the
    /// parent itself.
    pub fn start(
        &self,
        name: &str,
        kind: SpanKind,
        parent: &Context,
        attributes: Vec<KeyValue>,
    ) -> Context {
        let Some((_, tracer)) = &self.exporting else {
            return parent.clone();
        };
        let span = tracer
            .span_builder(name.to_string())
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        parent.with_span(span)
    }

    /// End the span `start` put in `cx` (nothing without an endpoint).
    pub fn end(&self, cx: &Context) {
        if self.exporting.is_some() {
            cx.span().end();
        }
    }

    /// The context carried by `headers` (name, value), empty when they carry none.
    pub fn extract<'a>(&self, headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Context {
        let carrier: HashMap<String, String> = headers
            .into_iter()
            .filter_map(|(k, v)| {
                Some((
                    k.to_ascii_lowercase(),
                    std::str::from_utf8(v).ok()?.to_string(),
                ))
            })
            .collect();
        self.propagator.extract(&Carrier(carrier))
    }

    /// The headers that carry `cx` on (`traceparent`, and `tracestate` when set); none when
    /// it holds no trace.
    pub fn inject(&self, cx: &Context) -> Vec<(String, String)> {
        let mut carrier = Carrier(HashMap::new());
        self.propagator.inject_context(cx, &mut carrier);
        let mut headers: Vec<_> = carrier
            .0
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        headers.sort();
        headers
    }

    /// [`shutdown`](Self::shutdown) off the async runtime.
    pub async fn close(self) {
        let _ = tokio::task::spawn_blocking(move || self.shutdown()).await;
    }

    /// Send what is left and stop exporting: call before the process exits.
    pub fn shutdown(self) {
        if let Some((provider, _)) = self.exporting {
            if let Err(e) = provider.shutdown() {
                tracing::warn!("spans not all exported: {e}");
            }
        }
    }
}

/// The trace id of `cx` as the 32 hex digits Jaeger shows, if it holds a trace.
pub fn trace_id(cx: &Context) -> Option<String> {
    let span_context = cx.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// One span of a trace as Jaeger's query API (`GET /api/traces/<id>`) returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceSpan {
    /// The reporting service (`service.name`; Envoy's is `<workload>.<namespace>`).
    pub service: String,
    pub operation: String,
    /// Microseconds since the epoch.
    pub start_us: u64,
    pub duration_us: u64,
    pub span_id: String,
    /// The parent span, if any.
    pub parent: Option<String>,
}

/// The spans of the first trace in a Jaeger query answer, ordered by start time.
pub fn jaeger_trace_spans(answer: &serde_json::Value) -> Vec<TraceSpan> {
    let data = &answer["data"][0];
    let processes = &data["processes"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let mut spans: Vec<TraceSpan> = data["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| TraceSpan {
            service: s["processID"]
                .as_str()
                .map_or_else(String::new, |p| text(&processes[p]["serviceName"])),
            operation: text(&s["operationName"]),
            start_us: s["startTime"].as_u64().unwrap_or_default(),
            duration_us: s["duration"].as_u64().unwrap_or_default(),
            span_id: text(&s["spanID"]),
            parent: s["references"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|r| r["refType"] == "CHILD_OF")
                .map(|r| text(&r["spanID"])),
        })
        .collect();
    spans.sort_by_key(|s| s.start_us);
    spans
}

struct Carrier(HashMap<String, String>);

impl Injector for Carrier {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
}

impl Extractor for Carrier {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_passes_through_a_hop_that_does_not_export() {
        let tracing = Tracing::disabled();
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let cx = tracing.extract([("Traceparent", parent.as_bytes())]);
        assert_eq!(
            trace_id(&cx).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        let cx = tracing.start("mirror", SpanKind::Consumer, &cx, Vec::new());
        tracing.end(&cx);
        assert_eq!(
            tracing.inject(&cx),
            vec![("traceparent".to_string(), parent.to_string())]
        );
        // No context in, none out.
        let none = tracing.extract([("kiosk-seq", &b"1"[..])]);
        assert_eq!(trace_id(&none), None);
        assert!(tracing.inject(&none).is_empty());
        // A malformed header is no context, not an error.
        let bad = tracing.extract([("traceparent", &b"00-zz-11-01"[..])]);
        assert_eq!(trace_id(&bad), None);
    }
}
