//! A signed request as RFC 5849 §3 reads it: its protocol parameters, from the
//! `Authorization: OAuth` header, the form body or the query (§3.5), and the checks every
//! signed request passes (§3.2): parameters, consumer, token, signature, timestamp and nonce.

use std::collections::HashSet;

use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};

use super::error::{OAuth1Error, Problem};
use super::signature::{self, SignatureMethod};
use crate::clock::Timestamp;
use crate::credential::{self, DeriveKey, Digest, Kind};
use crate::limits::{Attempt, Door, Subject};
use crate::model::{Application, UserKind};
use crate::settings::Settings;
use crate::store::{NewAudit, OAuth1TokenRecord, RequestTokenRecord, Store};
use crate::validate::storable;

/// The longest nonce accepted: a nonce is stored until its timestamp leaves the window.
pub const MAX_NONCE: usize = 128;

/// What a handler knows of a request, for its signature.
pub struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The base string URI (§3.4.1.2, [`signature::base_string_uri`]).
    pub base_uri: String,
    /// The query string, undecoded (without `?`).
    pub query: &'a str,
    /// The `Authorization` header, when it uses the OAuth scheme.
    pub authorization: Option<&'a str>,
    /// The body, when it is `application/x-www-form-urlencoded` (§3.4.1.3.1).
    pub form_body: Option<&'a [u8]>,
    /// Whether the request came over TLS or from loopback: only then may PLAINTEXT, which
    /// sends the secrets themselves, be used (§3.4.4).
    pub confidential: bool,
}

/// Whether an `Authorization` header uses the OAuth scheme (§3.5.1).
pub fn is_oauth_header(value: &str) -> bool {
    let scheme = value.trim_start().split([' ', '\t']).next().unwrap_or("");
    scheme.eq_ignore_ascii_case("oauth")
}

/// Whether a request carries OAuth 1.0a protocol parameters in its query or form body (a
/// signed request without the header, §3.5.2 and §3.5.3).
pub fn carries_signature(query: &str, form_body: Option<&[u8]>) -> bool {
    let signed =
        |pairs: form_urlencoded::Parse<'_>| pairs.into_iter().any(|(k, _)| k == "oauth_signature");
    signed(form_urlencoded::parse(query.as_bytes()))
        || form_body.is_some_and(|b| signed(form_urlencoded::parse(b)))
}

fn rejected(d: impl Into<String>) -> OAuth1Error {
    OAuth1Error::new(Problem::ParameterRejected, d)
}

/// The parameters of an `Authorization: OAuth` header (§3.5.1): comma-separated
/// `name="value"` pairs, names and values percent-encoded; `realm` is left out.
pub fn header_params(value: &str) -> Result<Vec<(String, String)>, OAuth1Error> {
    let value = value.trim();
    let rest = value
        .get(5..)
        .filter(|_| is_oauth_header(value))
        .ok_or_else(|| rejected("the Authorization header does not use the OAuth scheme"))?;
    let mut out = Vec::new();
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (name, quoted) = part.split_once('=').ok_or_else(|| {
            rejected(format!(
                "the Authorization header parameter {part:?} has no value"
            ))
        })?;
        let quoted = quoted.trim();
        let inner = quoted
            .strip_prefix('"')
            .and_then(|q| q.strip_suffix('"'))
            .ok_or_else(|| {
                rejected(format!(
                    "the Authorization header parameter {} must be a quoted string",
                    name.trim()
                ))
            })?;
        let decode = |s: &str| {
            percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| rejected("the Authorization header is not percent-encoded UTF-8"))
        };
        let name = decode(name.trim())?;
        if name.eq_ignore_ascii_case("realm") {
            continue;
        }
        out.push((name, decode(inner)?));
    }
    Ok(out)
}

/// The request's parameters: every one counts for the signature (§3.4.1.3.1), and the
/// `oauth_` ones are the protocol parameters.
pub struct Params {
    /// Every parameter: the header's (without `realm`), the query's, the form body's.
    pub all: Vec<(String, String)>,
}

