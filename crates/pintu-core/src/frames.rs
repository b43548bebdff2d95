//! Serial card-reader frames: bytes in, card UIDs out. Pure: no I/O and no clock (the
//! [`HoldFilter`] takes the time as an argument), so any byte stream can be tested and fuzzed.
//!
//! Parsers are streaming and byte-at-a-time: bytes can arrive in any chunking and the result is
//! the same. A parser never panics and never allocates per byte; whatever is not a valid frame is
//! counted in [`FrameStats`] and, for malformed frames, reported as a [`Reject`].
//!
//! - [`Em4100Parser`]: 125 kHz EM4100 readers such as the RDM6300 (and ID-12/ID-20 style, which
//!   add CR LF before ETX): `STX, 10 hex digits, 2 hex checksum digits, [CR] [LF], ETX`. The 10
//!   digits are 5 bytes (version/customer byte + 4 card bytes); the checksum is their XOR. The UID
//!   is the 5 data bytes.
//! - [`AsciiLineParser`]: one UID per line (CR, LF or CRLF), in hex (separators `:` `-` and spaces
//!   allowed, as [`Uid`]'s parser takes them) or in decimal. Surrounding white space and ASCII
//!   control characters are trimmed; empty lines are skipped; lines over [`MAX_LINE`] bytes are
//!   rejected.
//!
//! Decimal UIDs become big-endian bytes, **minimal but at least 4 bytes**: `12345678` →
//! `00BC614E`, `0` → `00000000`, `4294967296` → `0100000000`. Leading zeros in the text do not
//! change the UID (a number carries no width), so a reader printing `0012345678` and one printing
//! `12345678` give the same card.

use std::time::{Duration, Instant};

use super::card::Uid;

/// Start of an EM4100 frame.
pub const STX: u8 = 0x02;
/// End of an EM4100 frame.
pub const ETX: u8 = 0x03;
/// Hex digits in an EM4100 frame: 10 data digits and 2 checksum digits.
const EM4100_DIGITS: usize = 12;
/// CR/LF bytes tolerated between the checksum and ETX (ID-12/ID-20 style readers send CR LF).
const EM4100_MAX_TRAILER: u8 = 2;
/// Longest ASCII line accepted, in bytes before the terminator: room for a 16-byte UID written
/// with separators (`04:A1:...`, 47 bytes) or a 20-digit decimal, with spaces around.
pub const MAX_LINE: usize = 64;

/// Why a frame or line was discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// EM4100: a complete frame whose checksum does not match its data (noise, or a card
    /// pulled away mid-read).
    BadChecksum,
    /// EM4100: a frame cut short or malformed: a non-hex digit, a new STX before ETX, too many
    /// digits, or ETX too early.
    BadFrame,
    /// ASCII line: longer than [`MAX_LINE`] bytes.
    LineTooLong,
    /// ASCII line: not a UID in the configured notation.
    BadLine,
}

impl Reject {
    /// Short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::BadChecksum => "bad_checksum",
            Reject::BadFrame => "bad_frame",
            Reject::LineTooLong => "line_too_long",
            Reject::BadLine => "bad_line",
        }
    }
}

/// What a byte completed: a card, or a discarded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A valid frame's UID.
    Card(Uid),
    /// A frame or line that was discarded, and why.
    Rejected(Reject),
}

/// Counters kept by a parser since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Valid frames (before any de-duplication).
    pub cards: u64,
    /// EM4100 frames with a bad checksum.
    pub bad_checksums: u64,
    /// Other rejected frames or lines (malformed, overlong, not a UID).
    pub bad_frames: u64,
    /// Bytes outside any frame (EM4100), or dropped past the cap of an overlong line.
    pub garbage_bytes: u64,
}

impl FrameStats {
    /// Everything that was discarded: rejected frames and garbage bytes.
    pub fn discarded(&self) -> u64 {
        self.bad_checksums + self.bad_frames + self.garbage_bytes
    }

    fn count(&mut self, frame: &Frame) {
        match frame {
            Frame::Card(_) => self.cards += 1,
            Frame::Rejected(Reject::BadChecksum) => self.bad_checksums += 1,
            Frame::Rejected(_) => self.bad_frames += 1,
        }
    }
}

