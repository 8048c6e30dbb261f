//! Telemetry configuration: from the standard `OTEL_*` environment variables, or built
//! explicitly (tests, hosts that configure in code).

use std::time::Duration;

use thiserror::Error;

/// Why a telemetry configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// The endpoint is not `http://host[:port][/path]` (only plain HTTP is supported).
    #[error("unsupported OTLP endpoint {0:?}: expected http://host[:port][/path]")]
    BadEndpoint(String),
    /// `OTEL_TRACES_SAMPLER` names a sampler this exporter does not implement.
    #[error("unsupported OTEL_TRACES_SAMPLER {0:?}")]
    BadSampler(String),
    /// `OTEL_TRACES_SAMPLER_ARG` is not a number in [0, 1].
    #[error("OTEL_TRACES_SAMPLER_ARG {0:?} is not a ratio in [0, 1]")]
    BadSamplerArg(String),
    /// An interval variable (`OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_BSP_SCHEDULE_DELAY`) is
    /// not a whole number of milliseconds from 1 to 86,400,000 (one day).
    #[error("{name} {value:?} is not a whole number of milliseconds in 1..=86400000")]
    BadInterval {
        /// The variable.
        name: &'static str,
        /// What it held.
        value: String,
    },
}

/// Which events carry a trace, besides every event that breaks a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sampler {
    /// No sampled traces (budget breakers are still traced).
    Off,
    /// Every event.
    All,
    /// One event in `n` (`n` ≥ 1), counted per recorder.
    OneIn(u32),
}

impl Sampler {
    /// The sampler for a `traceidratio` argument: ratio `r` becomes one in `round(1/r)`.
    pub fn from_ratio(r: f64) -> Sampler {
        if r <= 0.0 {
            Sampler::Off
        } else if r >= 1.0 {
            Sampler::All
        } else {
            Sampler::OneIn((1.0 / r).round().clamp(1.0, u32::MAX as f64) as u32)
        }
    }

    /// The `n` of "one in `n`" (0 for `Off`).
    pub fn one_in(&self) -> u32 {
        match *self {
            Sampler::Off => 0,
            Sampler::All => 1,
            Sampler::OneIn(n) => n.max(1),
        }
    }
}

/// Where the collector is: host, port and the base path the signal paths are appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port (4318, the OTLP/HTTP default, when the URL names none).
    pub port: u16,
    /// Base path without a trailing slash (often empty).
    pub base_path: String,
}

impl Endpoint {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Endpoint, ConfigError> {
        let bad = || ConfigError::BadEndpoint(url.to_string());
        let rest = url.trim().strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority.ends_with(']') => {
                let port = authority[i + 1..].parse::<u16>().map_err(|_| bad())?;
                (&authority[..i], port)
            }
            _ => (authority, 4318),
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }

    /// The request path of one signal (`"traces"` or `"metrics"`): `<base>/v1/<signal>`.
    pub fn path(&self, signal: &str) -> String {
        format!("{}/v1/{}", self.base_path, signal)
    }
}

/// Everything the exporter needs. `endpoint: None` means telemetry is off.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryConfig {
    /// The collector; `None` turns telemetry off.
    pub endpoint: Option<Endpoint>,
    /// `service.name` resource attribute.
    pub service_name: String,
    /// Trace sampling (budget breakers are always traced).
    pub sampler: Sampler,
    /// Slots in each trace ring between a recorder and the exporter.
    pub trace_queue: usize,
    /// Slots in the metrics-snapshot queue.
    pub metrics_queue: usize,
    /// Most traces the exporter holds while the collector is down; older ones beyond this
    /// are dropped (counted).
    pub max_pending: usize,
    /// Most traces in one export request.
    pub batch_size: usize,
    /// How often pending traces are exported when the batch is not full.
    pub export_interval: Duration,
    /// How often metrics are exported.
    pub metrics_interval: Duration,
    /// First retry delay after a failed export; doubled per failure.
    pub backoff_initial: Duration,
    /// Cap of the retry delay.
    pub backoff_max: Duration,
    /// Connect, write and read timeout of one HTTP request.
    pub request_timeout: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            endpoint: None,
            service_name: "ebbflow".to_string(),
            sampler: Sampler::OneIn(1000),
            trace_queue: 1024,
            metrics_queue: 16,
            max_pending: 8192,
            batch_size: 512,
            export_interval: Duration::from_secs(1),
            metrics_interval: Duration::from_secs(10),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            request_timeout: Duration::from_secs(2),
        }
    }
}

