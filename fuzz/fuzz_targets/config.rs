//! Fuzzes the config parser (`pintu::door::config::Config::parse`, both phases).
//!
//! The path is in a directory that does not exist, so file references (card key, TLS files)
//! fail to read and are reported like any other error. Checked: no panic; every error names
//! the file, and a line, when given, is a line of the input.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pintu::door::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/nonexistent-pintu-fuzz/pintu.toml");
    if let Err(errors) = Config::parse(path, text) {
        assert!(!errors.0.is_empty());
        let lines = text.lines().count().max(1);
        for e in &errors.0 {
            assert_eq!(e.file, path);
            assert!(!e.message.is_empty());
            if let Some(line) = e.line {
                assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}: {e}");
            }
        }
    }
});
