//! Text from outside, made safe to show: bounded in length and free of control characters.
//!
//! Key ids, list formats, file names, command fields, reader names and serial garbage all come
//! from somewhere the door does not control. Before such text reaches an event, a log line or a
//! terminal it goes through [`bounded`]: control characters (which could forge log lines or drive
//! a terminal) become visible escapes such as `\u{1b}`, and the text is cut to a documented number
//! of characters, so one crafted input can neither hide itself nor grow an event past what the
//! link can send. The limits are in `docs/events.md`.

use std::fmt;

/// Longest outside text, in characters, that goes into a log line or an error message.
pub const TEXT_MAX: usize = 200;
/// Marker appended to text that was cut.
pub const CUT_MARKER: &str = "…";

/// `text` with every control character replaced by its `\u{..}` escape, cut to `max_chars`
/// characters (not counting [`CUT_MARKER`], which marks a cut). The result is never longer
/// than `max_chars` characters plus the marker, whatever `text` holds.
pub fn bounded(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 2 + CUT_MARKER.len()));
    let mut used = 0usize;
    for c in text.chars() {
        if c.is_control() || is_invisible_format(c) {
            // `\u{1b}` is 6 characters: counted as such, so the bound holds for escapes too.
            let escaped: String = c.escape_unicode().collect();
            let n = escaped.chars().count();
            if used + n > max_chars {
                out.push_str(CUT_MARKER);
                return out;
            }
            out.push_str(&escaped);
            used += n;
        } else {
            if used + 1 > max_chars {
                out.push_str(CUT_MARKER);
                return out;
            }
            out.push(c);
            used += 1;
        }
    }
    out
}

/// [`bounded`] with the default [`TEXT_MAX`], in Rust's debug quoting (`"..."`), for error
/// messages that name an outside value: `{}` of this shows the value quoted and bounded.
pub fn quoted(text: &str) -> Quoted<'_> {
    Quoted(text)
}

/// See [`quoted`].
pub struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", bounded(self.0, TEXT_MAX).replace('"', "\\\""))
    }
}

/// A list of outside values (e.g. door ids a list names), bounded in count and in each item.
pub fn bounded_list(items: &[String]) -> String {
    const ITEMS_MAX: usize = 8;
    let mut out = String::from("[");
    for (i, item) in items.iter().take(ITEMS_MAX).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&quoted_short(item));
    }
    if items.len() > ITEMS_MAX {
        out.push_str(&format!(", … {} more", items.len() - ITEMS_MAX));
    }
    out.push(']');
    out
}

fn quoted_short(text: &str) -> String {
    format!("\"{}\"", bounded(text, 64).replace('"', "\\\""))
}

/// Characters that are not control characters but hide or reorder text on a terminal or in a log
/// viewer (bidirectional overrides, zero-width characters): escaped like control characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_clean_text_is_unchanged() {
        assert_eq!(bounded("reader-1 (entry)", 64), "reader-1 (entry)");
        assert_eq!(bounded("pintu ü 日本", 64), "pintu ü 日本");
    }

    #[test]
    fn control_characters_are_escaped_not_passed() {
        assert_eq!(bounded("a\nb", 64), "a\\u{a}b");
        assert_eq!(bounded("\x1b[2Jx", 64), "\\u{1b}[2Jx");
        assert_eq!(bounded("a\u{202e}b", 64), "a\\u{202e}b");
        assert_eq!(bounded("tab\there\r", 64), "tab\\u{9}here\\u{d}");
    }

    #[test]
    fn long_text_is_cut_with_a_marker() {
        let long = "k".repeat(2_000_000);
        let b = bounded(&long, 100);
        assert_eq!(b.chars().count(), 101);
        assert!(b.ends_with(CUT_MARKER));
        // An escape that would cross the bound is left out whole, not split.
        assert_eq!(bounded("abc\n", 5), format!("abc{CUT_MARKER}"));
    }

    #[test]
    fn quoted_escapes_quotes_and_bounds() {
        assert_eq!(quoted("k\"1").to_string(), "\"k\\\"1\"");
        assert!(quoted(&"x".repeat(10_000)).to_string().len() < TEXT_MAX + 10);
    }

    #[test]
    fn bounded_list_limits_count_and_items() {
        let doors: Vec<String> = (0..1000).map(|i| format!("door-{i}")).collect();
        let s = bounded_list(&doors);
        assert!(s.contains("992 more"), "{s}");
        assert!(s.len() < 200, "{s}");
        assert_eq!(bounded_list(&["a".into()]), "[\"a\"]");
    }

    proptest! {
        #[test]
        fn bounded_never_exceeds_and_never_has_controls(s in ".{0,400}", max in 0usize..120) {
            let b = bounded(&s, max);
            let body = b.strip_suffix(CUT_MARKER).unwrap_or(&b);
            prop_assert!(body.chars().count() <= max);
            prop_assert!(!b.chars().any(|c| c.is_control() || is_invisible_format(c)));
        }
    }
}
