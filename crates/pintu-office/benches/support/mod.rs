//! What the office benches share: the bench-or-smoke switch, the `RESULT` line, accounts and a
//! running service on a loopback listener.

// Each bench uses part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;

use pintu_office::api::{self, AppState};
use pintu_office::audit::AuditActor;
use pintu_office::auth::accounts::{self, Account, NewAccount};
use pintu_office::auth::Role;
use pintu_office::db::Db;
use pintu_office::secret::ServiceKey;

/// Every bench account's password.
pub const PASSWORD: &str = "kopi tubruk pagi hari";

/// Whether `cargo bench` runs it (`--bench`), rather than `cargo test --benches` (a smoke run).
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// A figure as `scripts/test` and BENCHMARKS.md read it.
pub fn result_line(figure: &str, value: &str, target: &str, verdict: &str) {
    println!("RESULT\t{figure}\t{value}\t{target}\t{verdict}");
}

/// Creates account `name` holding `role` (password [`PASSWORD`]).
pub async fn account(db: &Db, key: &ServiceKey, name: &str, role: Role) -> Account {
    accounts::create(
        db,
        key,
        &AuditActor::cli("bench"),
        NewAccount {
            username: name.into(),
            nip: None,
            display_name: name.into(),
            password: PASSWORD.into(),
            roles: BTreeSet::from([role]),
        },
    )
    .await
    .expect("account")
}

/// Serves the API of `state` on a loopback port until the process ends; returns its base URL.
pub async fn serve(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(pintu_office::server::serve(
        listener,
        None,
        api::router(state),
        std::future::pending(),
    ));
    base
}