impl Params {
    /// Reads and checks the parameters: no protocol parameter twice, in one place or across
    /// places (§3.5, §3.2), and no NUL anywhere.
    pub fn read(req: &SignedRequest<'_>) -> Result<Params, OAuth1Error> {
        let mut all = match req.authorization {
            Some(h) if is_oauth_header(h) => header_params(h)?,
            _ => Vec::new(),
        };
        all.extend(form_urlencoded::parse(req.query.as_bytes()).into_owned());
        if let Some(body) = req.form_body {
            all.extend(form_urlencoded::parse(body).into_owned());
        }
        if all.iter().any(|(k, v)| !storable(k) || !storable(v)) {
            return Err(rejected("the request contains a NUL character"));
        }
        let mut seen = HashSet::new();
        if let Some((k, _)) = all
            .iter()
            .filter(|(k, _)| k.starts_with("oauth_"))
            .find(|(k, _)| !seen.insert(k.as_str()))
        {
            return Err(rejected(format!(
                "{k} was sent more than once; send each protocol parameter once, in one place"
            )));
        }
        Ok(Params { all })
    }

    /// A protocol (or other) parameter's value, if sent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A required protocol parameter (§3.2: 400 when absent).
    pub fn required(&self, name: &str) -> Result<&str, OAuth1Error> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            OAuth1Error::new(Problem::ParameterAbsent, format!("{name} is required"))
        })
    }
}

/// The protocol parameters grantry knows (§3.1, §2.1, §2.3); any other `oauth_` parameter
/// is refused (§3.2: unsupported parameter).
const KNOWN: [&str; 9] = [
    "oauth_consumer_key",
    "oauth_token",
    "oauth_signature_method",
    "oauth_signature",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_version",
    "oauth_callback",
    "oauth_verifier",
];

/// Which token a request must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    /// None: the temporary credentials request (§2.1).
    None,
    /// Temporary credentials: the token request (§2.3).
    Request,
    /// Token credentials: a request to a protected API (§3).
    Access,
}

/// The token a verified request carried.
#[derive(Debug)]
pub enum VerifiedToken {
    None,
    /// Temporary credentials, with their value's digest.
    Request(RequestTokenRecord, Digest),
    Access(OAuth1TokenRecord),
}

/// A request whose signature, timestamp and nonce were checked.
#[derive(Debug)]
pub struct Verified {
    pub app: Application,
    pub token: VerifiedToken,
}

/// The server's OAuth 1.0a key, or the refusal that says how to turn OAuth 1.0a on.
pub fn key_of(settings: &Settings) -> Result<&DeriveKey, OAuth1Error> {
    settings.oauth1.key.as_ref().ok_or_else(|| {
        OAuth1Error::new(
            Problem::ConsumerKeyRejected,
            "OAuth 1.0a is not enabled on this server: its operator must set oauth1.key_file \
             (the same file on every instance); use OAuth 2.0 meanwhile",
        )
    })
}

/// The (timestamp, nonce) of a request, to remember (§3.3).
type Replay<'p> = Option<(i64, &'p str)>;

/// The syntax checks that need no lookup: known parameters, version, method, timestamp
/// window and nonce. Returns the method and the (timestamp, nonce) to remember, if any.
fn check_syntax<'p>(
    params: &'p Params,
    req: &SignedRequest<'_>,
    now: Timestamp,
    settings: &Settings,
) -> Result<(SignatureMethod, Replay<'p>), OAuth1Error> {
    if let Some((k, _)) = params
        .all
        .iter()
        .find(|(k, _)| k.starts_with("oauth_") && !KNOWN.contains(&k.as_str()))
    {
        return Err(rejected(format!("{k} is not a parameter of OAuth 1.0a")));
    }
    if let Some(v) = params.get("oauth_version") {
        if v != "1.0" {
            return Err(OAuth1Error::new(
                Problem::VersionRejected,
                format!("oauth_version {v} is not supported; send 1.0 or leave it out"),
            ));
        }
    }
    let name = params.required("oauth_signature_method")?;
    let method = SignatureMethod::parse(name).ok_or_else(|| {
        OAuth1Error::new(
            Problem::SignatureMethodRejected,
            format!("oauth_signature_method {name} is not supported; use HMAC-SHA1, HMAC-SHA256 or PLAINTEXT"),
        )
    })?;
    if method == SignatureMethod::Plaintext && !req.confidential {
        return Err(OAuth1Error::new(
            Problem::SignatureMethodRejected,
            "PLAINTEXT sends the secrets themselves and is accepted only over TLS; use HMAC-SHA1 or HMAC-SHA256",
        ));
    }
    params.required("oauth_consumer_key")?;
    params.required("oauth_signature")?;
    let stamp = params.get("oauth_timestamp");
    let nonce = params.get("oauth_nonce");
    // §3.1: PLAINTEXT requests may leave out both.
    if method == SignatureMethod::Plaintext && stamp.is_none() && nonce.is_none() {
        return Ok((method, None));
    }
    let stamp = params.required("oauth_timestamp")?;
    let nonce = params.required("oauth_nonce")?;
    let secs: i64 = stamp
        .parse()
        .ok()
        .filter(|_| stamp.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| rejected("oauth_timestamp must be a whole number of seconds since 1970"))?;
    if nonce.len() > MAX_NONCE {
        return Err(rejected(format!(
            "oauth_nonce is longer than {MAX_NONCE} characters"
        )));
    }
    let window = settings.oauth1.timestamp_window.as_secs() as i64;
    let server = now.0.div_euclid(1000);
    if (server - secs).abs() > window {
        return Err(OAuth1Error::new(
            Problem::TimestampRefused,
            format!(
                "oauth_timestamp {secs} is more than {window} seconds from the server's clock ({server}); \
                 check the client's clock"
            ),
        ));
    }
    Ok((method, Some((secs, nonce))))
}

