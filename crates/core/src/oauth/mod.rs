//! The OAuth 2.0 authorization server (RFC 6749): the authorization endpoint of the
//! web-server flow with PKCE (RFC 7636), the token endpoint and its grant types, token
//! introspection (RFC 7662), revocation (RFC 7009), metadata (RFC 8414) and JWT access tokens
//! (RFC 9068).
//!
//! Two error families (RFC 6749 §4.1.2.1 and §5.2): the authorization endpoint's
//! [`authorize::AuthorizeError`] is rendered or redirected; everything else answers an
//! [`OAuthError`].

pub mod authorize;
pub mod client_auth;
mod error;
pub mod grants;
pub mod introspect;
pub mod jwt;
pub mod metadata;
mod params;
pub mod pkce;
pub mod revoke;
pub mod scope;
pub mod token;

pub use error::{ErrorCode, OAuthError};
pub use params::Params;
pub use token::{exchange, GrantRequest, TokenRequest, TokenResponse};
