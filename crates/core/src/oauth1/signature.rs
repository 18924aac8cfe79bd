//! OAuth 1.0a signatures (RFC 5849 §3.4): the signature base string built exactly as §3.4.1
//! builds it, and the `HMAC-SHA1`, `HMAC-SHA256` and `PLAINTEXT` methods. Pure functions of
//! the request's parts: no HTTP types, no clock.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

/// A signature method (RFC 5849 §3.4; `HMAC-SHA256` as the community extension names it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureMethod {
    HmacSha1,
    HmacSha256,
    /// Only over TLS or loopback: it sends the secrets themselves (§3.4.4).
    Plaintext,
}

impl SignatureMethod {
    /// The method an `oauth_signature_method` value names.
    pub fn parse(s: &str) -> Option<SignatureMethod> {
        match s {
            "HMAC-SHA1" => Some(SignatureMethod::HmacSha1),
            "HMAC-SHA256" => Some(SignatureMethod::HmacSha256),
            "PLAINTEXT" => Some(SignatureMethod::Plaintext),
            _ => None,
        }
    }
}

/// Percent-encodes as RFC 5849 §3.6 asks: every byte of the UTF-8 form except the unreserved
/// characters (`ALPHA`, `DIGIT`, `-`, `.`, `_`, `~`), as `%XX` with upper-case hex digits.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The base string URI (§3.4.1.2): scheme and host in lower case, the port only when it is
/// not the scheme's default, the path as sent (no query, no fragment).
pub fn base_string_uri(scheme: &str, host: &str, port: Option<u16>, path: &str) -> String {
    let scheme = scheme.to_ascii_lowercase();
    let host = host.to_ascii_lowercase();
    let default = matches!(
        (scheme.as_str(), port),
        ("http", Some(80)) | ("https", Some(443))
    );
    let path = if path.is_empty() { "/" } else { path };
    match port {
        Some(p) if !default => format!("{scheme}://{host}:{p}{path}"),
        _ => format!("{scheme}://{host}{path}"),
    }
}

/// The normalized request parameters (§3.4.1.3.2): every parameter of the query, the
/// `Authorization` header (without `realm`) and a form-encoded body, already decoded, except
/// `oauth_signature`; each name and value encoded, sorted by name then value, joined as
/// `name=value` pairs with `&`. Repeated parameters all count.
pub fn normalized_parameters<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut pairs: Vec<(String, String)> = params
        .into_iter()
        .filter(|(k, _)| *k != "oauth_signature")
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signature base string (§3.4.1.1): the upper-case method, the base string URI and the
/// normalized parameters, each encoded, joined with `&`.
pub fn base_string(method: &str, base_uri: &str, normalized: &str) -> String {
    format!(
        "{}&{}&{}",
        encode(&method.to_ascii_uppercase()),
        encode(base_uri),
        encode(normalized)
    )
}

/// Keys an HMAC of `message` with `key` (HMAC takes keys of any length).
macro_rules! hmac_of {
    ($digest:ty, $key:expr, $message:expr) => {{
        #[allow(
            clippy::expect_used,
            reason = "HMAC takes keys of any length: this cannot fail"
        )]
        let mut mac = <Hmac<$digest> as Mac>::new_from_slice($key.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update($message.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }};
}

/// The signature of `base` with the client's and the token's shared secrets (§3.4.2–§3.4.4);
/// the token secret is empty while there is no token (the request token request).
pub fn sign(
    method: SignatureMethod,
    base: &str,
    client_secret: &str,
    token_secret: &str,
) -> String {
    let key = format!("{}&{}", encode(client_secret), encode(token_secret));
    match method {
        SignatureMethod::HmacSha1 => STANDARD.encode(hmac_of!(sha1::Sha1, key, base)),
        SignatureMethod::HmacSha256 => STANDARD.encode(hmac_of!(sha2::Sha256, key, base)),
        SignatureMethod::Plaintext => key,
    }
}