/// How an ASCII-line reader writes a UID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineNotation {
    /// Hex digits, optionally separated by `:` `-` or spaces.
    Hex,
    /// A decimal number up to `u64::MAX`.
    Decimal,
}

/// A streaming frame parser for one serial protocol.
#[derive(Debug, Clone)]
pub enum FrameParser {
    /// EM4100 / RDM6300.
    Em4100(Em4100Parser),
    /// One UID per line.
    AsciiLine(AsciiLineParser),
}

impl FrameParser {
    /// Takes one byte; returns what it completed, if anything.
    pub fn push(&mut self, byte: u8) -> Option<Frame> {
        match self {
            FrameParser::Em4100(p) => p.push(byte),
            FrameParser::AsciiLine(p) => p.push(byte),
        }
    }

    /// Takes a chunk of bytes; calls `out` with each completed frame, in order.
    pub fn feed(&mut self, bytes: &[u8], mut out: impl FnMut(Frame)) {
        for &b in bytes {
            if let Some(frame) = self.push(b) {
                out(frame);
            }
        }
    }

    /// Forgets a partial frame (the port was closed mid-frame); counters are kept.
    pub fn reset(&mut self) {
        match self {
            FrameParser::Em4100(p) => p.reset(),
            FrameParser::AsciiLine(p) => p.reset(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> FrameStats {
        match self {
            FrameParser::Em4100(p) => p.stats,
            FrameParser::AsciiLine(p) => p.stats,
        }
    }
}

/// EM4100 / RDM6300 frames: `STX, 12 hex digits, [CR] [LF], ETX`.
///
/// Resynchronisation: outside a frame every byte but STX is garbage; an STX inside a frame
/// drops the partial frame and starts a new one; a frame never grows past 12 digits (plus two
/// CR/LF), so a missing ETX costs one frame, never memory.
#[derive(Debug, Clone, Default)]
pub struct Em4100Parser {
    digits: [u8; EM4100_DIGITS],
    len: usize,
    trailer: u8,
    in_frame: bool,
    stats: FrameStats,
}

impl Em4100Parser {
    /// A parser waiting for STX.
    pub fn new() -> Self {
        Em4100Parser::default()
    }

    /// Takes one byte; returns what it completed, if anything.
    pub fn push(&mut self, byte: u8) -> Option<Frame> {
        if !self.in_frame {
            if byte == STX {
                self.start();
            } else {
                self.stats.garbage_bytes += 1;
            }
            return None;
        }
        let frame = match byte {
            STX => {
                self.start();
                Frame::Rejected(Reject::BadFrame)
            }
            ETX => {
                self.in_frame = false;
                if self.len == EM4100_DIGITS {
                    self.finish()
                } else {
                    Frame::Rejected(Reject::BadFrame)
                }
            }
            b'\r' | b'\n' if self.len == EM4100_DIGITS && self.trailer < EM4100_MAX_TRAILER => {
                self.trailer += 1;
                return None;
            }
            b if b.is_ascii_hexdigit() && self.len < EM4100_DIGITS && self.trailer == 0 => {
                self.digits[self.len] = b;
                self.len += 1;
                return None;
            }
            _ => {
                self.in_frame = false;
                Frame::Rejected(Reject::BadFrame)
            }
        };
        self.stats.count(&frame);
        Some(frame)
    }

    /// Forgets a partial frame.
    pub fn reset(&mut self) {
        self.in_frame = false;
    }

    /// Counters since creation.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }

    fn start(&mut self) {
        self.in_frame = true;
        self.len = 0;
        self.trailer = 0;
    }

    /// Decodes the 12 digits (all hex, checked as they arrived) and checks the checksum.
    fn finish(&self) -> Frame {
        let mut bytes = [0u8; EM4100_DIGITS / 2];
        for (i, pair) in self.digits.chunks_exact(2).enumerate() {
            bytes[i] = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        let (data, checksum) = bytes.split_at(5);
        if data.iter().fold(0, |acc, b| acc ^ b) != checksum[0] {
            return Frame::Rejected(Reject::BadChecksum);
        }
        match Uid::from_bytes(data) {
            Ok(uid) => Frame::Card(uid),
            // Unreachable (5 bytes is a valid UID length), but never panic on the input path.
            Err(_) => Frame::Rejected(Reject::BadFrame),
        }
    }
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Writes an EM4100 frame for 5 data bytes (upper-case hex, as the RDM6300 sends it). For tests,
/// benchmarks and simulators.
pub fn em4100_frame(data: [u8; 5]) -> Vec<u8> {
    let checksum = data.iter().fold(0, |acc, b| acc ^ b);
    let mut frame = Vec::with_capacity(EM4100_DIGITS + 2);
    frame.push(STX);
    frame.extend_from_slice(hex::encode_upper(data).as_bytes());
    frame.extend_from_slice(hex::encode_upper([checksum]).as_bytes());
    frame.push(ETX);
    frame
}

/// One UID per line. CR, LF and CRLF all end a line (an empty line is skipped, so CRLF is
/// one terminator in effect).
#[derive(Debug, Clone)]
pub struct AsciiLineParser {
    notation: LineNotation,
    line: Vec<u8>,
    overlong: bool,
    stats: FrameStats,
}

impl AsciiLineParser {
    /// A parser for UIDs written in `notation`.
    pub fn new(notation: LineNotation) -> Self {
        AsciiLineParser {
            notation,
            line: Vec::with_capacity(MAX_LINE),
            overlong: false,
            stats: FrameStats::default(),
        }
    }

    /// Takes one byte; returns what it completed, if anything.
    pub fn push(&mut self, byte: u8) -> Option<Frame> {
        if byte != b'\r' && byte != b'\n' {
            if self.overlong {
                self.stats.garbage_bytes += 1;
            } else if self.line.len() == MAX_LINE {
                self.overlong = true;
                self.stats.garbage_bytes += 1;
            } else {
                self.line.push(byte);
            }
            return None;
        }
        let frame = if self.overlong {
            Some(Frame::Rejected(Reject::LineTooLong))
        } else {
            parse_line(&self.line, self.notation)
        };
        self.reset();
        if let Some(frame) = &frame {
            self.stats.count(frame);
        }
        frame
    }

    /// Forgets a partial line.
    pub fn reset(&mut self) {
        self.line.clear();
        self.overlong = false;
    }

    /// Counters since creation.
    pub fn stats(&self) -> FrameStats {
        self.stats
    }
}

/// Parses one line (without its terminator): `None` for a blank line.
pub fn parse_line(line: &[u8], notation: LineNotation) -> Option<Frame> {
    let Ok(text) = std::str::from_utf8(line) else {
        return Some(Frame::Rejected(Reject::BadLine));
    };
    let text = text.trim_matches(|c: char| c.is_whitespace() || c.is_ascii_control());
    if text.is_empty() {
        return None;
    }
    let uid = match notation {
        LineNotation::Hex => text.parse::<Uid>().ok(),
        LineNotation::Decimal => decimal_uid(text),
    };
    Some(match uid {
        Some(uid) => Frame::Card(uid),
        None => Frame::Rejected(Reject::BadLine),
    })
}

/// A decimal number as big-endian bytes, minimal but at least 4 (see the module docs).
pub fn decimal_uid(text: &str) -> Option<Uid> {
    // `u64::from_str` would also take a leading '+'.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = text.parse().ok()?;
    let bytes = n.to_be_bytes();
    let skip = ((n.leading_zeros() / 8) as usize).min(bytes.len() - 4);
    Uid::from_bytes(&bytes[skip..]).ok()
}

/// De-duplicates a card held in the field. Readers such as the RDM6300 repeat the frame for as
/// long as the card stays; the same UID again within `hold` of its *previous frame* is the same
/// tap, so the hold restarts with every repeat: a card held for 10 s is one tap, and a card taken
/// away and presented again after `hold` is a new tap. Only the last card is remembered (an
/// EM4100 reader reads one card at a time): A, B, A are three taps.
#[derive(Debug, Clone)]
pub struct HoldFilter {
    hold: Duration,
    last: Option<(Uid, Instant)>,
}

impl HoldFilter {
    /// A filter with the given hold time.
    pub fn new(hold: Duration) -> Self {
        HoldFilter { hold, last: None }
    }

    /// Whether a frame for `uid` read at `now` is a new tap (otherwise it is a repeat).
    pub fn is_new_tap(&mut self, uid: &Uid, now: Instant) -> bool {
        if let Some((last, at)) = &mut self.last {
            if last == uid && now.saturating_duration_since(*at) < self.hold {
                *at = now;
                return false;
            }
        }
        self.last = Some((uid.clone(), now));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uid(hex: &str) -> Uid {
        hex.parse().unwrap()
    }

    fn run(parser: &mut FrameParser, bytes: &[u8]) -> Vec<Frame> {
        let mut out = Vec::new();
        parser.feed(bytes, |f| out.push(f));
        out
    }

    fn em() -> FrameParser {
        FrameParser::Em4100(Em4100Parser::new())
    }

    fn line(notation: LineNotation) -> FrameParser {
        FrameParser::AsciiLine(AsciiLineParser::new(notation))
    }

    fn cards(frames: &[Frame]) -> Vec<Uid> {
        frames
            .iter()
            .filter_map(|f| match f {
                Frame::Card(u) => Some(u.clone()),
                Frame::Rejected(_) => None,
            })
            .collect()
    }

    /// A frame written out by hand: STX, digits, checksum digits, ETX.
    fn framed(digits: &str, checksum: &str) -> Vec<u8> {
        let mut v = vec![STX];
        v.extend_from_slice(digits.as_bytes());
        v.extend_from_slice(checksum.as_bytes());
        v.push(ETX);
        v
    }

    fn xor_hex(digits: &str) -> String {
        let bytes = hex::decode(digits).unwrap();
        format!("{:02X}", bytes.iter().fold(0, |a, b| a ^ b))
    }

    #[test]
    fn rdm6300_frames_table() {
        // The RDM6300 datasheet's example (card 62E3086CED, checksum 08), and cards as the module
        // sends them: a card printed "0007614714 116,12538" is 0x007430FA in its last 4 bytes.
        let table = [
            ("62E3086CED", "08"),
            ("1A007430FA", ""),
            ("0000000000", ""),
            ("FFFFFFFFFF", ""),
            ("3c00d2e1a7", ""),
        ];
        for (digits, checksum) in table {
            let checksum = if checksum.is_empty() {
                xor_hex(digits)
            } else {
                checksum.to_string()
            };
            assert_eq!(checksum, xor_hex(digits), "{digits}");
            let mut p = em();
            assert_eq!(
                run(&mut p, &framed(digits, &checksum)),
                vec![Frame::Card(uid(digits))],
                "{digits}"
            );
            // ID-12/ID-20 style: CR LF between the checksum and ETX.
            let mut with_crlf = framed(digits, &checksum);
            with_crlf.splice(13..13, *b"\r\n");
            assert_eq!(run(&mut p, &with_crlf), vec![Frame::Card(uid(digits))]);
            assert_eq!(p.stats().cards, 2);
            assert_eq!(p.stats().discarded(), 0);
        }
        assert_eq!(
            em4100_frame([0x62, 0xE3, 0x08, 0x6C, 0xED]),
            framed("62E3086CED", "08")
        );
    }

    #[test]
    fn em4100_rejects_and_resyncs() {
        let good = framed("62E3086CED", "08");
        let cases: Vec<(&str, Vec<u8>, Vec<Frame>)> = vec![
            (
                "bad checksum",
                framed("62E3086CED", "09"),
                vec![Frame::Rejected(Reject::BadChecksum)],
            ),
            (
                "non-hex digit",
                framed("62E3086CEG", "08"),
                vec![Frame::Rejected(Reject::BadFrame)],
            ),
            (
                "ETX too early",
                framed("62E3086C", "ED"),
                vec![Frame::Rejected(Reject::BadFrame)],
            ),
            (
                "too many digits",
                framed("62E3086CED08", "00"),
                vec![Frame::Rejected(Reject::BadFrame)],
            ),
            (
                "three CR/LF",
                [&good[..13], &b"\r\n\r"[..], &good[13..]].concat(),
                vec![Frame::Rejected(Reject::BadFrame)],
            ),
            (
                "CR before the checksum",
                [&good[..11], &b"\r"[..], &good[11..]].concat(),
                vec![Frame::Rejected(Reject::BadFrame)],
            ),
        ];
        for (what, bad, expected) in cases {
            let mut p = em();
            assert_eq!(run(&mut p, &bad), expected, "{what}");
            // The next good frame is always found.
            assert_eq!(
                run(&mut p, &good),
                vec![Frame::Card(uid("62E3086CED"))],
                "{what}"
            );
        }

        // A stray STX mid-frame restarts it; garbage around frames is counted.
        let mut p = em();
        let mut stream = b"noise".to_vec();
        stream.extend_from_slice(&good[..7]);
        stream.extend_from_slice(&good);
        stream.extend_from_slice(b"\xff\x00");
        let out = run(&mut p, &stream);
        assert_eq!(
            out,
            vec![
                Frame::Rejected(Reject::BadFrame),
                Frame::Card(uid("62E3086CED"))
            ]
        );
        assert_eq!(
            p.stats(),
            FrameStats {
                cards: 1,
                bad_checksums: 0,
                bad_frames: 1,
                garbage_bytes: 7,
            }
        );

        // reset() drops a partial frame without counting it.
        let mut p = em();
        run(&mut p, &good[..6]);
        p.reset();
        assert_eq!(run(&mut p, &good[6..]), vec![]);
        assert_eq!(run(&mut p, &good), vec![Frame::Card(uid("62E3086CED"))]);
    }

    #[test]
    fn ascii_lines_table() {
        let hex = [
            ("04A1B2C3\n", Some("04A1B2C3")),
            ("04a1b2c3\r\n", Some("04A1B2C3")),
            ("  04:A1:B2:C3  \r", Some("04A1B2C3")),
            ("04-A1-B2-C3-D4-E5-F6\n", Some("04A1B2C3D4E5F6")),
            ("\x0204A1B2C3\x03\r\n", Some("04A1B2C3")),
            ("04A1B2C\n", None),
            ("hello\n", None),
            ("+04A1\n", None),
            ("\u{e9}\n", None),
        ];
        for (input, expected) in hex {
            let mut p = line(LineNotation::Hex);
            let want = match expected {
                Some(u) => Frame::Card(uid(u)),
                None => Frame::Rejected(Reject::BadLine),
            };
            assert_eq!(run(&mut p, input.as_bytes()), vec![want], "{input:?}");
        }
        let decimal = [
            ("12345678\n", Some("00BC614E")),
            ("0012345678\r\n", Some("00BC614E")),
            ("0\n", Some("00000000")),
            ("4294967295\n", Some("FFFFFFFF")),
            ("4294967296\n", Some("0100000000")),
            ("18446744073709551615\n", Some("FFFFFFFFFFFFFFFF")),
            ("18446744073709551616\n", None),
            ("+12\n", None),
            ("-12\n", None),
            ("12 34\n", None),
            ("0x12\n", None),
        ];
        for (input, expected) in decimal {
            let mut p = line(LineNotation::Decimal);
            let want = match expected {
                Some(u) => Frame::Card(uid(u)),
                None => Frame::Rejected(Reject::BadLine),
            };
            assert_eq!(run(&mut p, input.as_bytes()), vec![want], "{input:?}");
        }
    }

    #[test]
    fn ascii_blank_and_overlong_lines() {
        let mut p = line(LineNotation::Hex);
        assert_eq!(run(&mut p, b"\r\n\n \t \r\n"), vec![]);
        let long = format!("{}\n", "A".repeat(MAX_LINE + 10));
        assert_eq!(
            run(&mut p, long.as_bytes()),
            vec![Frame::Rejected(Reject::LineTooLong)]
        );
        assert_eq!(p.stats().garbage_bytes, 10);
        // The line after an overlong one is read normally.
        assert_eq!(run(&mut p, b"0A0B\n"), vec![Frame::Card(uid("0A0B"))]);
        // Exactly MAX_LINE bytes is accepted (spaces around a UID).
        let exact = format!("{:^width$}\n", "0A0B", width = MAX_LINE);
        assert_eq!(
            run(&mut p, exact.as_bytes()),
            vec![Frame::Card(uid("0A0B"))]
        );
        assert_eq!(
            p.stats(),
            FrameStats {
                cards: 2,
                bad_checksums: 0,
                bad_frames: 1,
                garbage_bytes: 10,
            }
        );
    }

    #[test]
    fn hold_filter_restarts_with_each_repeat() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let a = uid("0A0B0C0D0E");
        let b = uid("0102030405");
        let mut f = HoldFilter::new(Duration::from_millis(1000));
        assert!(f.is_new_tap(&a, ms(0)));
        // Held for 5 s, one frame every 200 ms: one tap.
        for i in 1..=25 {
            assert!(!f.is_new_tap(&a, ms(i * 200)), "repeat {i}");
        }
        // Taken away at 5 s, presented again at 6.2 s: a new tap.
        assert!(f.is_new_tap(&a, ms(6200)));
        // Another card, then the first again right away: both are taps.
        assert!(f.is_new_tap(&b, ms(6300)));
        assert!(f.is_new_tap(&a, ms(6400)));
        // A clock that goes backwards never panics and counts as a repeat.
        assert!(!f.is_new_tap(&a, ms(6300)));
        let mut zero = HoldFilter::new(Duration::ZERO);
        assert!(zero.is_new_tap(&a, ms(0)));
        assert!(zero.is_new_tap(&a, ms(0)));
    }

    /// Pieces of a generated stream.
    #[derive(Debug, Clone)]
    enum Piece {
        Good([u8; 5]),
        BadChecksum([u8; 5], u8),
        Truncated([u8; 5], usize),
        Garbage(Vec<u8>),
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            any::<[u8; 5]>().prop_map(Piece::Good),
            (any::<[u8; 5]>(), 1..=255u8).prop_map(|(d, x)| Piece::BadChecksum(d, x)),
            (any::<[u8; 5]>(), 0..14usize).prop_map(|(d, n)| Piece::Truncated(d, n)),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Piece::Garbage),
            proptest::collection::vec(
                prop_oneof![Just(STX), Just(ETX), Just(b'A'), Just(b'0'), Just(b'\r')],
                0..20
            )
            .prop_map(Piece::Garbage),
        ]
    }

    fn bytes_of(piece: &Piece) -> Vec<u8> {
        match piece {
            Piece::Good(d) => em4100_frame(*d),
            Piece::BadChecksum(d, x) => {
                let mut f = em4100_frame(*d);
                let sum = d.iter().fold(0, |a, b| a ^ b) ^ x;
                f[11..13].copy_from_slice(hex::encode_upper([sum]).as_bytes());
                f
            }
            Piece::Truncated(d, n) => em4100_frame(*d)[..*n].to_vec(),
            Piece::Garbage(g) => g.clone(),
        }
    }

    /// Reference check: does `input` hold a checksum-valid frame for `uid` (STX, 12 hex digits
    /// of any case, up to two CR/LF, ETX)?
    fn holds_valid_frame(input: &[u8], uid: &Uid) -> bool {
        input
            .windows(14)
            .any(|w| w[0] == STX && frame_matches(&w[1..13], uid) && w[13] == ETX)
            || input.windows(15).any(|w| {
                w[0] == STX
                    && frame_matches(&w[1..13], uid)
                    && matches!(w[13], b'\r' | b'\n')
                    && w[14] == ETX
            })
            || input.windows(16).any(|w| {
                w[0] == STX
                    && frame_matches(&w[1..13], uid)
                    && w[13..15].iter().all(|b| matches!(b, b'\r' | b'\n'))
                    && w[15] == ETX
            })
    }

    fn frame_matches(digits: &[u8], uid: &Uid) -> bool {
        let Ok(text) = std::str::from_utf8(digits) else {
            return false;
        };
        let Ok(bytes) = hex::decode(text) else {
            return false;
        };
        bytes[..5] == *uid.as_bytes() && bytes[..5].iter().fold(0, |a, b| a ^ b) == bytes[5]
    }

    /// Splits `bytes` at the given cut points (taken modulo the length).
    fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        cuts.windows(2)
            .map(|w| bytes[w[0]..w[1]].to_vec())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            for mut p in [em(), line(LineNotation::Hex), line(LineNotation::Decimal)] {
                let out = run(&mut p, &bytes);
                let s = p.stats();
                prop_assert_eq!(s.cards as usize, cards(&out).len());
                prop_assert_eq!((s.cards + s.bad_checksums + s.bad_frames) as usize, out.len());
            }
        }

        /// Soundness: every card yielded comes from a checksum-valid frame present in the input.
        /// So a frame with a bad checksum never yields a card, whatever surrounds it.
        #[test]
        fn em4100_cards_only_from_valid_frames(pieces in proptest::collection::vec(piece(), 0..30)) {
            let input: Vec<u8> = pieces.iter().flat_map(bytes_of).collect();
            let mut p = em();
            for card in cards(&run(&mut p, &input)) {
                prop_assert!(holds_valid_frame(&input, &card));
            }
        }

        /// Resync: valid frames among garbage, truncated frames and bad checksums are all found,
        /// in order, whatever came before each of them.
        #[test]
        fn em4100_finds_every_valid_frame(pieces in proptest::collection::vec(piece(), 0..30)) {
            let input: Vec<u8> = pieces.iter().flat_map(bytes_of).collect();
            let expected: Vec<Uid> = pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Good(d) => Some(Uid::from_bytes(d).unwrap()),
                    _ => None,
                })
                .collect();
            let found = cards(&run(&mut em(), &input));
            let mut rest = found.iter();
            for want in &expected {
                prop_assert!(rest.any(|f| f == want), "{:?} not found in order", want);
            }
        }

