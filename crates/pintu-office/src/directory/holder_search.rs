//! The holders' search index and the queries that read it.
//!
//! Every holder write (create, update, register import) stores the holder's normalised words —
//! of the name, the id, the unit and the NIP — in `holder_terms` ([`index_holder`], in the
//! write's transaction). A search word matches a holder when it is the **prefix** of one of
//! those words, case- and accent-insensitive; several words must all match. A word becomes a
//! range over the term b-tree (`term >= 'bud' AND term < 'bue'`), which both engines answer
//! from a plain index (`LIKE 'bud%'` would not on PostgreSQL with a non-C collation), so a
//! search costs what it matches, not the size of the table.
//!
//! Planning (measured at 100,000 holders, `BENCHMARKS.md`): the query is driven by the search
//! word that matches the fewest terms. When that word is selective, the matching holders are
//! fetched and sorted; when every word is common (a name half the office shares), the holders
//! are read in list order and tested, so the first pages stop early instead of sorting the
//! whole match.

use std::collections::BTreeSet;

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

use super::holders::{holder_of, Holder, HOLDER_COLUMNS};
use super::{DirectoryError, Page, Paged};
use crate::db::{Db, DbError, Tx};

/// Most words a search may have.
pub const MAX_WORDS: usize = 8;

/// Above this many matching terms a word is "common" and the plan reads holders in list order.
const SELECTIVE: i64 = 5_000;

