//! Fuzzes the ASCII-line parser (`pintu_core::frames`), in hex and in decimal notation.
//!
//! The first input byte picks a chunk size; the rest is the byte stream. Checked: no panic; the
//! same frames and counters whether fed whole or in chunks; counters match the frames; UIDs have
//! a sane length (hex: 1 to 16 bytes; decimal: 4 to 8 bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pintu_core::card::MAX_UID_LEN;
use pintu_core::frames::{AsciiLineParser, Frame, FrameParser, LineNotation};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    for notation in [LineNotation::Hex, LineNotation::Decimal] {
        let mut whole = FrameParser::AsciiLine(AsciiLineParser::new(notation));
        let mut frames = Vec::new();
        whole.feed(input, |f| frames.push(f));

        let mut chunked = FrameParser::AsciiLine(AsciiLineParser::new(notation));
        let mut again = Vec::new();
        for piece in input.chunks(usize::from(chunk).max(1)) {
            chunked.feed(piece, |f| again.push(f));
        }
        assert_eq!(frames, again);
        assert_eq!(whole.stats(), chunked.stats());

        let stats = whole.stats();
        assert_eq!(
            (stats.cards + stats.bad_checksums + stats.bad_frames) as usize,
            frames.len()
        );
        assert_eq!(stats.bad_checksums, 0);
        for frame in &frames {
            if let Frame::Card(uid) = frame {
                let len = uid.as_bytes().len();
                match notation {
                    LineNotation::Hex => assert!((1..=MAX_UID_LEN).contains(&len)),
                    LineNotation::Decimal => assert!((4..=8).contains(&len)),
                }
            }
        }
    }
});
