//! The shared floor under both wings: file handling, strict TOML and error text. Neither door nor office code.

pub mod files;
pub mod toml;

/// An error and its causes on one line (`what: because: because`), for operator messages.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