impl TelemetryConfig {
    /// Reads the process environment; see [`TelemetryConfig::from_vars`].
    pub fn from_env() -> Result<TelemetryConfig, ConfigError> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// Reads configuration through `get` (a variable lookup):
    /// * `OTEL_SDK_DISABLED=true` or no/empty `OTEL_EXPORTER_OTLP_ENDPOINT`: off.
    /// * `OTEL_SERVICE_NAME`: `service.name` (default `ebbflow`).
    /// * `OTEL_TRACES_SAMPLER`: `always_on`, `always_off`, `traceidratio` and their
    ///   `parentbased_` forms (there is no parent here, so they act the same);
    ///   `OTEL_TRACES_SAMPLER_ARG` is the ratio (default 0.001, i.e. one in 1000).
    /// * `OTEL_METRIC_EXPORT_INTERVAL`: milliseconds between metrics exports (default
    ///   10,000); `OTEL_BSP_SCHEDULE_DELAY`: milliseconds between trace exports when a
    ///   batch is not full (default 1,000).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<TelemetryConfig, ConfigError> {
        let mut cfg = TelemetryConfig::default();
        let disabled = get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim() == "true");
        cfg.endpoint = match get("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(url) if !url.trim().is_empty() && !disabled => Some(Endpoint::parse(&url)?),
            _ => None,
        };
        if let Some(name) = get("OTEL_SERVICE_NAME").filter(|n| !n.trim().is_empty()) {
            cfg.service_name = name.trim().to_string();
        }
        let ratio = match get("OTEL_TRACES_SAMPLER_ARG") {
            Some(arg) => {
                let r: f64 = arg
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError::BadSamplerArg(arg.clone()))?;
                if !(0.0..=1.0).contains(&r) {
                    return Err(ConfigError::BadSamplerArg(arg));
                }
                r
            }
            None => 0.001,
        };
        if let Some(s) = get("OTEL_TRACES_SAMPLER") {
            let s = s.trim().to_ascii_lowercase();
            let name = s.strip_prefix("parentbased_").unwrap_or(&s);
            cfg.sampler = match name {
                "always_on" => Sampler::All,
                "always_off" => Sampler::Off,
                "traceidratio" => Sampler::from_ratio(ratio),
                _ => return Err(ConfigError::BadSampler(s)),
            };
        } else {
            cfg.sampler = Sampler::from_ratio(ratio);
        }
        let millis = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
            let Some(v) = get(name) else {
                return Ok(None);
            };
            match v.trim().parse::<u64>() {
                Ok(ms) if (1..=86_400_000).contains(&ms) => Ok(Some(Duration::from_millis(ms))),
                _ => Err(ConfigError::BadInterval { name, value: v }),
            }
        };
        if let Some(d) = millis("OTEL_METRIC_EXPORT_INTERVAL")? {
            cfg.metrics_interval = d;
        }
        if let Some(d) = millis("OTEL_BSP_SCHEDULE_DELAY")? {
            cfg.export_interval = d;
        }
        Ok(cfg)
    }

    /// A configuration exporting to `url`, with defaults otherwise (tests, code config).
    pub fn builder(url: &str) -> Result<TelemetryConfig, ConfigError> {
        Ok(TelemetryConfig {
            endpoint: Some(Endpoint::parse(url)?),
            ..TelemetryConfig::default()
        })
    }

    /// Sets `service.name`.
    pub fn service_name(mut self, name: &str) -> Self {
        self.service_name = name.to_string();
        self
    }

    /// Sets the sampler.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// Sets the slots of each trace ring.
    pub fn trace_queue(mut self, slots: usize) -> Self {
        self.trace_queue = slots.max(1);
        self
    }

    /// Sets how many traces the exporter keeps while the collector is down.
    pub fn max_pending(mut self, traces: usize) -> Self {
        self.max_pending = traces.max(1);
        self
    }

    /// Sets the most traces per request.
    pub fn batch_size(mut self, traces: usize) -> Self {
        self.batch_size = traces.max(1);
        self
    }

    /// Sets the trace and metrics export intervals.
    pub fn intervals(mut self, traces: Duration, metrics: Duration) -> Self {
        self.export_interval = traces;
        self.metrics_interval = metrics;
        self
    }

    /// Sets the retry backoff (first delay, cap).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max.max(initial);
        self
    }

    /// Sets the per-request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Whether an endpoint is configured.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn off_without_an_endpoint() {
        let cfg = TelemetryConfig::from_vars(vars(&[("OTEL_SERVICE_NAME", "x")])).unwrap();
        assert!(!cfg.enabled());
        assert_eq!(cfg.service_name, "x");
    }

    #[test]
    fn endpoint_service_and_ratio_sampler_are_read() {
        let cfg = TelemetryConfig::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4319/base/"),
            ("OTEL_SERVICE_NAME", "svc"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ]))
        .unwrap();
        let ep = cfg.endpoint.clone().unwrap();
        assert_eq!((ep.host.as_str(), ep.port), ("127.0.0.1", 4319));
        assert_eq!(ep.path("traces"), "/base/v1/traces");
        assert_eq!(cfg.service_name, "svc");
        assert_eq!(cfg.sampler, Sampler::OneIn(100));
    }

    #[test]
    fn default_port_and_disable_switch() {
        let ep = Endpoint::parse("http://collector").unwrap();
        assert_eq!(ep.port, 4318);
        assert_eq!(ep.path("metrics"), "/v1/metrics");
        let cfg = TelemetryConfig::from_vars(vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector"),
            ("OTEL_SDK_DISABLED", "true"),
        ]))
        .unwrap();
        assert!(!cfg.enabled());
    }

    #[test]
    fn bad_settings_get_specific_errors() {
        assert_eq!(
            Endpoint::parse("https://x:1"),
            Err(ConfigError::BadEndpoint("https://x:1".into()))
        );
        assert!(matches!(
            Endpoint::parse("http://x:notaport"),
            Err(ConfigError::BadEndpoint(_))
        ));
        assert_eq!(
            TelemetryConfig::from_vars(vars(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")])),
            Err(ConfigError::BadSampler("jaeger_remote".into()))
        );
        assert_eq!(
            TelemetryConfig::from_vars(vars(&[("OTEL_TRACES_SAMPLER_ARG", "2")])),
            Err(ConfigError::BadSamplerArg("2".into()))
        );
        assert_eq!(Sampler::from_ratio(0.0), Sampler::Off);
        assert_eq!(Sampler::from_ratio(1.0), Sampler::All);
        for bad in ["0", "-5", "1.5", "soon", "86400001"] {
            assert_eq!(
                TelemetryConfig::from_vars(vars(&[("OTEL_METRIC_EXPORT_INTERVAL", bad)])),
                Err(ConfigError::BadInterval {
                    name: "OTEL_METRIC_EXPORT_INTERVAL",
                    value: bad.into()
                })
            );
        }
    }

    #[test]
    fn export_intervals_come_from_the_standard_variables_in_milliseconds() {
        let cfg = TelemetryConfig::from_vars(vars(&[
            ("OTEL_METRIC_EXPORT_INTERVAL", "250"),
            ("OTEL_BSP_SCHEDULE_DELAY", " 40 "),
        ]))
        .unwrap();
        assert_eq!(cfg.metrics_interval, Duration::from_millis(250));
        assert_eq!(cfg.export_interval, Duration::from_millis(40));
        let defaults = TelemetryConfig::from_vars(vars(&[])).unwrap();
        assert_eq!(defaults.metrics_interval, Duration::from_secs(10));
        assert_eq!(defaults.export_interval, Duration::from_secs(1));
    }
}