/// The normalised words of `text`: lowercased, accents folded (`é` → `e`), split at every
/// character that is not a letter or a digit.
pub fn words(text: &str) -> Vec<String> {
    let folded: String = text
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// What a holder is found by: the words of their name, id, unit and NIP.
pub fn terms_of(h: &Holder) -> BTreeSet<String> {
    [
        h.name.as_str(),
        h.key.as_str(),
        h.unit.as_str(),
        h.nip.as_deref().unwrap_or(""),
    ]
    .into_iter()
    .flat_map(words)
    .collect()
}

/// The character after `c` in the terms' order, `None` past the last one (`z`).
fn next_char(c: char) -> Option<char> {
    match c {
        // Terms hold no punctuation: after the digits come the letters.
        '9' => Some('a'),
        'z' => None,
        // Other letters (not folded to a-z) in code point order, as SQLite compares them.
        c => char::from_u32(c as u32 + 1),
    }
}

/// The least string above every word that starts with `prefix` (`bud` → `bue`, `abz` → `ac`),
/// staying within letters and digits so every collation orders it as bytes do; `None` when
/// there is none (`zz`).
fn upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = next_char(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Replaces holder `h`'s search terms (in the write's transaction; every holder write calls it).
pub(crate) async fn index_holder(tx: &mut Tx, h: &Holder) -> Result<(), DirectoryError> {
    sqlx::query("DELETE FROM holder_terms WHERE holder_id = $1")
        .bind(&h.id)
        .execute(&mut **tx)
        .await?;
    insert_terms(
        tx,
        terms_of(h).into_iter().map(|t| (t, h.id.clone())).collect(),
    )
    .await?;
    Ok(())
}

/// Inserts `(term, holder_id)` rows, many to a statement.
async fn insert_terms(tx: &mut Tx, rows: Vec<(String, String)>) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(200) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "INSERT INTO holder_terms (term, holder_id) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (term, id) in chunk {
            query = query.bind(term.clone()).bind(id.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Indexes every holder that has no search term yet: the holders that were there before
/// migration `0007_holder_search` (run by `Db::migrate`), or rows written by bulk SQL. Returns
/// how many holders it indexed.
pub async fn index_missing(db: &Db) -> Result<u64, DbError> {
    let mut tx = db.begin_write().await?;
    let rows = sqlx::query(
        "SELECT id, holder_key, name, unit, nip FROM holders h \
         WHERE NOT EXISTS (SELECT 1 FROM holder_terms t WHERE t.holder_id = h.id)",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut terms = Vec::new();
    for r in &rows {
        let id: String = r.try_get(0)?;
        let key: String = r.try_get(1)?;
        let name: String = r.try_get(2)?;
        let unit: String = r.try_get(3)?;
        let nip: Option<String> = r.try_get(4)?;
        let mut own = BTreeSet::new();
        for text in [
            key.as_str(),
            name.as_str(),
            unit.as_str(),
            nip.as_deref().unwrap_or(""),
        ] {
            own.extend(words(text));
        }
        terms.extend(own.into_iter().map(|t| (t, id.clone())));
    }
    insert_terms(&mut tx, terms).await?;
    tx.commit().await?;
    Ok(rows.len() as u64)
}

/// A statement built with its bound text (`$n` numbered as pushed).
#[derive(Default)]
struct Sql {
    text: String,
    binds: Vec<String>,
}

impl Sql {
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    fn bind(&mut self, value: String) -> &mut Self {
        self.binds.push(value);
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }

    /// `alias.term` starts with `word`: the index range, and `LIKE` on top so the answer is
    /// exact whatever the collation (the word holds only letters and digits: no wildcard).
    fn starts_with(&mut self, alias: &str, word: &str) -> &mut Self {
        self.push(&format!("{alias}.term >= "))
            .bind(word.to_string());
        if let Some(upper) = upper_bound(word) {
            self.push(&format!(" AND {alias}.term < ")).bind(upper);
        }
        self.push(&format!(" AND {alias}.term LIKE "))
            .bind(format!("{word}%"))
    }

    /// `EXISTS` a term of holder `id_column` that starts with `word`.
    fn has_word(&mut self, id_column: &str, word: &str, n: usize) -> &mut Self {
        let alias = format!("w{n}");
        self.push(&format!(
            "EXISTS (SELECT 1 FROM holder_terms {alias} WHERE {alias}.holder_id = {id_column} AND "
        ))
        .starts_with(&alias, word)
        .push(")")
    }

    fn query(&self) -> Query<'_, Any, AnyArguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.text.clone()));
        for b in &self.binds {
            query = query.bind(b.clone());
        }
        query
    }
}

/// How many terms start with each of `words`, counted up to just past [`SELECTIVE`].
async fn term_counts(db: &Db, words: &[String]) -> Result<Vec<i64>, DirectoryError> {
    let mut sql = Sql::default();
    sql.push("SELECT ");
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(SELECT COUNT(*) FROM (SELECT 1 FROM holder_terms t WHERE ")
            .starts_with("t", word)
            .push(&format!(" LIMIT {}) c{i})", SELECTIVE + 1));
    }
    let row = sql.query().fetch_one(db.pool()).await?;
    (0..words.len())
        .map(|i| row.try_get::<i64, _>(i).map_err(DirectoryError::from))
        .collect()
}

/// Holders matching every word of `words` (non-empty), page `page` in register order.
pub(crate) async fn search(
    db: &Db,
    page: &Page,
    words: &[String],
) -> Result<Paged<Holder>, DirectoryError> {
    search_planned(db, page, words, SELECTIVE).await
}

/// [`search`], a word being common above `selective` matching terms (the tests force each
/// plan; the answer never depends on it).
pub(crate) async fn search_planned(
    db: &Db,
    page: &Page,
    words: &[String],
    selective: i64,
) -> Result<Paged<Holder>, DirectoryError> {
    let counts = term_counts(db, words).await?;
    // Drive by the rarest word; the others are tested per holder.
    let (driver, &fewest) = counts
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| **n)
        .ok_or_else(|| DirectoryError::Conflict("a search needs a word".into()))?;
    let others: Vec<(usize, &String)> = words
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != driver)
        .collect();

    let mut total = Sql::default();
    total
        .push("SELECT COUNT(DISTINCT t.holder_id) FROM holder_terms t WHERE ")
        .starts_with("t", &words[driver]);
    for (i, word) in &others {
        total.push(" AND ").has_word("t.holder_id", word, *i);
    }
    let total: i64 = total.query().fetch_one(db.pool()).await?.try_get(0)?;

    let mut items = Vec::new();
    if total > page.offset() {
        // The page's ids first, then their rows: PostgreSQL computes the select list (the
        // card count) of every row it skips for OFFSET.
        let mut rows = Sql::default();
        rows.push(&format!(
            "SELECT {HOLDER_COLUMNS} FROM holders WHERE id IN (SELECT id FROM holders WHERE "
        ));
        if fewest <= selective {
            rows.push("id IN (SELECT t.holder_id FROM holder_terms t WHERE ")
                .starts_with("t", &words[driver]);
            for (i, word) in &others {
                rows.push(" AND ").has_word("t.holder_id", word, *i);
            }
            rows.push(")");
        } else {
            for (i, word) in words.iter().enumerate() {
                if i > 0 {
                    rows.push(" AND ");
                }
                rows.has_word("holders.id", word, i);
            }
        }
        // The limit and offset are checked integers (`PageQuery::check`), not user text.
        rows.push(&format!(
            " ORDER BY position, holder_key LIMIT {} OFFSET {}) ORDER BY position, holder_key",
            page.per_page,
            page.offset()
        ));
        items = rows
            .query()
            .fetch_all(db.pool())
            .await?
            .iter()
            .map(holder_of)
            .collect::<Result<_, _>>()?;
    }
    Ok(Paged {
        items,
        page: page.page,
        per_page: page.per_page,
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lowercased_folded_and_split() {
        assert_eq!(
            words("  Siti NURHAYATI-Rahayu "),
            ["siti", "nurhayati", "rahayu"]
        );
        assert_eq!(words("Désirée Ñoño Müller"), ["desiree", "nono", "muller"]);
        assert_eq!(words("holder-42.b_7"), ["holder", "42", "b", "7"]);
        assert_eq!(words("% _ -"), Vec::<String>::new());
        assert_eq!(words("198501012010011001"), ["198501012010011001"]);
    }

    #[test]
    fn the_upper_bound_is_the_next_prefix_within_letters_and_digits() {
        assert_eq!(upper_bound("bud").as_deref(), Some("bue"));
        assert_eq!(upper_bound("ab9").as_deref(), Some("aba"));
        assert_eq!(upper_bound("19").as_deref(), Some("1a"));
        assert_eq!(upper_bound("abz").as_deref(), Some("ac"));
        assert_eq!(upper_bound("azz").as_deref(), Some("b"));
        assert_eq!(upper_bound("zz"), None);
        // Every word with the prefix is in [prefix, upper), a word without it is not.
        for (prefix, inside, outside) in [
            ("bud", "budiman", "bue"),
            ("ab9", "ab99", "aba"),
            ("abz", "abzzz", "ac"),
            ("19", "1999", "1a"),
        ] {
            let upper = upper_bound(prefix).unwrap();
            assert!(
                prefix <= inside && inside < upper.as_str(),
                "{prefix} {inside}"
            );
            assert!(outside >= upper.as_str(), "{prefix} {outside}");
        }
    }
}
