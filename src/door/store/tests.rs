//! Unit tests of the store, one module per concern, each against a temp dir.
