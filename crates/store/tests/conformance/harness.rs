//! A fresh database per test on each backend, removed afterwards (also when the test fails),
//! and the fixtures the tests share.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{resume_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use sqlx::{Connection, Executor, PgConnection};
use uuid::Uuid;

use grantry_core::credential::{self, Digest, Kind};
use grantry_core::model::{
    AccessTokenRecord, AccountAccess, AppId, Application, Contact, List, Org, OrgId, Role, User,
    UserId, UserKind,
};
use grantry_core::store::audit::NewAudit;
use grantry_core::store::{
    Consent, NewAccessToken, NewApplication, NewAuthCode, NewUser, RefreshOutcome, Reissue,
    Rotation,
};
use grantry_core::{GrantSet, Store, Timestamp};
use grantry_store::{PgStore, SqliteStore};

/// The PostgreSQL server the suite creates its databases on.
pub const DATABASE_URL_VAR: &str = "GRANTRY_TEST_DATABASE_URL";

const MISSING_DATABASE_URL: &str = "GRANTRY_TEST_DATABASE_URL is not set: set it to a \
    PostgreSQL server URL on which the tests may create databases \
    (e.g. postgres://postgres@127.0.0.1:5432/postgres), or run ./scripts/test";

/// A fixed instant (2026-11-18): the store never reads the clock, so neither do the tests.
pub const T0: Timestamp = Timestamp(1_795_000_000_000);

pub const HOUR: Duration = Duration::from_secs(3600);

/// Runs `body` on a store backed by a new SQLite file in a new temporary directory.
pub async fn with_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    with_sqlite_pair(|store, _| body(store), false).await
}

/// Runs `body` on two stores opened on one new SQLite file, as two processes would (the
/// second is `None` unless `twin`).
pub async fn with_sqlite_pair<F, Fut>(body: F, twin: bool)
where
    F: FnOnce(Arc<dyn Store>, Option<Arc<dyn Store>>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!("grantry-conformance-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let outcome = AssertUnwindSafe(async {
        let open = || async {
            SqliteStore::open(&dir.join("grantry.db"))
                .await
                .unwrap_or_else(|e| panic!("opening SQLite in {}: {e}", dir.display()))
        };
        let store = open().await;
        let other = if twin { Some(open().await) } else { None };
        let result = AssertUnwindSafe(body(
            Arc::new(store.clone()),
            other.clone().map(|o| Arc::new(o) as Arc<dyn Store>),
        ))
        .catch_unwind()
        .await;
        store.close().await;
        if let Some(o) = other {
            o.close().await;
        }
        result
    })
    .catch_unwind()
    .await
    .and_then(|r| r);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// Runs `body` on a store backed by a new PostgreSQL database, dropped afterwards.
pub async fn with_postgres<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    with_postgres_pair(|store, _| body(store), false).await
}

/// Runs `body` on two stores connected to one new PostgreSQL database, as two instances
/// would be (the second is `None` unless `twin`).
pub async fn with_postgres_pair<F, Fut>(body: F, twin: bool)
where
    F: FnOnce(Arc<dyn Store>, Option<Arc<dyn Store>>) -> Fut,
    Fut: Future<Output = ()>,
{
    with_postgres_database(|store, other, _| body(store, other), twin).await
}

/// Runs `body` on a store backed by a new PostgreSQL database, with the database's URL (for a
/// connection of the test's own, as another instance would hold).
pub async fn with_postgres_url<F, Fut>(body: F)
where
    F: FnOnce(Arc<dyn Store>, String) -> Fut,
    Fut: Future<Output = ()>,
{
    with_postgres_database(|store, _, url| body(store, url), false).await
}

