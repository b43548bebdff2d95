//! Reading an archive: directly, or through the running service's query socket (sled allows one
//! process at a time).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::store::{parse_events, Archive};
use super::{ArchiveError, Gap, Stats, SOCKET_NAME};
use crate::core::event::Event;

/// A query to the archive service.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Query {
    Events { door: Option<String> },
    Gaps,
    Stats,
}

/// Reads an archive: through the service's query socket when it runs, else from the store.
pub enum ArchiveReader {
    /// The store, opened by this process.
    Store(Archive),
    /// The running service's query socket.
    Socket(PathBuf),
}

impl ArchiveReader {
    /// Opens the archive in `dir`: the service's socket (`dir/archive.sock`) if it answers,
    /// else the store itself.
    pub fn open(dir: &Path) -> Result<ArchiveReader, ArchiveError> {
        let socket = dir.join(SOCKET_NAME);
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(ArchiveReader::Socket(socket));
        }
        Archive::open_existing(dir).map(ArchiveReader::Store)
    }

    fn ask<T: serde::de::DeserializeOwned>(
        socket: &Path,
        query: &Query,
    ) -> Result<Vec<T>, ArchiveError> {
        let err = |message: String| ArchiveError::Socket {
            path: socket.to_path_buf(),
            message,
        };
        let mut stream =
            std::os::unix::net::UnixStream::connect(socket).map_err(|e| err(e.to_string()))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| err(e.to_string()))?;
        let mut line = serde_json::to_vec(query).map_err(|e| err(e.to_string()))?;
        line.push(b'\n');
        stream.write_all(&line).map_err(|e| err(e.to_string()))?;
        let mut items = Vec::new();
        let mut end = None;
        for l in BufReader::new(stream).lines() {
            let l = l.map_err(|e| err(e.to_string()))?;
            if let Some(rest) = l.strip_prefix("E ") {
                return Err(err(rest.to_string()));
            }
            if let Some(n) = l.strip_prefix("END ") {
                end = n.trim().parse::<usize>().ok();
                break;
            }
            items.push(serde_json::from_str(&l).map_err(|e| err(format!("bad reply: {e}")))?);
        }
        match end {
            Some(n) if n == items.len() => Ok(items),
            _ => Err(err("the reply was cut short".into())),
        }
    }

    /// Every archived event (see [`Archive::events`]).
    pub fn events(&self, door: Option<&str>) -> Result<Vec<Event>, ArchiveError> {
        match self {
            ArchiveReader::Store(a) => a.events(door),
            ArchiveReader::Socket(s) => {
                let raw: Vec<serde_json::Value> = ArchiveReader::ask(
                    s,
                    &Query::Events {
                        door: door.map(str::to_string),
                    },
                )?;
                parse_events(
                    raw.into_iter()
                        .map(|v| serde_json::to_vec(&v).unwrap_or_default())
                        .collect(),
                )
            }
        }
    }

    /// The missing seq ranges (see [`Archive::gaps`]).
    pub fn gaps(&self) -> Result<Vec<Gap>, ArchiveError> {
        match self {
            ArchiveReader::Store(a) => a.gaps(),
            ArchiveReader::Socket(s) => ArchiveReader::ask(s, &Query::Gaps),
        }
    }

    /// Counters and ranges (see [`Archive::stats`]).
    pub fn stats(&self) -> Result<Stats, ArchiveError> {
        match self {
            ArchiveReader::Store(a) => a.stats(),
            ArchiveReader::Socket(s) => ArchiveReader::ask::<Stats>(s, &Query::Stats)?
                .pop()
                .ok_or_else(|| ArchiveError::Socket {
                    path: s.clone(),
                    message: "empty reply".into(),
                }),
        }
    }
}

/// Serves queries on `socket` until `stop`: one JSON query line in, JSON lines out, then
/// `END <count>` (or `E <message>`).
pub(super) async fn serve_queries(
    archive: Arc<Archive>,
    listener: tokio::net::UnixListener,
    stop: CancellationToken,
) {
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => c,
        };
        let Ok((stream, _)) = conn else {
            continue;
        };
        let archive = archive.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = tokio::io::BufReader::new(read).take(4096);
            if reader.read_line(&mut line).await.is_err() {
                return;
            }
            let answer = tokio::task::spawn_blocking(move || answer(&archive, &line)).await;
            let text = match answer {
                Ok(Ok(lines)) => {
                    let n = lines.len();
                    let mut t = lines.join("\n");
                    if n > 0 {
                        t.push('\n');
                    }
                    t.push_str(&format!("END {n}\n"));
                    t
                }
                Ok(Err(e)) => format!("E {}\n", e.replace('\n', " ")),
                Err(e) => format!("E {e}\n"),
            };
            let _ = write.write_all(text.as_bytes()).await;
            let _ = write.shutdown().await;
        });
    }
}

fn answer(archive: &Archive, line: &str) -> Result<Vec<String>, String> {
    let query: Query = serde_json::from_str(line.trim()).map_err(|e| format!("bad query: {e}"))?;
    fn json<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap_or_default()
    }
    match query {
        Query::Events { door } => Ok(archive
            .raw_events(door.as_deref())
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|raw| String::from_utf8_lossy(&raw).replace('\n', " "))
            .collect()),
        Query::Gaps => Ok(archive
            .gaps()
            .map_err(|e| e.to_string())?
            .iter()
            .map(json)
            .collect()),
        Query::Stats => Ok(vec![json(&archive.stats().map_err(|e| e.to_string())?)]),
    }
}
