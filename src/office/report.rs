//! The access report (`pintuctl report`): what happened at the doors in a period, from the
//! archive, for the helpdesk's report up the chain — visits (visitor, badge, escort, entry,
//! exit, duration), staff entries and exits, denials, alarms and summary counts.
//!
//! [`build`] turns archived events into a [`Report`]; [`Report::to_csv`] writes one RFC 4180
//! table (a `record` column says what each row is) and [`Report::to_html`] one self-contained,
//! printable page (inline CSS, no scripts, every text escaped). Times are shown in the site's
//! time zone. Formatting helpers are in [`crate::office::format`]. Docs: `docs/archive.md`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

use crate::core::event::{Event, EventKind};
use crate::office::archive::Gap;
use crate::office::format::{
    csv_row, html_escape, human_duration, local_rfc3339, local_time, zone_label,
};

/// Kinds listed as alarms.
pub const ALARM_KINDS: [EventKind; 12] = [
    EventKind::DoorForcedOpen,
    EventKind::DoorHeldOpen,
    EventKind::VisitorUnescorted,
    EventKind::VisitOverstay,
    EventKind::AntipassbackViolation,
    EventKind::ReaderLockedOut,
    EventKind::ReaderDown,
    EventKind::OutboxAlarm,
    EventKind::CommandRejected,
    EventKind::ListRejected,
    EventKind::HardwareFault,
    EventKind::ClockUntrusted,
];

// ---------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------

/// What to report.
#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Site id (header).
    pub site: String,
    /// The site's time zone.
    pub time_zone: TimeZone,
    /// Start of the period (inclusive), by the doors' event time.
    pub from: Timestamp,
    /// End of the period (exclusive).
    pub to: Timestamp,
    /// Only this door.
    pub door: Option<String>,
    /// Reader names whose grants are exits (default `exit`); other readers are entries.
    pub exit_readers: Vec<String>,
    /// When the report is made (header).
    pub generated_at: Timestamp,
}

/// A visit: closed in the period, or still open at its end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VisitRow {
    /// Door.
    pub door: String,
    /// Visit id.
    pub visit: String,
    /// The visitor as the visit names them.
    pub visitor: String,
    /// The badge (its holder id) and masked card.
    pub badge: String,
    /// Masked card of the badge.
    pub card: String,
    /// Escort's holder id.
    pub escort: String,
    /// Escort's name from the register, if known.
    pub escort_name: String,
    /// Entry time.
    pub entered_at: Option<Timestamp>,
    /// Exit time; `None` while the visit is open.
    pub exited_at: Option<Timestamp>,
    /// Time inside, whole seconds.
    pub duration_s: Option<u64>,
    /// Exit reader (absent for the exit button).
    pub reader: String,
}

/// A granted entry or exit of staff or an escort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PassageRow {
    /// Event time.
    pub time: Timestamp,
    /// Door.
    pub door: String,
    /// Reader.
    pub reader: String,
    /// `entry` or `exit`.
    pub direction: &'static str,
    /// Holder id.
    pub holder: String,
    /// Name from the register.
    pub name: String,
    /// Masked card.
    pub card: String,
}

/// A denied tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialRow {
    /// Event time.
    pub time: Timestamp,
    /// Door.
    pub door: String,
    /// Reader.
    pub reader: String,
    /// Holder id when the card is in the list.
    pub holder: String,
    /// Name from the register.
    pub name: String,
    /// Masked card.
    pub card: String,
    /// Deny reason.
    pub reason: String,
}

/// An alarm event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlarmRow {
    /// Event time.
    pub time: Timestamp,
    /// Door.
    pub door: String,
    /// Event kind.
    pub kind: String,
    /// Reason.
    pub reason: String,
    /// Reader.
    pub reader: String,
    /// Holder id.
    pub holder: String,
    /// Name from the register.
    pub name: String,
    /// Visitor.
    pub visitor: String,
    /// Escort.
    pub escort: String,
    /// Detail.
    pub detail: String,
}

/// One summary count; `key` refines `metric` (a deny reason, an alarm kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    /// What is counted.
    pub metric: String,
    /// Refinement, or empty.
    pub key: String,
    /// How many.
    pub count: u64,
}

