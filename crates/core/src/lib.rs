//! grantry's protocol and domain logic.
//!
//! Nothing here knows about HTTP or SQL: handlers in `grantry-server` turn requests into calls
//! of these functions, which are given a store, the request's time (`now`, read once per
//! request from a [`Clock`]) and the validated [`Settings`], and return domain results or
//! protocol errors. HTTP status codes are chosen in `grantry-server` alone.
//!
//! # Layout
//!
//! The folders are the architecture; each uses only the ones listed after it (and the
//! top-level modules), never one before it:
//!
//! - [`oauth`]: the authorization server: the authorization endpoint, the token endpoint and
//!   its `grants/` (authorization_code, refresh_token, client_credentials), PKCE, client
//!   authentication, introspection, revocation, metadata, JWT access tokens
//!   (RFC 6749, 7636, 7662, 7009, 8414, 9068).
//! - [`oauth1`]: OAuth 1.0a (RFC 5849): its signature base string and signature methods.
//! - [`platform`]: the protected APIs' rules: `data` (lists, contacts), `events` (Event
//!   API), `xmlapi/` (the XML API's parser, operations and rendering).
//! - [`gate`]: a protected request's credential resolved to one [`gate::Principal`], and
//!   the RFC 6750 errors.
//! - [`apikeys`]: API users' secret keys as credentials.
//! - [`sessions`]: signed-in browser sessions of UI users, and CSRF tokens.
//! - [`admin`]: org-admin operations, one file per noun (orgs, users, applications, account
//!   access, API keys, audit log).
//! - [`store`]: the storage contracts, one narrow trait per concern; [`Store`] is their
//!   supertrait. The records they take and return are here and in [`model`].
//! - [`credential`]: minting, digests, derivation, prefixes and pods; human passwords.
//!
//! Top-level modules hold what every folder uses: [`model`] (domain records),
//! [`permissions`] (API grants, also the OAuth scopes), [`clock`], [`settings`], [`limits`]
//! (limits on guessing secrets), [`mail`]
//! (messages and the [`mail::Mailer`] trait), [`validate`] (shared input rules).
//!
//! The design, how a request flows and where to add a new API, grant type or credential
//! kind, is in the repository's `docs/architecture.md`.

pub mod admin;
pub mod apikeys;
pub mod clock;
pub mod credential;
pub mod gate;
pub mod limits;
pub mod mail;
pub mod model;
pub mod oauth;
pub mod oauth1;
pub mod permissions;
pub mod platform;
pub mod sessions;
pub mod settings;
pub mod store;
pub mod validate;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use permissions::{Grant, GrantSet};
pub use settings::Settings;
pub use store::{Store, StoreError};
