//! grantry's protocol and domain logic.
//!
//! Nothing here knows about HTTP or SQL: handlers in `grantry-server` turn requests into calls
//! of these functions, which are given a [`store::Store`] and a [`clock::Clock`] and return
//! domain results or protocol errors. Time is always a parameter, never read from the system.

pub mod admin;
pub mod apikey;
pub mod audit;
pub mod authn;
pub mod authorize;
pub mod clock;
pub mod code_grant;
pub mod credential;
pub mod error;
pub mod events;
pub mod grant;
pub mod introspect;
pub mod jwt;
mod key_grant;
pub mod mail;
pub mod model;
pub mod password;
pub mod platform;
mod refresh_grant;
pub mod session;
pub mod settings;
pub mod store;
pub mod token;
pub mod xmlapi;

pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use error::StoreError;
pub use grant::{Grant, GrantSet};
pub use settings::Settings;
pub use store::Store;