/// The access report of one period.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was asked.
    pub settings: ReportSettings,
    /// Visits closed in the period, then those open at its end.
    pub visits: Vec<VisitRow>,
    /// Staff and escort entries and exits.
    pub passages: Vec<PassageRow>,
    /// Denied taps.
    pub denials: Vec<DenialRow>,
    /// Alarms.
    pub alarms: Vec<AlarmRow>,
    /// Summary counts, in a fixed order.
    pub summary: Vec<Count>,
    /// Missing events of the doors in scope (the archive's gaps, whatever their time).
    pub gaps: Vec<Gap>,
}

fn s(o: &Option<String>) -> String {
    o.clone().unwrap_or_default()
}

/// Builds the report from archived events (any order), the register's names (holder id → name)
/// and the archive's gaps.
pub fn build(
    events: &[Event],
    names: &HashMap<String, String>,
    gaps: &[Gap],
    settings: ReportSettings,
) -> Report {
    let in_door = |e: &Event| settings.door.as_deref().is_none_or(|d| e.door == d);
    let mut scoped: Vec<&Event> = events.iter().filter(|e| in_door(e)).collect();
    // A door's events in seq order; doors interleaved by time.
    scoped.sort_by(|a, b| (a.time, &a.door, a.seq).cmp(&(b.time, &b.door, b.seq)));
    let in_period = |e: &Event| e.time >= settings.from && e.time < settings.to;
    let name = |id: &Option<String>| {
        id.as_ref()
            .and_then(|h| names.get(h).cloned())
            .unwrap_or_default()
    };
    let is_exit = |reader: &Option<String>| {
        reader
            .as_ref()
            .is_some_and(|r| settings.exit_readers.iter().any(|x| x == r))
    };

    let mut closed = Vec::new();
    let mut passages = Vec::new();
    let mut denials = Vec::new();
    let mut alarms = Vec::new();
    // Visitors inside, by (door, visit, badge), from entries before the end of the period.
    let mut open: BTreeMap<(String, String, String), &Event> = BTreeMap::new();
    let mut events_in_period = 0u64;
    for e in &scoped {
        if e.time >= settings.to {
            break;
        }
        let key = || (e.door.clone(), s(&e.visit), s(&e.holder));
        match e.kind {
            EventKind::AccessGranted if e.visit.is_some() && !is_exit(&e.reader) => {
                open.entry(key()).or_insert(e);
            }
            EventKind::VisitClosed => {
                open.remove(&key());
            }
            _ => {}
        }
        if !in_period(e) {
            continue;
        }
        events_in_period += 1;
        match e.kind {
            EventKind::VisitClosed => closed.push(VisitRow {
                door: e.door.clone(),
                visit: s(&e.visit),
                visitor: s(&e.visitor),
                badge: s(&e.holder),
                card: s(&e.card),
                escort: s(&e.escort),
                escort_name: name(&e.escort),
                entered_at: e.entered_at,
                exited_at: e.exited_at.or(Some(e.time)),
                duration_s: e.duration_s,
                reader: s(&e.reader),
            }),
            EventKind::AccessGranted if e.visit.is_none() => passages.push(PassageRow {
                time: e.time,
                door: e.door.clone(),
                reader: s(&e.reader),
                direction: if is_exit(&e.reader) { "exit" } else { "entry" },
                holder: s(&e.holder),
                name: name(&e.holder),
                card: s(&e.card),
            }),
            EventKind::AccessDenied => denials.push(DenialRow {
                time: e.time,
                door: e.door.clone(),
                reader: s(&e.reader),
                holder: s(&e.holder),
                name: name(&e.holder),
                card: s(&e.card),
                reason: s(&e.reason),
            }),
            k if ALARM_KINDS.contains(&k) => alarms.push(AlarmRow {
                time: e.time,
                door: e.door.clone(),
                kind: k.as_str().to_string(),
                reason: s(&e.reason),
                reader: s(&e.reader),
                holder: s(&e.holder),
                name: name(&e.holder),
                visitor: s(&e.visitor),
                escort: s(&e.escort),
                detail: s(&e.detail),
            }),
            _ => {}
        }
    }
    let mut visits = closed;
    let closed_count = visits.len() as u64;
    for e in open.values() {
        visits.push(VisitRow {
            door: e.door.clone(),
            visit: s(&e.visit),
            visitor: s(&e.visitor),
            badge: s(&e.holder),
            card: s(&e.card),
            escort: s(&e.escort),
            escort_name: name(&e.escort),
            entered_at: Some(e.time),
            exited_at: None,
            duration_s: None,
            reader: String::new(),
        });
    }

    let gaps: Vec<Gap> = gaps
        .iter()
        .filter(|g| settings.door.as_deref().is_none_or(|d| g.door == d))
        .cloned()
        .collect();
    let count = |metric: &str, key: &str, n: u64| Count {
        metric: metric.into(),
        key: key.into(),
        count: n,
    };
    let mut summary = vec![
        count("events", "", events_in_period),
        count(
            "entries",
            "",
            passages.iter().filter(|p| p.direction == "entry").count() as u64,
        ),
        count(
            "exits",
            "",
            passages.iter().filter(|p| p.direction == "exit").count() as u64,
        ),
        count("visits_closed", "", closed_count),
        count("visits_open", "", visits.len() as u64 - closed_count),
        count("denials", "", denials.len() as u64),
    ];
    let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
    for d in &denials {
        *by_reason.entry(d.reason.as_str()).or_default() += 1;
    }
    summary.extend(by_reason.iter().map(|(r, n)| count("denials", r, *n)));
    summary.push(count("alarms", "", alarms.len() as u64));
    let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &alarms {
        *by_kind.entry(a.kind.as_str()).or_default() += 1;
    }
    summary.extend(by_kind.iter().map(|(k, n)| count("alarms", k, *n)));
    summary.push(count(
        "missing_events",
        "",
        gaps.iter().map(Gap::len).sum::<u64>(),
    ));
    Report {
        settings,
        visits,
        passages,
        denials,
        alarms,
        summary,
        gaps,
    }
}