/// The application's client secrets that the server can compute again with its key.
async fn consumer_secrets(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    key: &DeriveKey,
    app: &Application,
) -> Result<Vec<SecretString>, OAuth1Error> {
    let stored = store.derivable_secrets(app.id, now).await?;
    Ok(stored
        .into_iter()
        .map(|s| (s.digest, key.client_secret(&settings.pod_id, &s.nonce)))
        // A secret derived under another key does not match its digest: it cannot sign.
        .filter(|(digest, m)| digest.matches(&m.digest))
        .map(|(_, m)| m.value)
        .collect())
}

/// The token a request carries, checked against its consumer, and its secret.
async fn check_token(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    key: &DeriveKey,
    params: &Params,
    app: &Application,
    token_use: TokenUse,
) -> Result<(VerifiedToken, String), OAuth1Error> {
    let expect = match token_use {
        TokenUse::None => return Ok((VerifiedToken::None, String::new())),
        TokenUse::Request => Kind::RequestToken,
        TokenUse::Access => Kind::OAuth1Token,
    };
    let token = params.required("oauth_token")?;
    let unknown = || OAuth1Error::new(Problem::TokenRejected, "oauth_token is unknown");
    let shape = credential::shape(token).ok_or_else(unknown)?;
    if let Some(pod) = settings.foreign_pod(shape.pod) {
        return Err(OAuth1Error::new(
            Problem::TokenRejected,
            format!("this token belongs to {pod}; call that pod's API host"),
        ));
    }
    if shape.kind != expect {
        let d = match expect {
            Kind::RequestToken => {
                "oauth_token must be the temporary credentials from POST /oauth1/request_token"
            }
            _ => "oauth_token must be token credentials from POST /oauth1/access_token",
        };
        return Err(OAuth1Error::new(Problem::TokenRejected, d));
    }
    let digest = Digest::of(token);
    let verified = match token_use {
        TokenUse::Request => {
            let rec = store.request_token(&digest).await?.ok_or_else(unknown)?;
            if rec.app.id != app.id {
                return Err(unknown());
            }
            if !rec.live(now) {
                return Err(OAuth1Error::new(
                    Problem::TokenRejected,
                    "the temporary credentials expired or were already used; start again at POST /oauth1/request_token",
                ));
            }
            VerifiedToken::Request(rec, digest)
        }
        _ => {
            let rec = store.oauth1_token(&digest).await?.ok_or_else(unknown)?;
            if rec.app.id != app.id {
                return Err(unknown());
            }
            if let Some((problem, reason, d)) = token_refusal(&rec) {
                let target = format!("user:{}", rec.user.username);
                let window = settings.audit.failure_window;
                let audit = NewAudit::auth_failed(
                    rec.user.org_id,
                    now,
                    &app.client_id,
                    target,
                    reason,
                    window,
                )
                .with_detail(serde_json::json!({"reason": reason, "oauth1_token": rec.id}));
                store.record_audit(audit).await?;
                return Err(OAuth1Error::new(problem, d));
            }
            VerifiedToken::Access(rec)
        }
    };
    Ok((verified, key.token_secret(token)))
}

