//! OAuth 1.0a (RFC 5849), the protocol older integrations use (docs/architecture.md, OAuth
//! 1.0a): its signatures ([`signature`]), the checks every signed request passes
//! ([`request`]), and the three-legged flow ([`flow`]). The gate turns a signed request to a
//! protected API into a principal with [`request::verify`].
//!
//! Nothing here does HTTP or reads a clock: the handler describes the request as a
//! [`request::SignedRequest`], and `now` is a parameter.

pub mod error;
pub mod flow;
pub mod request;
pub mod signature;

pub use error::{OAuth1Error, Problem};
pub use request::SignedRequest;
