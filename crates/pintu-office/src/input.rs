//! Text from forms and API calls, checked before it is stored: trimmed, bounded, and free of
//! control characters (which could forge a log line or break a page or a PDF). Refused with a
//! message naming the field, never silently changed.

/// A refused field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field's name, as the API spells it.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// A refusal of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// One line of text, trimmed, 1 to `max` characters.
pub fn single_line(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(FieldError::new(
            field,
            format!(
                "must be one line without control characters (found {:?})",
                c
            ),
        ));
    }
    check_length(field, value, max)?;
    Ok(value.to_string())
}

/// Free text (notes, reasons), trimmed, up to `max` characters; line breaks and tabs allowed,
/// other control characters refused. Empty is allowed (`None`).
pub fn note(field: &str, value: Option<&str>, max: usize) -> Result<Option<String>, FieldError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::new(
            field,
            format!("must not hold control characters (found {:?})", c),
        ));
    }
    check_length(field, value, max)?;
    Ok(Some(value.replace("\r\n", "\n")))
}

fn check_length(field: &str, value: &str, max: usize) -> Result<(), FieldError> {
    let n = value.chars().count();
    if n > max {
        return Err(FieldError::new(
            field,
            format!("at most {max} characters (found {n})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_bounded_and_one_line() {
        assert_eq!(single_line("name", "  Budi  ", 10).unwrap(), "Budi");
        assert!(single_line("name", "   ", 10)
            .unwrap_err()
            .message
            .contains("empty"));
        assert!(single_line("name", "a\u{1b}[2J", 10)
            .unwrap_err()
            .message
            .contains("control"));
        assert!(single_line("name", "a\nb", 10).is_err());
        assert!(single_line("name", "ééééé", 4)
            .unwrap_err()
            .message
            .contains("at most 4"));
        assert_eq!(
            note("note", Some(" a\r\nb "), 10).unwrap().as_deref(),
            Some("a\nb")
        );
        assert_eq!(note("note", Some("  "), 10).unwrap(), None);
        assert!(note("note", Some("a\u{7}"), 10).is_err());
    }
}
