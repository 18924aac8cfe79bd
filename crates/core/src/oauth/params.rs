//! The parameters of a request to the token endpoint family (RFC 6749 §3.2; RFC 7662 §2.1,
//! RFC 7009 §2.1 take the same form).

use super::OAuthError;
use crate::validate::storable;

/// Form parameters, each sent at most once. A parameter sent without a value is treated as
/// omitted (RFC 6749 §3.1).
#[derive(Clone, Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// `invalid_request` naming the first parameter sent more than once, or one that carries
    /// a NUL character (which no parameter may: nothing is looked up with it).
    pub fn parse(pairs: Vec<(String, String)>) -> Result<Params, OAuthError> {
        if let Some((k, _)) = pairs.iter().find(|(k, v)| !storable(k) || !storable(v)) {
            let name = if storable(k) { k.as_str() } else { "name" };
            return Err(OAuthError::invalid_request(format!(
                "parameter {name} contains a NUL character"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !seen.insert(k.as_str())) {
            return Err(OAuthError::invalid_request(format!(
                "parameter {k} was sent more than once"
            )));
        }
        Ok(Params(pairs))
    }

    /// The parameter's value, if it was sent with one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}