fn token_refusal(rec: &OAuth1TokenRecord) -> Option<(Problem, &'static str, &'static str)> {
    if rec.revoked {
        Some((
            Problem::TokenRevoked,
            "revoked OAuth 1.0a token",
            "the token has been revoked; its account access was deleted",
        ))
    } else if rec.user.disabled || rec.user.kind != UserKind::Ui {
        Some((
            Problem::TokenRejected,
            "disabled user",
            "the user of this token is disabled",
        ))
    } else {
        None
    }
}

/// Checks a signed request (§3.2) at `now`, under the limits of `attempt` (the consumer's
/// secret is a client secret: docs/architecture.md, limits): its parameters, its consumer,
/// its token (`token_use`), its signature with each of the consumer's secrets, then its
/// nonce, which is remembered only for a request whose signature holds.
pub async fn verify(
    store: &dyn Store,
    now: Timestamp,
    settings: &Settings,
    attempt: Attempt<'_>,
    req: &SignedRequest<'_>,
    token_use: TokenUse,
) -> Result<(Verified, Params), OAuth1Error> {
    let key = key_of(settings)?;
    let params = Params::read(req)?;
    let (method, replay) = check_syntax(&params, req, now, settings)?;
    let consumer_key = params.required("oauth_consumer_key")?;
    let subject = Subject::client(consumer_key);
    attempt.admit(Door::Client, &subject)?;
    let Some(app) = store.application_by_client_id(consumer_key).await? else {
        attempt.failed(Door::Client, Some(&subject)).await?;
        return Err(OAuth1Error::new(
            Problem::ConsumerKeyUnknown,
            format!("Unable to find matching client for {consumer_key}"),
        ));
    };
    if app.public {
        return Err(OAuth1Error::new(
            Problem::ConsumerKeyRejected,
            "this application is a public client: it has no secret to sign OAuth 1.0a requests with; use OAuth 2.0 with PKCE",
        ));
    }
    let secrets = consumer_secrets(store, now, settings, key, &app).await?;
    if secrets.is_empty() {
        return Err(OAuth1Error::new(
            Problem::ConsumerKeyRejected,
            "this application's client secret cannot sign OAuth 1.0a requests: it was made before \
             OAuth 1.0a was enabled on this server, or under another oauth1.key_file; rotate it \
             (console: the application's page, or grantry app rotate-secret) and sign with the new one",
        ));
    }
    let (token, token_secret) =
        check_token(store, now, settings, key, &params, &app, token_use).await?;
    let normalized =
        signature::normalized_parameters(params.all.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let base = signature::base_string(req.method, &req.base_uri, &normalized);
    let presented = params.required("oauth_signature")?;
    let good = secrets
        .iter()
        .any(|s| signature::verify(method, &base, s.expose_secret(), &token_secret, presented));
    if !good {
        attempt.failed(Door::Client, Some(&subject)).await?;
        let mut e = OAuth1Error::new(
            Problem::SignatureInvalid,
            "the signature does not match: check the consumer secret, the token secret and the signature base string",
        );
        e.base_string = Some(base);
        return Err(e);
    }
    attempt.succeeded(Door::Client, &subject).await?;
    if let Some((stamp, nonce)) = replay {
        let window = settings.oauth1.timestamp_window;
        let expires_at = Timestamp(stamp.saturating_mul(1000)).plus(window);
        if !store.use_nonce(app.id, stamp, nonce, expires_at).await? {
            return Err(OAuth1Error::new(
                Problem::NonceUsed,
                "this oauth_nonce was already used with this timestamp: send a new nonce with every request",
            ));
        }
    }
    Ok((Verified { app, token }, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(auth: Option<&'a str>, query: &'a str, body: Option<&'a [u8]>) -> SignedRequest<'a> {
        SignedRequest {
            method: "GET",
            base_uri: "http://example.com/r".into(),
            query,
            authorization: auth,
            form_body: body,
            confidential: false,
        }
    }

    /// RFC 5849 §3.5.1: quoted, percent-encoded values; `realm` left out; the scheme name is
    /// case-insensitive.
    #[test]
    fn the_authorization_header_is_read_as_section_3_5_1_writes_it() {
        let h = r#"oauth realm="Example", oauth_consumer_key="9djdj82h48djs9d2",
            oauth_token="kkk9d7dh3k39sjv7", oauth_nonce="a%20b%2Bc""#;
        assert!(is_oauth_header(h));
        let p = header_params(h).unwrap();
        assert_eq!(
            p,
            vec![
                ("oauth_consumer_key".into(), "9djdj82h48djs9d2".into()),
                ("oauth_token".into(), "kkk9d7dh3k39sjv7".into()),
                ("oauth_nonce".into(), "a b+c".into()),
            ]
        );
        assert!(!is_oauth_header("Bearer x"));
        let e = header_params(r#"OAuth oauth_token=unquoted"#).unwrap_err();
        assert_eq!(e.problem, Problem::ParameterRejected);
    }

    /// §3.5 and §3.2: a protocol parameter is sent once, in one place; other parameters may
    /// repeat, and all of them count for the signature.
    #[test]
    fn protocol_parameters_are_sent_once_in_one_place() {
        let auth = r#"OAuth oauth_nonce="n1""#;
        let e = Params::read(&req(Some(auth), "oauth_nonce=n2", None))
            .err()
            .unwrap();
        assert_eq!(e.problem, Problem::ParameterRejected);
        assert!(e
            .description
            .contains("oauth_nonce was sent more than once"));
        let p = Params::read(&req(None, "a=1&a=2", Some(b"b=3&oauth_token=t"))).unwrap();
        assert_eq!(p.all.len(), 4);
        assert_eq!(p.get("oauth_token"), Some("t"));
        let nul = Params::read(&req(None, "a=%00", None)).err().unwrap();
        assert_eq!(nul.problem, Problem::ParameterRejected);
    }

    fn syntax(query: &str, confidential: bool, now_secs: i64) -> Result<(), Problem> {
        let mut r = req(None, query, None);
        r.confidential = confidential;
        let params = Params::read(&r).map_err(|e| e.problem)?;
        let now = Timestamp(now_secs * 1000);
        check_syntax(&params, &r, now, &Settings::default())
            .map(|_| ())
            .map_err(|e| e.problem)
    }

    const GOOD: &str = "oauth_consumer_key=c&oauth_signature=s&oauth_signature_method=HMAC-SHA1\
        &oauth_timestamp=1000&oauth_nonce=n";

    /// §3.2's 400s and the timestamp window (§3.3), which is inclusive at 300 s.
    #[test]
    fn malformed_requests_and_stale_timestamps_are_told_apart() {
        assert_eq!(syntax(GOOD, false, 1000), Ok(()));
        assert_eq!(syntax(GOOD, false, 1300), Ok(()));
        assert_eq!(syntax(GOOD, false, 700), Ok(()));
        assert_eq!(syntax(GOOD, false, 1301), Err(Problem::TimestampRefused));
        let cases = [
            ("oauth_version=2.0", Problem::VersionRejected),
            ("oauth_foo=1", Problem::ParameterRejected),
        ];
        for (extra, want) in cases {
            assert_eq!(
                syntax(&format!("{GOOD}&{extra}"), false, 1000),
                Err(want),
                "{extra}"
            );
        }
        let rsa = GOOD.replace("HMAC-SHA1", "RSA-SHA1");
        assert_eq!(
            syntax(&rsa, false, 1000),
            Err(Problem::SignatureMethodRejected)
        );
        let plain = GOOD.replace("HMAC-SHA1", "PLAINTEXT");
        assert_eq!(
            syntax(&plain, false, 1000),
            Err(Problem::SignatureMethodRejected)
        );
        assert_eq!(syntax(&plain, true, 1000), Ok(()));
        let no_nonce = GOOD.replace("&oauth_nonce=n", "");
        assert_eq!(
            syntax(&no_nonce, false, 1000),
            Err(Problem::ParameterAbsent)
        );
        let bad_stamp = GOOD.replace("oauth_timestamp=1000", "oauth_timestamp=-5");
        assert_eq!(
            syntax(&bad_stamp, false, 1000),
            Err(Problem::ParameterRejected)
        );
    }
}
