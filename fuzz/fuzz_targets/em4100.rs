//! Fuzzes the EM4100 / RDM6300 frame parser (`pintu_core::frames`).
//!
//! The first input byte picks a chunk size; the rest is the byte stream. Checked: no panic; the
//! same frames and counters whether fed whole or in chunks; counters match the frames; and every
//! card comes from a checksum-valid frame present in the input (so a bad checksum never yields
//! a card).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pintu_core::card::Uid;
use pintu_core::frames::{Em4100Parser, Frame, FrameParser, ETX, STX};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, input)) = data.split_first() else {
        return;
    };
    let mut whole = FrameParser::Em4100(Em4100Parser::new());
    let mut frames = Vec::new();
    whole.feed(input, |f| frames.push(f));

    let mut chunked = FrameParser::Em4100(Em4100Parser::new());
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
    for frame in &frames {
        if let Frame::Card(uid) = frame {
            assert_eq!(uid.as_bytes().len(), 5);
            assert!(holds_valid_frame(input, uid), "card without a valid frame");
        }
    }
});

/// Reference check: STX, 12 hex digits (data = `uid`, then their XOR), up to two CR/LF, ETX.
fn holds_valid_frame(input: &[u8], uid: &Uid) -> bool {
    (0..input.len()).any(|i| {
        let Some(w) = input.get(i..) else {
            return false;
        };
        if w.len() < 14 || w[0] != STX {
            return false;
        }
        let mut bytes = [0u8; 6];
        for (k, pair) in w[1..13].chunks_exact(2).enumerate() {
            match (hex(pair[0]), hex(pair[1])) {
                (Some(h), Some(l)) => bytes[k] = (h << 4) | l,
                _ => return false,
            }
        }
        let xor = bytes[..5].iter().fold(0, |a, b| a ^ b);
        if bytes[..5] != *uid.as_bytes() || xor != bytes[5] {
            return false;
        }
        let trailer = w[13..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        trailer <= 2 && w.get(13 + trailer) == Some(&ETX)
    })
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
