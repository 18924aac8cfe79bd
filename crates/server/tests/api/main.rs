//! HTTP integration tests: the whole app in-process on port 0, every test on SQLite and on
//! PostgreSQL (one integration-test binary, modules per surface).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test by panicking"
)]

mod harness;

mod admin_api;
mod authorize;
mod console;
mod events;
mod guessing;
mod jwt;
mod keys;
mod limits;
mod nul;
mod oauth1;
mod props;
mod protected;
mod rejections;
mod rest;
mod sessions;
mod sweeper;
mod token;
mod xml;