/// Whether `presented` is the signature of `base` with these secrets, compared in constant
/// time.
pub fn verify(
    method: SignatureMethod,
    base: &str,
    client_secret: &str,
    token_secret: &str,
    presented: &str,
) -> bool {
    let expected = sign(method, base, client_secret, token_secret);
    expected.as_bytes().ct_eq(presented.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5849 §3.4.1's worked example: the request's parameters from its query, its
    /// `Authorization` header and its form body, and the base string the RFC prints.
    #[test]
    fn the_rfc_5849_example_base_string() {
        let params = [
            // query: b5=%3D%253D&a3=a&c%40=&a2=r%20b
            ("b5", "=%3D"),
            ("a3", "a"),
            ("c@", ""),
            ("a2", "r b"),
            // header (realm excluded, oauth_signature excluded by the normalization)
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
            ("oauth_signature", "bYT5CMsGcbgUdFHObYMEfcx6bsw="),
            // body: c2&a3=2+q
            ("c2", ""),
            ("a3", "2 q"),
        ];
        let normalized = normalized_parameters(params);
        assert_eq!(
            normalized,
            "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2\
             &oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201\
             &oauth_token=kkk9d7dh3k39sjv7"
        );
        let uri = base_string_uri("HTTP", "EXAMPLE.COM", Some(80), "/request");
        assert_eq!(uri, "http://example.com/request");
        assert_eq!(
            base_string("post", &uri, &normalized),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
             %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
             key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
             ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
             9d7dh3k39sjv7"
        );
    }

    /// RFC 5849 §1.2's request token request, signed with the client secret alone. (The
    /// RFC prints a signature whose last characters differ, a known erratum; this is the
    /// value HMAC-SHA1 gives, as Python's hmac module computes it too.)
    #[test]
    fn the_rfc_5849_request_token_example() {
        let params = [
            ("oauth_consumer_key", "dpf43f3p2l4k3l03"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131200"),
            ("oauth_nonce", "wIjqoS"),
            ("oauth_callback", "http://printer.example.com/ready"),
        ];
        let uri = base_string_uri("https", "photos.example.net", Some(443), "/initiate");
        let base = base_string("POST", &uri, &normalized_parameters(params));
        assert_eq!(
            base,
            "POST&https%3A%2F%2Fphotos.example.net%2Finitiate&oauth_callback%3Dhttp%253A%252F\
             %252Fprinter.example.com%252Fready%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oau\
             th_nonce%3DwIjqoS%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D13713\
             1200"
        );
        let sig = sign(SignatureMethod::HmacSha1, &base, "kd94hf93k423kf44", "");
        assert_eq!(sig, "74KNZJeDHnMBp0EMJ9ZHt/XKycU=");
    }

    /// §3.4.1.2's examples: default ports dropped, others kept.
    #[test]
    fn base_string_uris() {
        assert_eq!(
            base_string_uri("https", "www.example.net", Some(8080), "/"),
            "https://www.example.net:8080/"
        );
        assert_eq!(
            base_string_uri("https", "www.example.net", Some(443), "/a"),
            "https://www.example.net/a"
        );
        assert_eq!(
            base_string_uri("http", "Example.com", None, ""),
            "http://example.com/"
        );
    }

    #[test]
    fn encoding_keeps_only_the_unreserved_characters() {
        assert_eq!(encode("Ladies + Gentlemen"), "Ladies%20%2B%20Gentlemen");
        assert_eq!(encode("An encoded string!"), "An%20encoded%20string%21");
        assert_eq!(encode("Dogs, Cats & Mice"), "Dogs%2C%20Cats%20%26%20Mice");
        assert_eq!(encode("☃"), "%E2%98%83");
        assert_eq!(encode("-._~aZ09"), "-._~aZ09");
    }

    /// PLAINTEXT is the two encoded secrets (§3.4.4); the HMAC methods key with them.
    #[test]
    fn methods_and_verification() {
        let base = "GET&http%3A%2F%2Fexample.com%2F&a%3D1";
        assert_eq!(
            sign(
                SignatureMethod::Plaintext,
                base,
                "kd94hf93k423kf44",
                "pfkkdhi9sl3r4s00"
            ),
            "kd94hf93k423kf44&pfkkdhi9sl3r4s00"
        );
        assert_eq!(sign(SignatureMethod::Plaintext, base, "a b", ""), "a%20b&");
        for m in [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256] {
            let s = sign(m, base, "cs", "ts");
            assert!(verify(m, base, "cs", "ts", &s));
            assert!(!verify(m, base, "cs", "other", &s));
            assert!(!verify(m, &format!("{base}x"), "cs", "ts", &s));
        }
        // Python's hmac module as the oracle.
        assert_eq!(
            sign(SignatureMethod::HmacSha1, base, "cs", "ts"),
            "OE4zXVNGgiNcHLsJpK5e20ESdD0="
        );
        assert_eq!(
            sign(SignatureMethod::HmacSha256, base, "cs", "ts"),
            "7HQ0k7J11u98C88k/6cJs0ENBl+ldV0izY+oXqZ56Yg="
        );
        assert_eq!(
            SignatureMethod::parse("HMAC-SHA1"),
            Some(SignatureMethod::HmacSha1)
        );
        assert_eq!(SignatureMethod::parse("RSA-SHA1"), None);
    }
}
