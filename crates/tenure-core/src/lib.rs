//! Tenure's domain: ids, events and their validation, customer state and its fold.
//!
//! Pure, synchronous Rust over plain data: no database, no HTTP, no async, no wall clock
//! (time is passed in). Everything here is tested without a server.

pub mod active_months;
pub mod customer;
pub mod customer_table;
pub mod demo;
pub mod engine;
pub mod field_error;
pub mod health;
pub mod ids;
pub mod live;
pub mod message;
pub mod metrics;
pub mod money;
pub mod names;
pub mod predictions;
pub mod profile;
pub mod random;
pub mod reserved;
pub mod risk;
pub mod seen;
pub mod segments;
pub mod semantic;
pub mod subscription;
pub mod time;

pub use engine::Engine;
pub use ids::{CustomerId, KeyId, WorkspaceId};
pub use live::LiveWorkspace;
pub use message::{Envelope, FieldError, LogColumns, Message, MessageType, Recorded};