/// The CSV header; every row has these columns.
pub const CSV_HEADER: [&str; 18] = [
    "record",
    "time",
    "door",
    "reader",
    "holder",
    "name",
    "card",
    "visit",
    "visitor",
    "escort",
    "escort_name",
    "entered_at",
    "exited_at",
    "duration_s",
    "kind",
    "reason",
    "detail",
    "count",
];

/// A CSV row under [`CSV_HEADER`], by column name.
fn row(fields: &[(&str, String)]) -> String {
    let cells: Vec<String> = CSV_HEADER
        .iter()
        .map(|col| {
            fields
                .iter()
                .find(|(c, _)| c == col)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect();
    csv_row(&cells)
}

impl Report {
    fn t(&self, ts: Timestamp) -> String {
        local_rfc3339(ts, &self.settings.time_zone)
    }

    fn t_opt(&self, ts: Option<Timestamp>) -> String {
        ts.map(|t| self.t(t)).unwrap_or_default()
    }

    /// One CSV table (RFC 4180, CRLF line ends): a header, then `visit` / `visit_open`,
    /// `entry` / `exit`, `denial`, `alarm`, `gap` and `summary` rows. Times are RFC 3339 in
    /// the site's time zone (with its offset).
    pub fn to_csv(&self) -> String {
        let mut out = csv_row(&CSV_HEADER);
        for v in &self.visits {
            out.push_str(&row(&[
                (
                    "record",
                    if v.exited_at.is_some() {
                        "visit"
                    } else {
                        "visit_open"
                    }
                    .into(),
                ),
                ("time", self.t_opt(v.exited_at.or(v.entered_at))),
                ("door", v.door.clone()),
                ("reader", v.reader.clone()),
                ("holder", v.badge.clone()),
                ("card", v.card.clone()),
                ("visit", v.visit.clone()),
                ("visitor", v.visitor.clone()),
                ("escort", v.escort.clone()),
                ("escort_name", v.escort_name.clone()),
                ("entered_at", self.t_opt(v.entered_at)),
                ("exited_at", self.t_opt(v.exited_at)),
                (
                    "duration_s",
                    v.duration_s.map(|d| d.to_string()).unwrap_or_default(),
                ),
            ]));
        }
        for p in &self.passages {
            out.push_str(&row(&[
                ("record", p.direction.into()),
                ("time", self.t(p.time)),
                ("door", p.door.clone()),
                ("reader", p.reader.clone()),
                ("holder", p.holder.clone()),
                ("name", p.name.clone()),
                ("card", p.card.clone()),
            ]));
        }
        for d in &self.denials {
            out.push_str(&row(&[
                ("record", "denial".into()),
                ("time", self.t(d.time)),
                ("door", d.door.clone()),
                ("reader", d.reader.clone()),
                ("holder", d.holder.clone()),
                ("name", d.name.clone()),
                ("card", d.card.clone()),
                ("reason", d.reason.clone()),
            ]));
        }
        for a in &self.alarms {
            out.push_str(&row(&[
                ("record", "alarm".into()),
                ("time", self.t(a.time)),
                ("door", a.door.clone()),
                ("reader", a.reader.clone()),
                ("holder", a.holder.clone()),
                ("name", a.name.clone()),
                ("visitor", a.visitor.clone()),
                ("escort", a.escort.clone()),
                ("kind", a.kind.clone()),
                ("reason", a.reason.clone()),
                ("detail", a.detail.clone()),
            ]));
        }
        for g in &self.gaps {
            out.push_str(&row(&[
                ("record", "gap".into()),
                ("door", g.door.clone()),
                (
                    "detail",
                    format!(
                        "seq {}..={} missing{}",
                        g.from,
                        g.to,
                        g.note
                            .as_ref()
                            .map(|n| format!(" ({n})"))
                            .unwrap_or_default()
                    ),
                ),
                ("count", g.len().to_string()),
            ]));
        }
        for c in &self.summary {
            out.push_str(&row(&[
                ("record", "summary".into()),
                ("kind", c.metric.clone()),
                ("reason", c.key.clone()),
                ("count", c.count.to_string()),
            ]));
        }
        out
    }

    /// One self-contained printable HTML page (inline CSS, no scripts, no external resources).
    pub fn to_html(&self) -> String {
        let st = &self.settings;
        let tz = &st.time_zone;
        let t = |ts: Timestamp| html_escape(&local_time(ts, tz));
        let t_opt = |ts: Option<Timestamp>| ts.map(t).unwrap_or_default();
        let e = |x: &str| html_escape(x);
        let who = |id: &str, name: &str| match (id.is_empty(), name.is_empty()) {
            (true, _) => String::new(),
            (false, true) => e(id),
            (false, false) => format!("{}<br><span class=\"id\">{}</span>", e(name), e(id)),
        };
        let mut h = String::new();
        let title = format!("Access report — {}", st.site);
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta name=\"generator\" content=\"pintuctl report\">\n<title>{}</title>\n\
             <style>\n{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n<table class=\"meta\">\n",
            e(&title),
            e(&title)
        );
        let meta = [
            ("Site", e(&st.site)),
            (
                "Period",
                format!("{} to {} (end exclusive)", t(st.from), t(st.to)),
            ),
            ("Time zone", e(&zone_label(tz, st.from))),
            (
                "Doors",
                e(st.door.as_deref().unwrap_or("all doors of the site")),
            ),
            ("Generated", t(st.generated_at)),
        ];
        for (k, v) in meta {
            let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
        }
        h.push_str("</table>\n");
        let missing: u64 = self.gaps.iter().map(Gap::len).sum();
        if missing > 0 {
            let _ = writeln!(
                h,
                "<p class=\"warning\">The archive is missing {missing} event(s) of these doors \
                 (see “Missing events”): this report may be incomplete.</p>"
            );
        }
        h.push_str("</header>\n");

        // Summary
        h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<table class=\"summary\">\n<thead><tr><th>What</th><th>Detail</th><th class=\"n\">Count</th></tr></thead>\n<tbody>\n");
        for c in &self.summary {
            let label = match c.metric.as_str() {
                "events" => "Events in the period",
                "entries" => "Staff entries",
                "exits" => "Staff exits",
                "visits_closed" => "Visits closed",
                "visits_open" => "Visits open at the end",
                "denials" => "Denied taps",
                "alarms" => "Alarms",
                "missing_events" => "Missing events (archive gaps)",
                other => other,
            };
            let _ = writeln!(
                h,
                "<tr{}><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
                if c.key.is_empty() {
                    ""
                } else {
                    " class=\"sub\""
                },
                if c.key.is_empty() {
                    e(label)
                } else {
                    String::new()
                },
                e(&c.key),
                c.count
            );
        }
        h.push_str("</tbody>\n</table>\n</section>\n");

        // Visits
        section(
            &mut h,
            "visits",
            "Visits",
            &[
                "Visitor", "Visit", "Badge", "Escort", "Door", "Entry", "Exit", "Duration",
            ],
            self.visits.iter().map(|v| {
                vec![
                    e(&v.visitor),
                    e(&v.visit),
                    format!(
                        "{}<br><span class=\"id\">{}</span>",
                        e(&v.badge),
                        e(&v.card)
                    ),
                    who(&v.escort, &v.escort_name),
                    e(&v.door),
                    t_opt(v.entered_at),
                    match v.exited_at {
                        Some(x) => t(x),
                        None => "<em>still inside</em>".into(),
                    },
                    v.duration_s.map(human_duration).unwrap_or_default(),
                ]
            }),
        );
        section(
            &mut h,
            "passages",
            "Staff entries and exits",
            &["Time", "Door", "Reader", "Direction", "Holder", "Card"],
            self.passages.iter().map(|p| {
                vec![
                    t(p.time),
                    e(&p.door),
                    e(&p.reader),
                    e(p.direction),
                    who(&p.holder, &p.name),
                    e(&p.card),
                ]
            }),
        );
        section(
            &mut h,
            "denials",
            "Denied taps",
            &["Time", "Door", "Reader", "Holder", "Card", "Reason"],
            self.denials.iter().map(|d| {
                vec![
                    t(d.time),
                    e(&d.door),
                    e(&d.reader),
                    who(&d.holder, &d.name),
                    e(&d.card),
                    e(&d.reason),
                ]
            }),
        );
        section(
            &mut h,
            "alarms",
            "Alarms",
            &["Time", "Door", "Alarm", "Reason", "Who", "Detail"],
            self.alarms.iter().map(|a| {
                let mut person = who(&a.holder, &a.name);
                if !a.visitor.is_empty() {
                    let _ = write!(person, "<br>visitor {}", e(&a.visitor));
                }
                if !a.escort.is_empty() {
                    let _ = write!(person, "<br>escort {}", e(&a.escort));
                }
                if !a.reader.is_empty() {
                    let _ = write!(person, "<br>reader {}", e(&a.reader));
                }
                vec![
                    t(a.time),
                    e(&a.door),
                    e(&a.kind),
                    e(&a.reason),
                    person,
                    e(&a.detail),
                ]
            }),
        );
        if !self.gaps.is_empty() {
            section(
                &mut h,
                "gaps",
                "Missing events",
                &["Door", "Missing seq", "Count", "Note"],
                self.gaps.iter().map(|g| {
                    vec![
                        e(&g.door),
                        format!("{}–{}", g.from, g.to),
                        g.len().to_string(),
                        e(g.note.as_deref().unwrap_or("")),
                    ]
                }),
            );
        }
        let _ = write!(
            h,
            "<footer>pintuctl report · {} · times in {}</footer>\n</body>\n</html>\n",
            e(&st.site),
            e(&zone_label(tz, st.from))
        );
        h
    }
}