        #[test]
        fn em4100_bad_checksum_alone_is_never_a_card(
            d in any::<[u8; 5]>(),
            x in 1..=255u8,
            lower in any::<bool>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
        ) {
            let mut frame = bytes_of(&Piece::BadChecksum(d, x));
            if lower {
                frame.make_ascii_lowercase();
            }
            let mut p = em();
            let mut out = Vec::new();
            for chunk in chunked(&frame, &cuts) {
                out.extend(run(&mut p, &chunk));
            }
            prop_assert_eq!(out, vec![Frame::Rejected(Reject::BadChecksum)]);
        }

        /// Chunking changes nothing: the same frames and the same counters.
        #[test]
        fn chunking_changes_nothing(
            pieces in proptest::collection::vec(piece(), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..20),
        ) {
            let input: Vec<u8> = pieces.iter().flat_map(bytes_of).collect();
            let makers: [fn() -> FrameParser; 3] =
                [em, || line(LineNotation::Hex), || line(LineNotation::Decimal)];
            for make in makers {
                let mut whole = make();
                let expected = run(&mut whole, &input);
                let mut pieces_parser = make();
                let mut got = Vec::new();
                for chunk in chunked(&input, &cuts) {
                    got.extend(run(&mut pieces_parser, &chunk));
                }
                prop_assert_eq!(&got, &expected);
                prop_assert_eq!(pieces_parser.stats(), whole.stats());
            }
        }

