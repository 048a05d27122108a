//! The exporter's configuration, read only from the standard `OTEL_*` variables
//! (<https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>).

use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::Sampler;
use opentelemetry_sdk::Resource;

use crate::TelemetryError;

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`, the specification's default).
    HttpProtobuf,
    /// OTLP/gRPC (`grpc`).
    Grpc,
}

/// Where and how to export, and which traces.
#[derive(Debug, Clone)]
pub struct Config {
    pub protocol: Protocol,
    /// The full URL: `…/v1/traces` for HTTP, the server's for gRPC.
    pub endpoint: String,
    pub timeout: Duration,
    pub sampler: Sampler,
    pub resource: Resource,
}

impl Config {
    /// The configuration the process's environment gives; `None` when it asks for no traces.
    pub fn from_env() -> Result<Option<Config>, TelemetryError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// The configuration given by `lookup` (a variable's value by name), so that tests and
    /// embedders need not touch the process's environment.
    ///
    /// Traces are on when an OTLP endpoint is named (`OTEL_EXPORTER_OTLP_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or `OTEL_TRACES_EXPORTER=otlp`; off when nothing is
    /// set, with `OTEL_TRACES_EXPORTER=none` or with `OTEL_SDK_DISABLED=true`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Config>, TelemetryError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        let signal_endpoint = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT");
        match get("OTEL_TRACES_EXPORTER").as_deref() {
            Some("none") => return Ok(None),
            Some("otlp") => {}
            Some(other) => {
                return Err(TelemetryError::Config {
                    variable: "OTEL_TRACES_EXPORTER",
                    message: format!("`{other}` is not supported: `otlp` or `none`"),
                })
            }
            None if signal_endpoint.is_none() && endpoint.is_none() => return Ok(None),
            None => {}
        }
        let (protocol_variable, protocol) = match get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") {
            Some(p) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", p),
            None => ("OTEL_EXPORTER_OTLP_PROTOCOL", get("OTEL_EXPORTER_OTLP_PROTOCOL").unwrap_or_default()),
        };
        let protocol = match protocol.as_str() {
            "" | "http/protobuf" => Protocol::HttpProtobuf,
            "grpc" => Protocol::Grpc,
            other => {
                return Err(TelemetryError::Config {
                    variable: protocol_variable,
                    message: format!("`{other}` is not supported: `http/protobuf` or `grpc`"),
                })
            }
        };
        // The signal's own endpoint is used as written; the general one gets the signal's path
        // under HTTP (the specification's rule).
        let endpoint = match (signal_endpoint, endpoint, protocol) {
            (Some(url), _, _) => url,
            (None, Some(base), Protocol::HttpProtobuf) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, Some(base), Protocol::Grpc) => base,
            (None, None, Protocol::HttpProtobuf) => "http://localhost:4318/v1/traces".to_string(),
            (None, None, Protocol::Grpc) => "http://localhost:4317".to_string(),
        };
        let timeout = match get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT").or_else(|| get("OTEL_EXPORTER_OTLP_TIMEOUT")) {
            None => Duration::from_secs(10),
            Some(ms) => Duration::from_millis(ms.parse().map_err(|_| TelemetryError::Config {
                variable: "OTEL_EXPORTER_OTLP_TIMEOUT",
                message: format!("`{ms}` is not a number of milliseconds"),
            })?),
        };
        Ok(Some(Config {
            protocol,
            endpoint,
            timeout,
            sampler: sampler(get("OTEL_TRACES_SAMPLER"), get("OTEL_TRACES_SAMPLER_ARG"))?,
            resource: resource(get("OTEL_SERVICE_NAME"), get("OTEL_RESOURCE_ATTRIBUTES")),
        }))
    }
}

/// `OTEL_TRACES_SAMPLER`: a case's trace is kept or dropped whole, decided on its trace id
/// (which the case id gives), so every process exporting the case decides alike.
fn sampler(name: Option<String>, arg: Option<String>) -> Result<Sampler, TelemetryError> {
    let ratio = || -> Result<f64, TelemetryError> {
        match &arg {
            None => Ok(1.0),
            Some(arg) => {
                arg.parse::<f64>().ok().filter(|r| (0.0..=1.0).contains(r)).ok_or_else(|| TelemetryError::Config {
                    variable: "OTEL_TRACES_SAMPLER_ARG",
                    message: format!("`{arg}` is not a ratio from 0 to 1"),
                })
            }
        }
    };
    // A case span is a root: the parent-based samplers decide as their root sampler does.
    Ok(match name.as_deref() {
        None | Some("always_on") | Some("parentbased_always_on") => Sampler::AlwaysOn,
        Some("always_off") | Some("parentbased_always_off") => Sampler::AlwaysOff,
        Some("traceidratio") | Some("parentbased_traceidratio") => Sampler::TraceIdRatioBased(ratio()?),
        Some(other) => {
            return Err(TelemetryError::Config {
                variable: "OTEL_TRACES_SAMPLER",
                message: format!(
                    "`{other}` is not supported: always_on, always_off, traceidratio or their parentbased_ forms"
                ),
            })
        }
    })
}

