//! What the processes tell operators: log lines (`logs`) and Prometheus metrics (`metrics`,
//! served by `exporter`).

mod exporter;
pub mod logs;
pub mod metrics;

pub use exporter::MetricsListener;
