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

/// A redirect URI an application may register (RFC 6749 §3.1.2, RFC 9700 §2.1, RFC 8252
/// §7.3): `https`, or `http` on a loopback address; no fragment, no credentials, and only
/// visible ASCII, so what is registered is exactly what is compared. `Err` says why not.
pub fn redirect_uri(u: &str) -> Result<(), &'static str> {
    if !u.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be visible ASCII (percent-encode other characters; no spaces)");
    }
    if u.contains('#') {
        return Err("must not have a fragment");
    }
    let url = url::Url::parse(u).map_err(|_| "must be an absolute URI")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password");
    }
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some(host)) if loopback(&host) => Ok(()),
        ("http", Some(_)) => {
            Err("must be https, or http only on a loopback address (127.0.0.1, [::1], localhost)")
        }
        _ => Err("must be an https URI (or http on a loopback address)"),
    }
}

fn loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
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
    fn redirect_uris_are_https_or_loopback_http() {
        for ok in [
            "https://app.example.com/callback?x=1",
            "http://127.0.0.1:9/cb",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
        ] {
            assert_eq!(redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "/callback",
            "callback",
            "https://a.example/cb#f",
            "https://a.example/c b",
            "https://a.example/c\0b",
            "http://a.example/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "com.example.app:/oauth",
            "https://user:pw@a.example/cb",
            "https://bücher.example/cb",
        ] {
            assert!(redirect_uri(bad).is_err(), "{bad}");
        }
    }
}
