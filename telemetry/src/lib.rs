//! OpenTelemetry traces of cases: one trace per case, a span for the case, a child span per
//! item and a grandchild per step (task), each with its real start and end from the events.
//!
//! Spans are built from the committed event feed, beside the engine, never on the command
//! path: a command is never slowed or failed by exporting, and no span exists for a write
//! that did not commit. A span is emitted when what it covers ends (steps last days); trace
//! and span ids are digests of the case id (and item, step and the step's opening number), so
//! spans from any process, before or after a restart, join one trace. The exporter's place in
//! the feed is stored in the database and moves only after the collector accepted the spans,
//! so a restart resumes there: nothing is lost, and nothing is sent twice except what a crash
//! between the collector's answer and that write re-sends — with the same ids.
//!
//! Configured only by the `OTEL_*` variables ([`from_env`]); off, at no cost, when none is set.

mod config;
pub mod spans;

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use calendar::Calendar;
use dsl::CompiledFlow;
use engine::{Engine, EngineError, EventKind, FeedItem, Store, StoreError, Subscription};
use opentelemetry::trace::SpanKind;
use opentelemetry::InstrumentationScope;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

pub use config::{Config, Protocol};
pub use spans::Tracker;

/// The name under which the exporter's place in the feed is stored.
pub const CURSOR: &str = "opentelemetry";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{variable}: {message}")]
    Config { variable: &'static str, message: String },
    #[error("cannot set up the OTLP exporter: {0}")]
    Build(String),
    #[error("the collector did not take the spans: {0}")]
    Export(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The OTLP exporter the `OTEL_*` variables ask for, or `None` when they ask for none. Call it
/// inside a Tokio runtime: the exporter sends on it.
pub fn from_env() -> Result<Option<Exporter>, TelemetryError> {
    Config::from_env()?.map(Exporter::from_config).transpose()
}

/// Spans a batch holds at most before it is sent.
const MAX_BATCH: usize = 512;
/// How long the follower waits for more events before sending what it has.
const LINGER: Duration = Duration::from_millis(200);
/// Cases whose open spans are kept in memory; past that one is dropped and rebuilt from its
/// history when its next event comes.
const MAX_CASES: usize = 10_000;

/// Follows the event feed and exports the spans that end, through any SDK span exporter.
pub struct Exporter<E: SpanExporter = opentelemetry_otlp::SpanExporter> {
    exporter: E,
    sampler: Sampler,
    calendar: Arc<Calendar>,
    scope: InstrumentationScope,
    cursor: String,
    /// The last feed position handled, once read from the store.
    position: Option<i64>,
    flows: HashMap<String, Arc<CompiledFlow>>,
    cases: HashMap<String, Tracker>,
    pending: Vec<SpanData>,
}

impl Exporter {
    /// An OTLP exporter (HTTP/protobuf or gRPC) as `config` says.
    pub fn from_config(config: Config) -> Result<Exporter, TelemetryError> {
        let built = match config.protocol {
            Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(config.endpoint)
                .with_timeout(config.timeout)
                .build(),
            Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint)
                .with_timeout(config.timeout)
                .build(),
        };
        let exporter = built.map_err(|e| TelemetryError::Build(e.to_string()))?;
        Ok(Exporter::new(exporter, &config.resource, config.sampler))
    }
}

impl<E: SpanExporter> Exporter<E> {
    /// Exports through `exporter`, with the service's `resource`.
    pub fn new(mut exporter: E, resource: &Resource, sampler: Sampler) -> Exporter<E> {
        exporter.set_resource(resource);
        Exporter {
            exporter,
            sampler,
            calendar: Arc::new(Calendar::official()),
            scope: InstrumentationScope::builder("onetrip").with_version(env!("CARGO_PKG_VERSION")).build(),
            cursor: CURSOR.to_string(),
            position: None,
            flows: HashMap::new(),
            cases: HashMap::new(),
            pending: Vec::new(),
        }
    }

    /// The calendar working days are counted on (the official one by default).
    pub fn with_calendar(mut self, calendar: Arc<Calendar>) -> Exporter<E> {
        self.calendar = calendar;
        self
    }

    /// Another name for the stored cursor, for a second exporter on the same store.
    pub fn with_cursor(mut self, name: &str) -> Exporter<E> {
        self.cursor = name.to_string();
        self
    }

    /// Exports the spans of every event committed so far that this exporter has not handled,
    /// and stores its place. For a short-lived command before it exits, and for tests.
    /// Returns the number of spans sent.
    pub async fn catch_up<S: Store>(&mut self, engine: &Engine<S>) -> Result<usize, TelemetryError> {
        let mut position = self.start(engine).await?;
        let mut sent = self.flush(engine).await?;
        loop {
            let batch = engine.store().events_after(position, 500).await?;
            if batch.is_empty() {
                return Ok(sent);
            }
            for (at, case_id, event) in batch {
                position = at;
                self.handle(engine, FeedItem { position: at, case_id, event }).await?;
            }
            sent += self.flush(engine).await?;
        }
    }

    /// Follows the feed for ever, sending spans as they end. A collector that does not answer
    /// is tried again, with growing pauses, on the same batch: the feed waits, not the
    /// engine. Returns only on a store error.
    pub async fn run<S: Store, H: Deref<Target = Engine<S>> + Clone>(
        mut self,
        engine: H,
    ) -> Result<(), TelemetryError> {
        let from = self.start(&engine).await?;
        let mut feed = Subscription::new(engine.clone(), from);
        loop {
            let item = feed.next().await?;
            self.handle(&engine, item).await?;
            while self.pending.len() < MAX_BATCH {
                // `next` only changes the subscription once an answer is in: safe to cut short.
                match tokio::time::timeout(LINGER, feed.next()).await {
                    Ok(item) => self.handle(&engine, item?).await?,
                    Err(_) => break,
                }
            }
            let mut pause = Duration::from_millis(500);
            loop {
                match self.flush(&engine).await {
                    Ok(_) => break,
                    Err(TelemetryError::Export(_)) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_secs(30));
                    }
                    Err(other) => return Err(other),
                }
            }
        }
    }

    /// Flushes and shuts the exporter down.
    pub fn shutdown(&self) -> Result<(), TelemetryError> {
        self.exporter.shutdown().map_err(|e| TelemetryError::Export(e.to_string()))
    }

    async fn start<S: Store>(&mut self, engine: &Engine<S>) -> Result<i64, TelemetryError> {
        match self.position {
            Some(position) => Ok(position),
            None => {
                let position = engine.store().feed_cursor(&self.cursor).await?;
                self.position = Some(position);
                Ok(position)
            }
        }
    }

    /// Takes in one event of the feed; the spans it ends wait in `pending`.
    async fn handle<S: Store>(&mut self, engine: &Engine<S>, item: FeedItem) -> Result<(), TelemetryError> {
        let FeedItem { position, case_id, event } = item;
        self.position = Some(position);
        if matches!(event.kind, EventKind::Rated { .. }) {
            // Comes after the case's spans are out: not worth a read of the case.
            return Ok(());
        }
        if !self.cases.contains_key(&case_id) {
            let mut tracker = Tracker::new(&case_id);
            if !matches!(event.kind, EventKind::Submitted { .. }) {
                // Not seen from its start (a restart, or dropped for room): what came before
                // this event, from the store, exactly as far as the feed had got.
                let earlier = engine.store().history_until(&case_id, position - 1).await?;
                let Some(first) = earlier.first() else { return Ok(()) };
                let EventKind::Submitted { version, .. } = &first.kind else { return Ok(()) };
                let flow = self.flow(engine, version).await?;
                let cx = spans::Context { flow: &flow, calendar: &self.calendar, scope: &self.scope };
                for earlier in &earlier {
                    tracker.apply(&cx, earlier);
                }
            }
            if self.cases.len() >= MAX_CASES {
                let victim = self.cases.keys().next().cloned();
                if let Some(victim) = victim {
                    self.cases.remove(&victim);
                }
            }
            self.cases.insert(case_id.clone(), tracker);
        }
        let version = match (&event.kind, self.cases.get(&case_id).and_then(|t| t.version.clone())) {
            (EventKind::Submitted { version, .. }, _) => version.clone(),
            (_, Some(version)) => version,
            // A history without its submission: nothing to build spans from.
            (_, None) => return Ok(()),
        };
        let flow = self.flow(engine, &version).await?;
        let cx = spans::Context { flow: &flow, calendar: &self.calendar, scope: &self.scope };
        let Some(tracker) = self.cases.get_mut(&case_id) else { return Ok(()) };
        let ended = tracker.apply(&cx, &event);
        if tracker.ended() {
            self.cases.remove(&case_id);
        }
        if !ended.is_empty() && self.sampled(&case_id) {
            self.pending.extend(ended);
        }
        Ok(())
    }

    /// Whether the case's trace is kept: one decision per trace, on its id.
    fn sampled(&self, case_id: &str) -> bool {
        let decision =
            self.sampler.should_sample(None, spans::trace_id(case_id), "case", &SpanKind::Internal, &[], &[]).decision;
        decision == SamplingDecision::RecordAndSample
    }

    async fn flow<S: Store>(&mut self, engine: &Engine<S>, version: &str) -> Result<Arc<CompiledFlow>, TelemetryError> {
        if let Some(flow) = self.flows.get(version) {
            return Ok(Arc::clone(flow));
        }
        let flow = engine
            .store()
            .flow(version)
            .await?
            .ok_or_else(|| TelemetryError::Store(StoreError::Corrupt(format!("no flow version {version}"))))?;
        let flow = Arc::new(flow);
        self.flows.insert(version.to_string(), Arc::clone(&flow));
        Ok(flow)
    }

    /// Sends the pending spans, then stores the place in the feed: only what the collector took
    /// is behind the cursor.
    async fn flush<S: Store>(&mut self, engine: &Engine<S>) -> Result<usize, TelemetryError> {
        let sent = self.pending.len();
        if sent > 0 {
            self.exporter.export(self.pending.clone()).await.map_err(|e| TelemetryError::Export(e.to_string()))?;
            self.pending.clear();
        }
        if let Some(position) = self.position {
            engine.store().set_feed_cursor(&self.cursor, position).await?;
        }
        Ok(sent)
    }
}

/// Starts following the feed on the current Tokio runtime when the `OTEL_*` variables ask for
/// traces; `None` when they do not. The task ends only on a store error, which it returns.
pub fn spawn<S: Store + 'static>(
    engine: Arc<Engine<S>>,
) -> Result<Option<tokio::task::JoinHandle<Result<(), TelemetryError>>>, TelemetryError> {
    Ok(from_env()?.map(|exporter| tokio::spawn(exporter.run(engine))))
}
