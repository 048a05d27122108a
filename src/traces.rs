//! Traces of cases to an OpenTelemetry collector, when the `OTEL_*` variables ask for them
//! (the `telemetry` crate does the work; nothing happens when none is set).

use std::sync::Arc;

use engine::{AnyStore, Engine};

/// `onetrip serve`: follows the event feed beside the server, on an engine of its own on the
/// same database, so that commands never wait for the exporter. A misconfigured `OTEL_*`
/// variable stops the start, naming it.
pub async fn follow(db: &str) -> Result<(), String> {
    let Some(exporter) = telemetry::from_env().map_err(|e| format!("OpenTelemetry: {e}"))? else {
        return Ok(());
    };
    let engine = Arc::new(crate::cases::open(db).await?);
    tokio::spawn(async move {
        if let Err(e) = exporter.run(engine).await {
            eprintln!("OpenTelemetry: the exporter stopped: {e}");
        }
    });
    eprintln!("OpenTelemetry: exporting traces of cases");
    Ok(())
}

/// `onetrip demo`, a short-lived command: sends the spans of what it did before it exits. A
/// collector that does not answer costs a warning, never the command.
pub async fn flush(engine: &Engine<AnyStore>) {
    let sent = match telemetry::from_env() {
        Ok(None) => return,
        Ok(Some(mut exporter)) => {
            let sent = exporter.catch_up(engine).await;
            let _ = exporter.shutdown();
            sent
        }
        Err(e) => Err(e),
    };
    match sent {
        Ok(spans) => eprintln!("OpenTelemetry: {spans} spans sent"),
        Err(e) => eprintln!("OpenTelemetry: {e}"),
    }
}
