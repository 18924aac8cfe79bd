//! The token endpoint's grant types, one file each. Access tokens issued under an account
//! access are made by `minter::Minter`, derived from the refresh token they come from.

pub mod authorization_code;
pub mod client_credentials;
mod minter;
pub mod refresh_token;
