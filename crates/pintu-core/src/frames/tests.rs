//! Unit tests of the serial frame parsers: tables, resynchronisation, chunking properties.

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
