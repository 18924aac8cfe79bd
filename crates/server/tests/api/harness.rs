//! Test harness: the app in-process on port 0, on a fresh SQLite file or a fresh PostgreSQL
//! database per test, with a manual clock and a mailer that records what it sends.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use secrecy::ExposeSecret;
use sqlx::Connection;

use grantry_core::admin::{self, AppInput, Ctx, UserInput};
use grantry_core::mail::{Mailer, Message};
use grantry_core::model::{Role, UserKind};
use grantry_core::settings::ReissuePolicy;
use grantry_core::{Clock, GrantSet, ManualClock, Settings, Store, Timestamp};
use grantry_server::{AppState, Limits};

pub const START: Timestamp = Timestamp(1_795_000_000_000);

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Records mail instead of sending it.
#[derive(Default)]
pub struct Outbox(pub Mutex<Vec<Message>>);

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, msg: Message) -> Result<(), String> {
        self.0.lock().unwrap().push(msg);
        Ok(())
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    pub settings: Settings,
    /// The mail the server and the tests' own admin calls sent.
    pub outbox: Arc<Outbox>,
    server: tokio::task::JoinHandle<()>,
}

/// An API user's secret key as `key generate` shows it.
#[derive(Clone, Debug)]
pub struct Key {
    pub key_id: String,
    pub slot: u8,
    pub secret: String,
    pub bearer: String,
}

