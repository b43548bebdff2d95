//! Formatting shared by the office's forms and reports: CSV fields that a spreadsheet cannot
//! evaluate (RFC 4180), HTML escaping, times in the site's time zone, durations that read well.

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// One CSV field, RFC 4180: quoted when it holds a comma, a quote, CR or LF (quotes doubled),
/// or starts with a character a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, and
/// TAB or CR, which spreadsheets skip before looking for one), which is then prefixed with `'`
/// so names from the register are never evaluated.
pub fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One CSV record with its CRLF line end (RFC 4180).
pub fn csv_row<S: AsRef<str>>(fields: &[S]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2026-05-04 09:15:02` in `tz`.
pub fn local_time(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `2026-05-04T09:15:02+07:00`: the time in `tz` with its offset (whole seconds).
pub fn local_rfc3339(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// `1h 02m 03s`, `4m 05s`, `9s`.
pub fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h {m:02}m {s:02}s")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// The zone's name and current offset for headers: `Asia/Jakarta (UTC+07:00)`.
pub fn zone_label(tz: &TimeZone, at: Timestamp) -> String {
    let offset = at.to_zoned(tz.clone()).strftime("%:z").to_string();
    format!("{} (UTC{offset})", tz.iana_name().unwrap_or("UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_follows_rfc_4180() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("cr\r"), "\"cr\r\"");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_row(&["a", "b,c", ""]), "a,\"b,c\",\r\n");
    }

    #[test]
    fn csv_defuses_formulas_but_not_numbers() {
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("-5"), "-5");
        assert_eq!(csv_field("+62 812"), "'+62 812");
    }

    /// Issue 15 item 12: spreadsheets skip a leading TAB or CR before looking for `=`.
    #[test]
    fn csv_defuses_cells_starting_with_tab_or_cr() {
        assert_eq!(csv_field("\t=cmd|' /C calc'!A0"), "'\t=cmd|' /C calc'!A0");
        assert_eq!(csv_field("\r=1+1"), "\"'\r=1+1\"");
        assert_eq!(csv_field("a\tb"), "a\tb");
    }

    #[test]
    fn html_escapes_markup() {
        assert_eq!(
            html_escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(9), "9s");
        assert_eq!(human_duration(245), "4m 05s");
        assert_eq!(human_duration(3723), "1h 02m 03s");
    }
}
