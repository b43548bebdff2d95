//! Standard output for every command: lines and text written through [`outln!`] and
//! [`write_text`], tables, and outside text made safe to print.
//!
//! A reader that goes away (`pintuctl list holders | head -1`) closes the pipe. Rust ignores
//! SIGPIPE, so the next write fails with `BrokenPipe`; `println!` would panic (exit 101). Every
//! write here returns that as [`StdoutClosed`], which `main` turns into a quiet exit 0. SIGPIPE
//! is not reset to its default instead: it is process-wide, and pintuctl also writes to the
//! door's control socket and to the broker, where a peer hanging up is an error to report, not
//! a silent death.

use std::fmt;
use std::io::{self, Write as _};

/// Standard output was closed by its reader: the command ends quietly with exit 0.
#[derive(Debug)]
pub struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether `e` is (or was caused by) a closed standard output.
pub fn is_closed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<StdoutClosed>())
}

fn failed(e: io::Error) -> anyhow::Error {
    if e.kind() == io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(e).context("writing to standard output")
    }
}

/// Writes `args` and a newline to standard output.
pub fn write_line(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(failed)
}

/// Writes `text` to standard output as it is, and flushes it.
pub fn write_text(text: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text)
        .and_then(|()| out.flush())
        .map_err(failed)
}

/// `println!` that returns a closed pipe as an error (`?` in a command's `exec`).
macro_rules! outln {
    () => {
        $crate::output::write_line(format_args!(""))?
    };
    ($($arg:tt)*) => {
        $crate::output::write_line(format_args!($($arg)*))?
    };
}
pub(crate) use outln;

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> anyhow::Result<()> {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        outln!("{}", out.trim_end());
        Ok(())
    };
    line(header.to_vec())?;
    for row in rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

/// Longest outside text printed in one field (an event's detail is at most 1,024 characters).
const TEXT_PRINT_MAX: usize = 2048;

/// Text that came from outside (an event's fields), printed: control and invisible formatting
/// characters shown as `\u{..}` escapes, and cut at [`TEXT_PRINT_MAX`] characters.
pub fn shown(text: &str) -> String {
    pintu::core::text::bounded(text, TEXT_PRINT_MAX)
}

/// An event's seq, or `?` when the door did not record one.
pub fn seq(s: Option<u64>) -> String {
    s.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
}