/// The service's resource: `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME` (default
/// `onetrip`), the service version and the SDK's own attributes.
fn resource(service: Option<String>, attributes: Option<String>) -> Resource {
    let pairs: Vec<KeyValue> = attributes
        .iter()
        .flat_map(|a| a.split(','))
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| KeyValue::new(k.trim().to_string(), v.trim().to_string()))
        .filter(|kv| !kv.key.as_str().is_empty())
        .collect();
    let named = pairs.iter().find(|kv| kv.key.as_str() == "service.name").map(|kv| kv.value.to_string());
    let service = service.or(named).unwrap_or_else(|| "onetrip".to_string());
    Resource::builder_empty()
        .with_detector(Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector))
        .with_attributes(pairs)
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .with_service_name(service)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(variables: &[(&str, &str)]) -> Result<Option<Config>, TelemetryError> {
        Config::from_lookup(|name| variables.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string()))
    }

    fn on(variables: &[(&str, &str)]) -> Config {
        config(variables).expect("valid").expect("on")
    }

    #[test]
    fn off_unless_an_endpoint_or_the_exporter_is_named() {
        assert!(config(&[]).expect("valid").is_none());
        assert!(config(&[("OTEL_SERVICE_NAME", "x")]).expect("valid").is_none());
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert!(config(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]).expect("valid").is_none());
        assert!(config(&[endpoint, ("OTEL_SDK_DISABLED", "true")]).expect("valid").is_none());
        assert_eq!(on(&[("OTEL_TRACES_EXPORTER", "otlp")]).endpoint, "http://localhost:4318/v1/traces");
    }

    #[test]
    fn endpoints_follow_the_specification() {
        let http = on(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")]);
        assert_eq!(
            (http.protocol, http.endpoint.as_str()),
            (Protocol::HttpProtobuf, "http://collector:4318/v1/traces")
        );
        let signal = on(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:9999/custom"),
        ]);
        assert_eq!(signal.endpoint, "http://traces:9999/custom");
        let grpc =
            on(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert_eq!((grpc.protocol, grpc.endpoint.as_str()), (Protocol::Grpc, "http://collector:4317"));
        let grpc_default = on(&[("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")]);
        assert_eq!(grpc_default.endpoint, "http://localhost:4317");
        let timeout = on(&[("OTEL_TRACES_EXPORTER", "otlp"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500")]);
        assert_eq!(timeout.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn what_is_not_supported_is_named() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        for (variables, named) in [
            (vec![endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")], "OTEL_EXPORTER_OTLP_PROTOCOL"),
            (vec![("OTEL_TRACES_EXPORTER", "zipkin")], "OTEL_TRACES_EXPORTER"),
            (vec![endpoint, ("OTEL_TRACES_SAMPLER", "xray")], "OTEL_TRACES_SAMPLER"),
            (
                vec![endpoint, ("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "2")],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (vec![endpoint, ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon")], "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ] {
            match config(&variables) {
                Err(TelemetryError::Config { variable, .. }) => assert_eq!(variable, named),
                other => panic!("{variables:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn samplers_and_the_resource() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        let ratio =
            on(&[endpoint, ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")]);
        assert!(matches!(ratio.sampler, Sampler::TraceIdRatioBased(r) if r == 0.25));
        assert!(matches!(on(&[endpoint, ("OTEL_TRACES_SAMPLER", "always_off")]).sampler, Sampler::AlwaysOff));
        let named = |c: &Config| c.resource.get(&opentelemetry::Key::new("service.name")).map(|v| v.to_string());
        assert_eq!(named(&on(&[endpoint])).as_deref(), Some("onetrip"));
        assert_eq!(named(&on(&[endpoint, ("OTEL_SERVICE_NAME", "onetrip-zj")])).as_deref(), Some("onetrip-zj"));
        let attributes = on(&[endpoint, ("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attributes,region=zj")]);
        assert_eq!(named(&attributes).as_deref(), Some("from-attributes"));
        let region = attributes.resource.get(&opentelemetry::Key::new("region")).map(|v| v.to_string());
        assert_eq!(region.as_deref(), Some("zj"));
    }
}