/// Appends one section with a table; cells are already escaped HTML.
fn section(
    h: &mut String,
    id: &str,
    title: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let _ = write!(h, "<section id=\"{id}\">\n<h2>{title}</h2>\n");
    let rows: Vec<Vec<String>> = rows.collect();
    if rows.is_empty() {
        h.push_str("<p class=\"none\">None in this period.</p>\n</section>\n");
        return;
    }
    h.push_str("<table>\n<thead><tr>");
    for c in columns {
        let _ = write!(h, "<th>{c}</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        h.push_str("<tr>");
        for c in r {
            let _ = write!(h, "<td>{c}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n</section>\n");
}

/// The page's style: screen and A4 print (page breaks between sections, table headers repeated
/// on every page, rows never split).
const CSS: &str = r#"body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt; color: #000; margin: 2em; }
h1 { font-size: 16pt; margin: 0 0 0.5em 0; }
h2 { font-size: 13pt; margin: 1.2em 0 0.4em 0; border-bottom: 1px solid #444; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #999; padding: 2px 5px; text-align: left; vertical-align: top; }
thead th { background: #e8e8e8; }
table.meta { width: auto; }
table.meta th, table.meta td { border: none; padding: 1px 8px 1px 0; }
table.meta th { background: none; }
table.summary { width: auto; min-width: 50%; }
tr.sub td:nth-child(2) { padding-left: 2em; }
td.n, th.n { text-align: right; }
.id { color: #555; font-size: 8.5pt; }
.warning { border: 2px solid #000; padding: 4px 8px; font-weight: bold; }
.none { font-style: italic; }
footer { margin-top: 2em; font-size: 8pt; color: #555; }
@media print {
  @page { size: A4; margin: 15mm 12mm; }
  body { margin: 0; font-size: 9pt; }
  section { break-before: page; page-break-before: always; }
  section#summary { break-before: auto; page-break-before: auto; }
  thead { display: table-header-group; }
  tr, td, th { break-inside: avoid; page-break-inside: avoid; }
  h2 { break-after: avoid; page-break-after: avoid; }
  thead th { background: #e8e8e8; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;
