//! HTTP routes, one file per resource, each exposing `router()`.

pub mod customers;
pub mod health;
pub mod health_scores;
pub mod ingest;
pub mod metrics;
pub mod segments;
