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
mod tests;