async fn with_postgres_database<F, Fut>(body: F, twin: bool)
where
    F: FnOnce(Arc<dyn Store>, Option<Arc<dyn Store>>, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(server) = postgres_server() else {
        return;
    };
    let name = format!("grantry_t_{}", Uuid::new_v4().simple());
    let mut url =
        url::Url::parse(&server).unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is not a URL: {e}"));
    url.set_path(&format!("/{name}"));
    admin_statement(&server, &format!("CREATE DATABASE {name}")).await;

    let outcome = AssertUnwindSafe(async {
        let open = || async {
            PgStore::connect(url.as_str())
                .await
                .unwrap_or_else(|e| panic!("connecting to the test database {name}: {e}"))
        };
        let store = open().await;
        let other = if twin { Some(open().await) } else { None };
        let result = AssertUnwindSafe(body(
            Arc::new(store.clone()),
            other.clone().map(|o| Arc::new(o) as Arc<dyn Store>),
            url.to_string(),
        ))
        .catch_unwind()
        .await;
        store.close().await;
        if let Some(o) = other {
            o.close().await;
        }
        result
    })
    .catch_unwind()
    .await
    .and_then(|r| r);
    admin_statement(
        &server,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    )
    .await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// Set to `1` (as ./scripts/test does) to make a missing `GRANTRY_TEST_DATABASE_URL` a failure
/// instead of a skipped PostgreSQL half.
pub const REQUIRE_POSTGRES_VAR: &str = "GRANTRY_TEST_REQUIRE_POSTGRES";

/// The PostgreSQL server to create test databases on, or `None` when none is named and none is
/// required: then the PostgreSQL half of every test is skipped, which is said once.
fn postgres_server() -> Option<String> {
    static SKIPPING: std::sync::Once = std::sync::Once::new();
    match std::env::var(DATABASE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if std::env::var(REQUIRE_POSTGRES_VAR).is_ok_and(|v| v.trim() == "1") => {
            panic!("{MISSING_DATABASE_URL} ({REQUIRE_POSTGRES_VAR}=1 requires it)")
        }
        _ => {
            SKIPPING.call_once(|| {
                use std::io::Write;
                // straight to stderr: the test harness captures eprintln! of passing tests
                let _ = writeln!(
                    std::io::stderr(),
                    "\nnote: {DATABASE_URL_VAR} is not set: the PostgreSQL half of every \
                     conformance test is skipped (SQLite only). Set it to a PostgreSQL server \
                     URL on which the tests may create databases (e.g. \
                     postgres://postgres@127.0.0.1:5432/postgres), or run ./scripts/test.\n"
                );
            });
            None
        }
    }
}

/// Runs one statement on the server's maintenance database.
async fn admin_statement(server: &str, sql: &str) {
    let mut conn = PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", grantry_store::redact(server)));
    conn.execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

// ----- fixtures -----

pub fn audit(org: Option<OrgId>, at: Timestamp, action: &'static str) -> NewAudit {
    NewAudit::new(org, at, "tester", action, format!("test:{action}"))
}

/// How many of `org`'s audit events record `action`.
pub async fn count_audit(store: &dyn Store, org: OrgId, action: &str) -> usize {
    store
        .audit_events(org, None)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.action == action)
        .count()
}

pub fn ui_user(username: &str, role: Role, grants: GrantSet) -> NewUser {
    NewUser {
        username: username.to_string(),
        email: format!("{username}@example.com"),
        kind: UserKind::Ui,
        role,
        grants,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string()),
        key_id: None,
        must_change_password: false,
        created_at: T0,
    }
}

pub fn api_user(username: &str, grants: GrantSet) -> NewUser {
    NewUser {
        username: username.to_string(),
        email: format!("{username}@example.com"),
        kind: UserKind::Api,
        role: Role::User,
        grants,
        password_hash: None,
        key_id: Some(credential::new_id()),
        must_change_password: false,
        created_at: T0,
    }
}

/// An org named `name` with its principal org admin `<name>-admin`.
pub async fn make_org(store: &dyn Store, name: &str) -> (Org, User) {
    let admin = ui_user(&format!("{name}-admin"), Role::OrgAdmin, GrantSet::all());
    store
        .create_org(name, admin, audit(None, T0, "organization.created"))
        .await
        .unwrap()
}

pub fn new_app(org: OrgId, name: &str, scopes: GrantSet, public: bool) -> NewApplication {
    NewApplication {
        org_id: org,
        client_id: credential::new_id(),
        name: name.to_string(),
        description: format!("{name}, for the conformance suite"),
        scopes,
        redirect_uris: vec![
            "https://app.example.com/callback".to_string(),
            "http://127.0.0.1:8765/cb".to_string(),
        ],
        public,
        rotate_refresh_tokens: false,
        token_format: grantry_core::model::TokenFormat::Opaque,
        created_at: T0,
    }
}

/// A confidential application of `org` with one client secret.
pub async fn make_app(store: &dyn Store, org: OrgId, name: &str) -> Application {
    let secret = credential::mint(Kind::ClientSecret, "test").digest;
    store
        .create_application(
            new_app(org, name, GrantSet::all(), false),
            Some(secret.into()),
            audit(Some(org), T0, "application.created"),
        )
        .await
        .unwrap()
}

/// An org with an application, a UI user and the account access binding them.
pub struct Granted {
    pub org: Org,
    pub admin: User,
    pub user: User,
    pub app: Application,
    pub access: AccountAccess,
    pub refresh_token: Digest,
    /// The id of the refresh token the account access was created with.
    pub refresh_id: i64,
}

pub async fn granted(store: &dyn Store) -> Granted {
    let (org, admin) = make_org(store, "acme").await;
    let grants = GrantSet::parse_scope("lists:read contacts:read").unwrap();
    let user = store
        .create_user(
            org.id,
            ui_user("alice", Role::User, grants),
            audit(Some(org.id), T0, "user.created"),
        )
        .await
        .unwrap();
    let app = make_app(store, org.id, "crm-sync").await;
    let refresh_token = credential::mint(Kind::RefreshToken, "test").digest;
    let access = store
        .create_account_access(
            org.id,
            app.id,
            user.id,
            Some(admin.id),
            refresh_token,
            audit(Some(org.id), T0, "account_access.created"),
        )
        .await
        .unwrap();
    let refresh_id = store
        .refresh_token(&refresh_token)
        .await
        .unwrap()
        .unwrap()
        .id;
    Granted {
        org,
        admin,
        user,
        app,
        access,
        refresh_token,
        refresh_id,
    }
}

