//! The MQTT floor both wings stand on: the door's link (`door/link/`) and the office's
//! client and archive (`office/`) reach the same site broker with the same settings, the
//! same topics and the same connection loop. Nothing here imports either wing.
//!
//! - [`settings`]: [`BrokerSettings`] and [`Tls`], defined once, with their raw TOML forms and
//!   the checks that turn them into settings.
//! - [`args`]: [`BrokerArgs`], the one set of command-line flags for a broker.
//! - [`topics`]: every topic and filter, built in one place (`docs/mqtt.md`).
//! - [`connection`]: the connection loop with its backoff, TCP options, the rustls crypto
//!   provider, and connection errors in words.

pub mod args;
pub mod connection;
pub mod settings;
pub mod topics;

pub use args::BrokerArgs;
pub use connection::{
    connection_loop, describe, install_crypto_provider, network_options, Backoff, ConnectionReport,
};
pub use settings::{BrokerSettings, Tls};
pub use topics::Topics;

/// Largest event payload a door publishes; a larger one is set aside. Events written now are at
/// most [`crate::core::event::EVENT_MAX_BYTES`]; this guards what an older pintud left in the
/// outbox. The office archive accepts up to this much, so an event the broker takes can be
/// archived.
pub const EVENT_MAX_BYTES: usize = 64 << 10;

/// Longest broker-supplied text (a reason string) carried into a log line or an event.
pub const BROKER_TEXT_MAX: usize = 200;
