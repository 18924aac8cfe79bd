//! Input rules shared by the admin operations, the protocols and the platform's data: what
//! text a backend can store, what a name or an e-mail address may be.

/// Text every backend can store: PostgreSQL's `text` cannot hold U+0000, so a NUL is refused
/// before any store call, in the protocol's own format, on both backends alike.
pub fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// A syntactically plausible e-mail address (one `@`, non-empty parts, a dot in the domain,
/// no spaces or control characters), trimmed; `None` if it is not one.
pub fn email(email: &str) -> Option<String> {
    let e = email.trim();
    let domain_ok =
        |d: &str| d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@');
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && domain_ok(d));
    ok.then(|| e.to_string())
}

/// An identifier-like name (organizations, usernames): 1–64 characters of letters, digits,
/// `-`, `_`, `.` and `@`.
pub fn name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// A redirect URI (RFC 6749 §3.1.2): absolute, without a fragment or white space.
pub fn redirect_uri(u: &str) -> bool {
    let scheme_ok = u.split_once(':').is_some_and(|(s, rest)| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            && rest.starts_with('/')
    });
    scheme_ok
        && !u.contains('#')
        && !u.chars().any(|c| c.is_whitespace() || c.is_control())
        && url::Url::parse(u).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            email(" ann@example.com ").as_deref(),
            Some("ann@example.com")
        );
        for bad in [
            "ann",
            "@example.com",
            "ann@example",
            "ann@.com",
            "a b@c.d",
            "a@b@c.d",
        ] {
            assert_eq!(email(bad), None, "{bad}");
        }
    }

    #[test]
    fn redirect_uris_are_absolute_without_fragment() {
        assert!(redirect_uri("https://app.example.com/callback?x=1"));
        assert!(redirect_uri("com.example.app:/oauth"));
        for bad in [
            "/callback",
            "https://a.example/cb#f",
            "https://a.example/c b",
            "callback",
            "https://a.example/c\0b",
        ] {
            assert!(!redirect_uri(bad), "{bad}");
        }
    }
}
