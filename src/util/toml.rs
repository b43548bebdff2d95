//! Strict TOML for every file Pintu reads (the door's config, the office's register and
//! settings): unknown keys refused, value formats (durations, sizes, modes) checked as read, and
//! every error naming the file, the line and the dotted key:
//! `pintu.toml:12: door.unlock_for: expected a duration like "5s"`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A configuration error: where, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `door.unlock_for` or `trust.keys[1].public_key`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (self.line, self.key.is_empty()) {
            (Some(line), false) => write!(f, "{file}:{line}: {}: {}", self.key, self.message),
            (Some(line), true) => write!(f, "{file}:{line}: {}", self.message),
            (None, false) => write!(f, "{file}: {}: {}", self.key, self.message),
            (None, true) => write!(f, "{file}: {}", self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// All errors found in one file (phase two reports every problem it finds, not just the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigError>);

/// A duration written like `"5s"`, `"500ms"`, `"2m"` or `"30days"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d).map_err(|_| serde::de::Error::custom(DURATION_HINT))?;
        humantime::parse_duration(&s)
            .map(HumanDuration)
            .map_err(|_| serde::de::Error::custom(format!("{DURATION_HINT}, found {s:?}")))
    }
}

const DURATION_HINT: &str = "expected a duration like \"5s\"";

/// A byte size written like `"64MiB"` or `"512KiB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const HINT: &str = "expected a size like \"64MiB\"";
        let s = String::deserialize(d).map_err(|_| serde::de::Error::custom(HINT))?;
        s.parse::<bytesize::ByteSize>()
            .map(|b| ByteSize(b.as_u64()))
            .map_err(|_| serde::de::Error::custom(format!("{HINT}, found {s:?}")))
    }
}

/// A Unix file mode written as an octal string like `"0660"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(pub u32);

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const HINT: &str = "expected an octal file mode like \"0660\"";
        let s = String::deserialize(d).map_err(|_| serde::de::Error::custom(HINT))?;
        match u32::from_str_radix(s.trim_start_matches("0o"), 8) {
            Ok(m) if m <= 0o777 => Ok(FileMode(m)),
            _ => Err(serde::de::Error::custom(format!("{HINT}, found {s:?}"))),
        }
    }
}

/// Deserializes TOML text strictly; an error names the file, the line and the dotted key.
/// Shared by the daemon config and `pintuctl`'s register.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let to_error = |line: Option<usize>, key: String, message: String| ConfigError {
        file: path.to_path_buf(),
        line,
        key,
        message,
    };
    let de = toml::de::Deserializer::parse(text).map_err(|e| {
        to_error(
            e.span().map(|s| line_at(text, s.start)),
            String::new(),
            one_line(e.message()),
        )
    })?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = toml_key_path(e.path());
        let inner = e.into_inner();
        let line = inner
            .span()
            .map(|s| line_at(text, s.start))
            .or_else(|| line_of_key(text, &key));
        let message = one_line(inner.message());
        if let Some(field) = message.strip_prefix("unknown field `") {
            let field = field.split('`').next().unwrap_or_default();
            // serde_path_to_error's path may or may not already end at the unknown field.
            let key = if key.is_empty() || key == "?" {
                field.to_string()
            } else if key == field || key.ends_with(&format!(".{field}")) {
                key
            } else {
                format!("{key}.{field}")
            };
            return to_error(line, key, "unknown key".into());
        }
        if let Some(field) = message.strip_prefix("missing field `") {
            // Name the missing key itself; the line is its table's header (none at top level).
            let field = field.split('`').next().unwrap_or_default();
            let (key, line) = if key.is_empty() {
                (field.to_string(), None)
            } else {
                (format!("{key}.{field}"), line_of_key(text, &key))
            };
            return to_error(line, key, "missing required key".into());
        }
        to_error(line, key, message)
    })
}

/// serde_path_to_error's path in TOML's dotted form: `reader[0].name`.
fn toml_key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn one_line(message: &str) -> String {
    message.trim().replace('\n', " ")
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

/// The line where a dotted key path (`trust.keys[1].public_key`) is written, if it is.
pub fn line_of_key(text: &str, key: &str) -> Option<usize> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let mut table = root.get_ref();
    let mut span = None;
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        let (k, mut value) = table.get_key_value(name)?;
        span = Some(k.span());
        for idx in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            let i: usize = idx.parse().ok()?;
            value = value.get_ref().as_array()?.get(i)?;
            span = Some(value.span());
        }
        if parts.peek().is_some() {
            table = value.get_ref().as_table()?;
        }
    }
    span.map(|s| line_at(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn line_of_key_finds_nested_keys() {
        let text = "site = \"a\"\n\n[lock]\nunlock_for = \"5s\"\n\n[[reader]]\nname = \"x\"\n\n[[reader]]\nname = \"y\"\n";
        assert_eq!(line_of_key(text, "site"), Some(1));
        assert_eq!(line_of_key(text, "lock.unlock_for"), Some(4));
        assert_eq!(line_of_key(text, "reader[1].name"), Some(10));
        assert_eq!(line_of_key(text, "nope"), None);
    }

    #[test]
    fn durations_sizes_modes() {
        #[derive(Deserialize)]
        struct T {
            d: HumanDuration,
            s: ByteSize,
            m: FileMode,
        }
        let t: T = toml::from_str("d = \"1500ms\"\ns = \"2MiB\"\nm = \"0640\"").unwrap();
        assert_eq!(t.d.0, Duration::from_millis(1500));
        assert_eq!(t.s.0, 2 << 20);
        assert_eq!(t.m.0, 0o640);
        assert!(toml::from_str::<T>("d = \"5x\"\ns = \"2MiB\"\nm = \"0640\"").is_err());
        assert!(toml::from_str::<T>("d = \"5s\"\ns = \"lots\"\nm = \"0640\"").is_err());
        assert!(toml::from_str::<T>("d = \"5s\"\ns = \"1KiB\"\nm = \"0999\"").is_err());
    }
}
