//! The protocol rules on their own: crafted inputs in, decisions out, at a fixed instant,
//! with no server and no database (one file per rule).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail the test by panicking"
)]

mod fixtures;

mod api_keys;
mod parsers;
mod pkce;
mod redirect_uri;
mod reissue;
mod rotation;
