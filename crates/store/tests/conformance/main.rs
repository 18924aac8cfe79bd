//! The store conformance suite: every test states one rule of the [`grantry_core::Store`]
//! contract (the doc comments on the trait) and runs on both backends, each on a database of
//! its own: a fresh SQLite file, and a fresh PostgreSQL database on the server named by
//! `GRANTRY_TEST_DATABASE_URL` (see `harness`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test by panicking"
)]

/// Writes one conformance test, run once per backend:
/// `conformance!(name, |store| async move { ... });` expands to a module `name` with the
/// tests `sqlite` and `postgres`, each calling the body with its `Arc<dyn Store>`.
macro_rules! conformance {
    ($name:ident, |$store:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::harness::with_sqlite(|$store: std::sync::Arc<dyn grantry_core::Store>| {
                    $body
                })
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::harness::with_postgres(
                    |$store: std::sync::Arc<dyn grantry_core::Store>| $body,
                )
                .await;
            }
        }
    };
}

/// Like `conformance!`, with two stores on one database (two processes on one SQLite file,
/// two instances on one PostgreSQL database): `conformance_twins!(name, |a, b| ...)`.
macro_rules! conformance_twins {
    ($name:ident, |$a:ident, $b:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                $crate::harness::with_sqlite_pair(
                    |$a: std::sync::Arc<dyn grantry_core::Store>, b| {
                        let $b = b.expect("a second store");
                        $body
                    },
                    true,
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                $crate::harness::with_postgres_pair(
                    |$a: std::sync::Arc<dyn grantry_core::Store>, b| {
                        let $b = b.expect("a second store");
                        $body
                    },
                    true,
                )
                .await;
            }
        }
    };
}

mod access;
mod accounts;
mod admin_api;
mod api_users;
mod audit;
mod cache;
mod console;
mod data;
mod events;
mod harness;
mod lockouts;
mod oauth;
mod oauth1;
mod oauth_races;
mod races;
mod retention;
mod tokens;
mod xml_sessions;
