-- The holders' search index (`src/directory/holder_search.rs`): each holder's normalised search
-- terms (lowercased, accents folded, one row per word of the name, the id, the unit and the
-- NIP), so a search is a range scan of a plain b-tree on both engines (word prefix:
-- `term >= 'bud' AND term < 'bue'`) instead of `LIKE '%bud%'` over every row.
-- Terms hold only [0-9a-z] and other letters or digits, never punctuation: the prefix ranges are
-- computed within that alphabet, where PostgreSQL's collations and SQLite's bytes agree.
-- The rows of holders that exist already are filled in Rust when the migrations run
-- (`Db::migrate` calls `holder_search::index_missing`): SQL cannot fold accents or split words
-- portably.
CREATE TABLE holder_terms (
    term TEXT NOT NULL,
    holder_id TEXT NOT NULL REFERENCES holders (id),
    PRIMARY KEY (term, holder_id)
);
-- A holder's terms, to replace them when the holder changes and to test a second word.
CREATE INDEX holder_terms_holder ON holder_terms (holder_id, term);

-- The list's order (`ORDER BY position, holder_key`) straight from an index: a page no longer
-- sorts the table.
CREATE INDEX holders_order ON holders (position, holder_key);