        /// ASCII lines: valid lines after garbage lines (any bytes but CR/LF, then a terminator)
        /// are all found, in order.
        #[test]
        fn ascii_lines_resync(
            lines in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 1..16).prop_map(Some),
                    Just(None),
                ],
                0..20,
            ),
            garbage in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..150), 20),
            terminators in proptest::collection::vec(prop_oneof![Just("\n"), Just("\r"), Just("\r\n")], 40),
        ) {
            let mut input = Vec::new();
            let mut expected = Vec::new();
            for (i, l) in lines.iter().enumerate() {
                let junk: Vec<u8> =
                    garbage[i].iter().copied().filter(|b| *b != b'\r' && *b != b'\n').collect();
                input.extend_from_slice(&junk);
                input.extend_from_slice(terminators[2 * i].as_bytes());
                if let Some(bytes) = l {
                    let uid = Uid::from_bytes(bytes).unwrap();
                    input.extend_from_slice(format!(" {} ", hex::encode(bytes)).as_bytes());
                    input.extend_from_slice(terminators[2 * i + 1].as_bytes());
                    expected.push(uid);
                }
            }
            let found = cards(&run(&mut line(LineNotation::Hex), &input));
            let mut rest = found.iter();
            for want in &expected {
                prop_assert!(rest.any(|f| f == want), "{:?} not found in order", want);
            }
        }

        #[test]
        fn decimal_round_trips(n in any::<u64>()) {
            let uid = decimal_uid(&n.to_string()).unwrap();
            let bytes = uid.as_bytes();
            prop_assert!(bytes.len() >= 4 && bytes.len() <= 8);
            let mut be = [0u8; 8];
            be[8 - bytes.len()..].copy_from_slice(bytes);
            prop_assert_eq!(u64::from_be_bytes(be), n);
            // Minimal: no leading zero byte beyond the 4-byte floor.
            prop_assert!(bytes.len() == 4 || bytes[0] != 0);
            prop_assert_eq!(decimal_uid(&format!("000{n}")), Some(uid));
        }
    }
}