/// An access token to issue at `at`, living 4 hours, with a digest of its own.
pub fn fresh_token(at: Timestamp) -> NewAccessToken {
    NewAccessToken {
        digest: credential::mint(Kind::AccessToken, "test").digest,
        nonce: credential::nonce().to_vec(),
        scopes: GrantSet::parse_scope("lists:read").unwrap(),
        issued_at: at,
        expires_at: at.plus(4 * HOUR),
        kid: None,
    }
}

/// The re-issue rule at its simplest: issue only if there is no token yet, else reuse it.
pub fn issue_if_none(newest: Option<&AccessTokenRecord>) -> Reissue {
    match newest {
        None => Reissue::Issue,
        Some(_) => Reissue::Reuse,
    }
}

/// Issues an access token of the fixture's account access at `at`, whatever exists already.
pub async fn issue(store: &dyn Store, g: &Granted, at: Timestamp) -> AccessTokenRecord {
    let outcome = store
        .refresh_access_token(
            g.refresh_id,
            &|_: Option<&AccessTokenRecord>| Reissue::Issue,
            fresh_token(at),
            audit(Some(g.org.id), at, "access_token.issued"),
        )
        .await
        .unwrap();
    match outcome {
        RefreshOutcome::Issued(r) => r,
        other => panic!("expected Issued, got {other:?}"),
    }
}

/// Contact columns from name/value pairs.
pub fn columns(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Adds a contact with one column, `FIRST` = its address.
pub async fn add(store: &dyn Store, org: OrgId, list: i64, email: &str) -> Contact {
    store
        .add_contact(org, list, email, &columns(&[("FIRST", email)]), T0)
        .await
        .unwrap()
}

pub async fn list_named(store: &dyn Store, org: OrgId, name: &str) -> List {
    store.create_list(org, name, T0).await.unwrap()
}

// ----- fixtures of the web-server flow -----

/// A UI user of `org` (reading lists and contacts) with no account access yet.
pub async fn make_user(store: &dyn Store, org: OrgId, username: &str) -> User {
    let grants = GrantSet::parse_scope("lists:read contacts:read").unwrap();
    store
        .create_user(
            org,
            ui_user(username, Role::User, grants),
            audit(Some(org), T0, "user.created"),
        )
        .await
        .unwrap()
}

/// Issues an access token from the refresh token `refresh` at `at`, whatever exists already;
/// returns the token's digest with its record.
pub async fn issue_from(
    store: &dyn Store,
    org: OrgId,
    refresh: i64,
    at: Timestamp,
) -> (Digest, AccessTokenRecord) {
    let fresh = fresh_token(at);
    let digest = fresh.digest;
    let outcome = store
        .refresh_access_token(
            refresh,
            &|_: Option<&AccessTokenRecord>| Reissue::Issue,
            fresh,
            audit(Some(org), at, "access_token.issued"),
        )
        .await
        .unwrap();
    match outcome {
        RefreshOutcome::Issued(r) => (digest, r),
        other => panic!("expected Issued, got {other:?}"),
    }
}

/// A user's consent to `scope` with a new refresh token (`consent.refresh_token`) and its
/// first access token (`consent.access_token`).
pub fn consent(org: OrgId, app: AppId, user: UserId, scope: &str, code: Option<i64>) -> Consent {
    Consent {
        org,
        app,
        user,
        scopes: GrantSet::parse_scope(scope).unwrap(),
        refresh_token: credential::mint(Kind::RefreshToken, "test").digest,
        code,
        access_token: fresh_token(T0),
    }
}

/// An authorization code created at `at`, living 10 minutes, with a PKCE challenge.
pub fn new_auth_code(org: OrgId, app: AppId, user: UserId, at: Timestamp) -> NewAuthCode {
    NewAuthCode {
        digest: credential::mint(Kind::AuthorizationCode, "test").digest,
        org_id: org,
        app_id: app,
        user_id: user,
        redirect_uri: "https://app.example.com/callback".to_string(),
        redirect_uri_given: true,
        scopes: GrantSet::parse_scope("lists:read").unwrap(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_string()),
        created_at: at,
        expires_at: at.plus(Duration::from_secs(600)),
    }
}

/// Rotates refresh token `old` into the successor `digest` (derived with `nonce`) at `at`,
/// with the successor's first access token; the successor's id, `None` if `old` no longer
/// rotates.
pub async fn rotate(
    store: &dyn Store,
    old: i64,
    digest: Digest,
    nonce: Vec<u8>,
    at: Timestamp,
) -> Option<i64> {
    let rotation = Rotation {
        old,
        digest,
        nonce,
        at,
        access_token: fresh_token(at),
        audit: audit(None, at, "access_token.issued"),
    };
    store
        .rotate_refresh_token(rotation)
        .await
        .unwrap()
        .map(|(id, _)| id)
}