/// An application with account access for one user, ready to trade its refresh token.
pub struct Integration {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn cx(&self) -> Ctx<'_> {
        Ctx {
            store: &*self.store,
            now: self.clock.now(),
            settings: &self.settings,
            actor: "test",
            request_id: None,
            idempotency: None,
        }
    }

    /// A second server on the same database and clock, minting credentials for `pod_id`, as
    /// another pod's deployment would.
    pub async fn other_pod(&self, pod_id: &str) -> TestApp {
        let settings = Settings {
            pod_id: pod_id.into(),
            pod_name: pod_id.into(),
            ..self.settings.clone()
        };
        start_with_clock(
            self.store.clone(),
            settings,
            self.clock.clone(),
            Limits::default(),
        )
        .await
    }

    /// A second server on the same database and clock whose state `shape` changed (e.g.
    /// with an operator token), as a restart with another configuration would serve.
    pub async fn restarted_with(&self, shape: impl FnOnce(AppState) -> AppState) -> TestApp {
        let (store, clock) = (self.store.clone(), self.clock.clone());
        start_shaped(
            store,
            self.settings.clone(),
            clock,
            Limits::default(),
            shape,
        )
        .await
    }

    /// One round of the server's signing-key schedule (`grantry_server::tasks`) at the
    /// test's time, as the running server would make it.
    pub async fn keep_keys(&self) {
        let rotation = self.settings.tokens.key_rotation;
        grantry_core::oauth::jwt::ensure_keys(&*self.store, self.clock.now(), rotation)
            .await
            .unwrap();
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub async fn org(&self, name: &str) {
        admin::create_org(
            &self.cx(),
            name,
            "admin",
            &format!("admin@{name}.example.com"),
        )
        .await
        .unwrap();
    }

    pub async fn ui_user(&self, org: &str, username: &str, role: Role, grants: GrantSet) {
        admin::add_user(
            &self.cx(),
            org,
            UserInput {
                username: username.into(),
                email: format!("{username}@{org}.example.com"),
                kind: UserKind::Ui,
                role,
                grants,
                password: None,
            },
        )
        .await
        .unwrap();
    }

    pub async fn app(&self, org: &str, name: &str, scopes: Option<GrantSet>) -> (String, String) {
        let input = AppInput {
            name: name.into(),
            description: format!("{name} description"),
            redirect_uris: vec![],
            scopes,
            public: false,
            rotate_refresh_tokens: false,
            token_format: grantry_core::model::TokenFormat::Opaque,
        };
        let (app, secret) = admin::add_application(&self.cx(), org, input)
            .await
            .unwrap();
        (app.client_id, secret.unwrap().expose_secret().to_string())
    }

    pub async fn access(&self, org: &str, client_id: &str, username: &str) -> String {
        admin::add_account_access(&self.cx(), &*self.outbox, org, client_id, username, "admin")
            .await
            .unwrap()
            .refresh_token
            .expose_secret()
            .to_string()
    }

    /// Org `org` with an application that has account access for its admin.
    pub async fn integration(&self, org: &str) -> Integration {
        self.org(org).await;
        let (client_id, client_secret) = self.app(org, "Sync", None).await;
        let refresh_token = self.access(org, &client_id, "admin").await;
        Integration {
            client_id,
            client_secret,
            refresh_token,
        }
    }

    /// An API user with `grants` and one secret key; returns the key.
    pub async fn api_user(&self, org: &str, username: &str, grants: &str) -> Key {
        admin::add_user(
            &self.cx(),
            org,
            UserInput {
                username: username.into(),
                email: format!("{username}@{org}.example.com"),
                kind: UserKind::Api,
                role: Role::User,
                grants: GrantSet::parse_scope(grants).unwrap(),
                password: None,
            },
        )
        .await
        .unwrap();
        self.key(org, username).await
    }

    /// Generates a secret key for an API user.
    pub async fn key(&self, org: &str, username: &str) -> Key {
        let k = grantry_core::admin::api_keys::generate(&self.cx(), org, username)
            .await
            .unwrap();
        Key {
            key_id: k.key_id,
            slot: k.slot,
            secret: k.secret.expose_secret().to_string(),
            bearer: k.bearer.expose_secret().to_string(),
        }
    }

    /// `GET /rest/databases` with a raw Authorization header; the status.
    pub async fn get_lists(&self, authorization: &str) -> u16 {
        self.http
            .get(self.url("/rest/databases"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A UI user with a known password.
    pub async fn ui_user_with_password(
        &self,
        org: &str,
        username: &str,
        grants: GrantSet,
        password: &str,
    ) {
        admin::add_user(
            &self.cx(),
            org,
            UserInput {
                username: username.into(),
                email: format!("{username}@{org}.example.com"),
                kind: UserKind::Ui,
                role: Role::User,
                grants,
                password: Some(password.to_string().into()),
            },
        )
        .await
        .unwrap();
    }

    /// An application with redirect URIs; `public` ones have no secret.
    pub async fn client(
        &self,
        org: &str,
        name: &str,
        redirect: &str,
        public: bool,
    ) -> (String, Option<String>) {
        let input = AppInput {
            name: name.into(),
            description: format!("{name} reads your lists"),
            redirect_uris: vec![redirect.to_string()],
            scopes: None,
            public,
            rotate_refresh_tokens: false,
            token_format: grantry_core::model::TokenFormat::Opaque,
        };
        let (app, secret) = admin::add_application(&self.cx(), org, input)
            .await
            .unwrap();
        (app.client_id, secret.map(|s| s.expose_secret().to_string()))
    }

    /// Opens the sign-in page for `query` as a browser would: the pre-session cookie it sets
    /// (`name=value`) and the form's hidden CSRF token bound to it.
    pub async fn login_form(&self, query: &str) -> (String, String) {
        let r = self
            .browser()
            .get(self.url(&format!("/oauth/authorize?{query}")))
            .send()
            .await
            .unwrap();
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
            .find(|c| c.starts_with("grantry_login="))
            .expect("the sign-in page sets its pre-session cookie");
        let page = r.text().await.unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).expect("the sign-in form's csrf") + marker.len();
        let end = page[start..].find('"').unwrap() + start;
        (cookie, page[start..end].to_string())
    }

    /// Posts the sign-in form for `query` as a browser that was shown it.
    pub async fn post_login(
        &self,
        query: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let (cookie, csrf) = self.login_form(query).await;
        self.browser()
            .post(self.url("/oauth/authorize/login"))
            .header("cookie", cookie)
            .form(&[
                ("username", username),
                ("password", password),
                ("query", query),
                ("csrf", &csrf),
            ])
            .send()
            .await
            .unwrap()
    }

    /// A client that does not follow redirects, as a browser's address bar would show them.
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// `POST /oauth/token` with form fields.
    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn refresh(&self, i: &Integration) -> reqwest::Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &i.client_id),
            ("client_secret", &i.client_secret),
            ("refresh_token", &i.refresh_token),
        ])
        .await
    }

    /// A fresh access token for the integration.
    pub async fn access_token(&self, i: &Integration) -> String {
        let r = self.refresh(i).await;
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }

    pub async fn audit_count(&self, org: &str, action: &str) -> usize {
        admin::audit_log(&self.cx(), org, None)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == action)
            .count()
    }

    /// How many occurrences `org`'s audit events of `action` stand for (merged refusals
    /// count each).
    pub async fn audit_occurrences(&self, org: &str, action: &str) -> i64 {
        admin::audit_log(&self.cx(), org, None)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == action)
            .map(|e| e.count)
            .sum()
    }

    pub async fn xml(&self, token: Option<&str>, body: &str) -> (u16, String, Option<String>) {
        let authorization = token.map(|t| format!("Bearer {t}"));
        self.xml_with(authorization.as_deref(), body).await
    }

    /// `POST /XMLAPI` with a raw `Authorization` header: status, body and challenge.
    pub async fn xml_with(
        &self,
        authorization: Option<&str>,
        body: &str,
    ) -> (u16, String, Option<String>) {
        let mut req = self
            .http
            .post(self.url("/XMLAPI"))
            .header("content-type", "text/xml;charset=utf-8")
            .body(body.to_string());
        if let Some(a) = authorization {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let challenge = r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        (status, r.text().await.unwrap(), challenge)
    }

    pub async fn rest(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn test_settings(policy: ReissuePolicy) -> Settings {
    let mut s = Settings {
        pod_id: "test-1".into(),
        pod_name: "test-1".into(),
        pods: vec![grantry_core::settings::Pod {
            id: "eu-1".into(),
            name: "EU 1".into(),
            url: "https://api-eu-1.example.com".into(),
        }],
        ..Settings::default()
    };
    s.tokens.reissue_policy = policy;
    s.oauth1.key = Some(grantry_core::credential::DeriveKey::random());
    s
}

async fn start(store: Arc<dyn Store>, settings: Settings, limits: Limits) -> TestApp {
    start_with_clock(store, settings, Arc::new(ManualClock::new(START)), limits).await
}

async fn start_with_clock(
    store: Arc<dyn Store>,
    settings: Settings,
    clock: Arc<ManualClock>,
    limits: Limits,
) -> TestApp {
    start_shaped(store, settings, clock, limits, |s| s).await
}

async fn start_shaped(
    store: Arc<dyn Store>,
    settings: Settings,
    clock: Arc<ManualClock>,
    limits: Limits,
    shape: impl FnOnce(AppState) -> AppState,
) -> TestApp {
    // As `grantry serve` does before it listens: the JWT signing keys are ready.
    let rotation = settings.tokens.key_rotation;
    grantry_core::oauth::jwt::ensure_keys(&*store, clock.now(), rotation)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let outbox = Arc::new(Outbox::default());
    let state = shape(
        AppState::new(store.clone(), clock.clone(), settings.clone())
            .with_limits(limits)
            .with_mailer(outbox.clone()),
    );
    let server = tokio::spawn(async move {
        grantry_server::serve(listener, state, std::future::pending())
            .await
            .unwrap();
    });
    TestApp {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        store,
        clock,
        settings,
        outbox,
        server,
    }
}

/// The PostgreSQL server to create test databases on (`GRANTRY_TEST_DATABASE_URL`), or `None`
/// when none is named: then the PostgreSQL half of every test is skipped, which is said once.
/// With `GRANTRY_TEST_REQUIRE_POSTGRES=1` (as ./scripts/test sets it) a missing URL panics.
fn pg_server_url() -> Option<String> {
    static SKIPPING: std::sync::Once = std::sync::Once::new();
    match std::env::var("GRANTRY_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var("GRANTRY_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v.trim() == "1") => {
            panic!("set GRANTRY_TEST_DATABASE_URL to a PostgreSQL server URL (postgres://postgres@127.0.0.1:5432/postgres) or run ./scripts/test (GRANTRY_TEST_REQUIRE_POSTGRES=1 requires it)")
        }
        _ => {
            SKIPPING.call_once(|| {
                use std::io::Write;
                // straight to stderr: the test harness captures eprintln! of passing tests
                let _ = writeln!(
                    std::io::stderr(),
                    "\nnote: GRANTRY_TEST_DATABASE_URL is not set: the PostgreSQL half of every \
                     API test is skipped (SQLite only). Set it to a PostgreSQL server URL on \
                     which the tests may create databases (e.g. \
                     postgres://postgres@127.0.0.1:5432/postgres), or run ./scripts/test.\n"
                );
            });
            None
        }
    }
}

fn with_database(server: &str, db: &str) -> String {
    let mut u = url::Url::parse(server).unwrap();
    u.set_path(&format!("/{db}"));
    u.to_string()
}

/// Runs `body` against a fresh app on `backend`, then removes the database, even on panic.
pub async fn run<F, Fut>(backend: Backend, policy: ReissuePolicy, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    run_limited(backend, policy, Limits::default(), body).await
}

/// [`run`] with the server's connection limits set to `limits`.
pub async fn run_limited<F, Fut>(backend: Backend, policy: ReissuePolicy, limits: Limits, body: F)
where
    F: FnOnce(TestApp) -> Fut,
    Fut: Future<Output = ()>,
{
    let name = format!("grantry_it_{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).unwrap();
            let store = grantry_store::SqliteStore::open(&dir.join("grantry.db"))
                .await
                .unwrap();
            let app = start(Arc::new(store), test_settings(policy), limits).await;
            let outcome = AssertUnwindSafe(body(app)).catch_unwind().await;
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(p) = outcome {
                std::panic::resume_unwind(p);
            }
        }
        Backend::Postgres => {
            let Some(server) = pg_server_url() else {
                return;
            };
            let mut admin = sqlx::PgConnection::connect(&server)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "connecting to GRANTRY_TEST_DATABASE_URL ({}): {e}; start PostgreSQL or run ./scripts/test",
                        grantry_store::redact(&server)
                    )
                });
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .unwrap();
            let store = grantry_store::PgStore::connect(&with_database(&server, &name))
                .await
                .unwrap();
            let pool = store.clone();
            let app = start(Arc::new(store), test_settings(policy), limits).await;
            let outcome = AssertUnwindSafe(body(app)).catch_unwind().await;
            pool.close().await;
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await;
            if let Err(p) = outcome {
                std::panic::resume_unwind(p);
            }
        }
    }
}

/// Declares a test that runs once on SQLite and once on PostgreSQL:
/// `both!(name, |app| async move { ... });` (optionally `both!(name, policy, |app| ...)`, or
/// `both!(name, limits = L, |app| ...)` for a server with connection limits `L`).
#[macro_export]
macro_rules! both {
    ($name:ident, limits = $limits:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::harness::run_limited(
                    $crate::harness::Backend::Sqlite,
                    grantry_core::settings::ReissuePolicy::Reuse,
                    $limits,
                    $body,
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::harness::run_limited(
                    $crate::harness::Backend::Postgres,
                    grantry_core::settings::ReissuePolicy::Reuse,
                    $limits,
                    $body,
                )
                .await;
            }
        }
    };
    ($name:ident, $body:expr) => {
        both!($name, grantry_core::settings::ReissuePolicy::Reuse, $body);
    };
    ($name:ident, $policy:expr, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::harness::run($crate::harness::Backend::Sqlite, $policy, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::harness::run($crate::harness::Backend::Postgres, $policy, $body).await;
            }
        }
    };
}
