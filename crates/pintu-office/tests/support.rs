//! A running office for the tests: the real router and listener on a loopback port over a
//! fresh database, and an HTTP client that keeps its cookie and CSRF token like a browser.
// Each test module uses part of the kit.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::sync::Arc;

use pintu_office::api::{self, AppState};
use pintu_office::audit::AuditActor;
use pintu_office::auth::accounts::{self, Account, NewAccount};
use pintu_office::auth::Role;
use pintu_office::config::Settings;
use pintu_office::testing::TestDb;
use serde_json::Value;

/// The password of every test account.
pub const PASSWORD: &str = "kopi tubruk pagi hari";

/// The service, running.
pub struct Office {
    /// Its database.
    pub t: TestDb,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// What the handlers share.
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The settings of a test office (SQLite or PostgreSQL URL given).
pub fn settings(url: &str) -> Settings {
    let text = format!(
        r#"
[database]
url = "{url}"
[security]
secret_key_file = "/nonexistent/secret.key"
[site]
name = "Diskominfo Test"
threshold = 2
"#
    );
    Settings::from_text(std::path::Path::new("office.toml"), &text).expect("test settings")
}

impl Office {
    /// Starts the service over `t`.
    pub async fn start(t: TestDb) -> Office {
        let state = AppState {
            db: t.db.clone(),
            key: Arc::new(t.key.clone()),
            settings: Arc::new(settings(&t.url)),
            https: false,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = api::router(state.clone());
        tokio::spawn(pintu_office::server::serve(
            listener,
            None,
            app,
            async move {
                let _ = stopped.await;
            },
        ));
        Office {
            t,
            base,
            state,
            stop: Some(stop),
        }
    }

    /// A second instance of the service on the same database, with its own pool and listener
    /// (as a second `pintu-office` behind a proxy would be). Returns its base URL.
    pub async fn second_instance(&self) -> (String, tokio::sync::oneshot::Sender<()>) {
        let db = pintu_office::db::Db::connect(&self.t.url, 4)
            .await
            .expect("second pool");
        let state = AppState {
            db,
            key: Arc::new(self.t.key.clone()),
            settings: Arc::new(settings(&self.t.url)),
            https: false,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(pintu_office::server::serve(
            listener,
            None,
            api::router(state),
            async move {
                let _ = stopped.await;
            },
        ));
        (base, stop)
    }

    /// Creates an account holding `roles` (password [`PASSWORD`]).
    pub async fn account(&self, username: &str, roles: &[Role]) -> Account {
        accounts::create(
            &self.t.db,
            &self.t.key,
            &AuditActor::cli("test"),
            NewAccount {
                username: username.into(),
                nip: None,
                display_name: format!("Test {username}"),
                password: PASSWORD.into(),
                roles: roles.iter().copied().collect::<BTreeSet<_>>(),
            },
        )
        .await
        .expect("create test account")
    }

    /// A client logged in as `username`.
    pub async fn login(&self, username: &str) -> Client {
        login_at(&self.base, username).await
    }
}

/// A client logged in as `username` at the service on `base`.
pub async fn login_at(base: &str, username: &str) -> Client {
    let client = Client::new(base);
    let (status, body) = client
        .post(
            "/api/v1/session",
            serde_json::json!({"login": username, "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 200, "login {username}: {body}");
    client.set_csrf(body["csrf_token"].as_str().unwrap());
    client
}

impl Drop for Office {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A browser-like client: keeps cookies, sends the CSRF token on state changes.
pub struct Client {
    base: String,
    http: reqwest::Client,
    csrf: std::sync::Mutex<Option<String>>,
}

impl Client {
    /// A client with no session.
    pub fn new(base: &str) -> Client {
        // reqwest is built without a default crypto provider (rustls with ring, as the service).
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        Client {
            base: base.into(),
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            csrf: std::sync::Mutex::new(None),
        }
    }

    /// The same browser (cookies, CSRF token) talking to the service on `base`.
    pub fn at(&self, base: &str) -> Client {
        Client {
            base: base.into(),
            http: self.http.clone(),
            csrf: std::sync::Mutex::new(self.csrf.lock().unwrap().clone()),
        }
    }

    /// Sets the CSRF token to send.
    pub fn set_csrf(&self, token: &str) {
        *self.csrf.lock().unwrap() = Some(token.into());
    }

    /// Forgets the CSRF token (to test the refusal).
    pub fn drop_csrf(&self) {
        *self.csrf.lock().unwrap() = None;
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let csrf = self.csrf.lock().unwrap().clone();
        let request = match csrf {
            Some(token) => request.header("x-csrf-token", token),
            None => request,
        };
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, body)
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    /// POST with extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(request).await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }
}
