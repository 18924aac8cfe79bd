//! OAuth 1.0a (RFC 5849), the protocol older integrations use: so far its signatures
//! (`signature`); the provider's endpoints and the signed-request gate build on them.

pub mod signature;
