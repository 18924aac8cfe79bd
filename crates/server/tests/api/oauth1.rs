//! OAuth 1.0a (RFC 5849; docs/architecture.md, OAuth 1.0a): the three legs of §2 over HTTP,
//! signed calls to the REST, XML and Event APIs (§3), and every refusal of §3.2 with its
//! status, its `WWW-Authenticate: OAuth` challenge and its `oauth_problem`.

use std::time::Duration;

use base64::Engine;
use grantry_core::admin::{self, AppInput, Ctx};
use grantry_core::oauth1::signature::{
    base_string, base_string_uri, encode, normalized_parameters, sign, SignatureMethod,
};
use grantry_core::{Clock, GrantSet};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::both;
use crate::harness::TestApp;

const CB: &str = "https://partner.example/oauth1/cb";
const PASSWORD: &str = "correct horse battery staple";
const CHALLENGE: &str = "OAuth realm=\"grantry\"";
const FORM: &str = "application/x-www-form-urlencoded";
const GET_LISTS: &str =
    "<Envelope><Body><GetLists><VISIBILITY>1</VISIBILITY></GetLists></Body></Envelope>";

/// Where the protocol parameters go (§3.5).
#[derive(Clone, Copy, Debug)]
enum Place {
    Header,
    Query,
    Body,
}

/// How a client signs one request; the fields after `token` exist to break the request.
#[derive(Clone)]
struct Signer {
    key: String,
    secret: String,
    token: Option<(String, String)>,
    method: SignatureMethod,
    place: Place,
    /// Further protocol parameters (`oauth_callback`, `oauth_verifier`, ...).
    protocol: Vec<(String, String)>,
    /// The `oauth_signature_method` value sent instead of the method's name.
    method_name: Option<String>,
    /// Seconds added to the clock's time for `oauth_timestamp`.
    skew: i64,
    nonce: Option<String>,
    /// Protocol parameters left out.
    without: Vec<&'static str>,
    /// Sign with this consumer secret instead (a wrong signature).
    sign_with: Option<String>,
}

impl Signer {
    fn new(key: &str, secret: &str) -> Signer {
        Signer {
            key: key.into(),
            secret: secret.into(),
            token: None,
            method: SignatureMethod::HmacSha1,
            place: Place::Header,
            protocol: vec![],
            method_name: None,
            skew: 0,
            nonce: None,
            without: vec![],
            sign_with: None,
        }
    }

    fn token(mut self, token: &str, secret: &str) -> Signer {
        self.token = Some((token.into(), secret.into()));
        self
    }

    fn method(mut self, m: SignatureMethod) -> Signer {
        self.method = m;
        self
    }

    fn place(mut self, p: Place) -> Signer {
        self.place = p;
        self
    }

    fn with(mut self, k: &str, v: &str) -> Signer {
        self.protocol.push((k.into(), v.into()));
        self
    }
}

/// A signed request, ready to send (again).
#[derive(Clone)]
struct Prepared {
    method: reqwest::Method,
    url: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Option<String>,
}

impl Prepared {
    async fn send(&self, app: &TestApp) -> reqwest::Response {
        let mut req = app.http.request(self.method.clone(), &self.url);
        if let Some(a) = &self.authorization {
            req = req.header("authorization", a);
        }
        if let Some(c) = &self.content_type {
            req = req.header("content-type", c);
        }
        if let Some(b) = &self.body {
            req = req.body(b.clone());
        }
        req.send().await.unwrap()
    }
}

fn joined(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Signs `method path?query` with the form body `form` (when `Some`, sent form-encoded), as
/// a client does (§3.1, §3.4): a random nonce and the server clock's time.
fn prepare(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    query: &[(&str, &str)],
    form: Option<&[(&str, &str)]>,
    s: &Signer,
) -> Prepared {
    let stamp = app.clock.now().0 / 1000 + s.skew;
    let nonce = s.nonce.clone().unwrap_or_else(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(grantry_core::credential::random_bytes::<12>())
    });
    let method_name = s.method_name.clone().unwrap_or_else(|| {
        match s.method {
            SignatureMethod::HmacSha1 => "HMAC-SHA1",
            SignatureMethod::HmacSha256 => "HMAC-SHA256",
            SignatureMethod::Plaintext => "PLAINTEXT",
        }
        .to_string()
    });
    let mut protocol: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), s.key.clone()),
        ("oauth_signature_method".into(), method_name),
        ("oauth_timestamp".into(), stamp.to_string()),
        ("oauth_nonce".into(), nonce),
        ("oauth_version".into(), "1.0".into()),
    ];
    if let Some((t, _)) = &s.token {
        protocol.push(("oauth_token".into(), t.clone()));
    }
    protocol.extend(s.protocol.iter().cloned());
    // A later `with` of a default parameter replaces it.
    let mut seen = std::collections::HashSet::new();
    let mut deduped: Vec<(String, String)> = protocol
        .into_iter()
        .rev()
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect();
    deduped.reverse();
    let protocol: Vec<(String, String)> = deduped
        .into_iter()
        .filter(|(k, _)| !s.without.contains(&k.as_str()))
        .collect();
    let query = owned(query);
    let form = form.map(owned);
    let all: Vec<(&str, &str)> = protocol
        .iter()
        .chain(query.iter())
        .chain(form.iter().flatten())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let url = url::Url::parse(&app.url(path)).unwrap();
    let base_uri = base_string_uri(
        url.scheme(),
        url.host_str().unwrap(),
        url.port(),
        url.path(),
    );
    let base = base_string(method.as_str(), &base_uri, &normalized_parameters(all));
    let client_secret = s.sign_with.as_deref().unwrap_or(&s.secret);
    let token_secret = s.token.as_ref().map_or("", |(_, ts)| ts.as_str());
    let signature = sign(s.method, &base, client_secret, token_secret);
    let mut protocol = protocol;
    protocol.push(("oauth_signature".into(), signature));

    let mut query_all = query;
    let mut form_all = form;
    let mut authorization = None;
    match s.place {
        Place::Header => {
            let params: Vec<String> = protocol
                .iter()
                .map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v)))
                .collect();
            authorization = Some(format!("OAuth realm=\"grantry\", {}", params.join(", ")));
        }
        Place::Query => query_all.extend(protocol),
        Place::Body => form_all.get_or_insert_with(Vec::new).extend(protocol),
    }
    let mut url = app.url(path);
    if !query_all.is_empty() {
        url = format!("{url}?{}", joined(&query_all));
    }
    Prepared {
        method,
        url,
        authorization,
        content_type: form_all.as_ref().map(|_| FORM.to_string()),
        body: form_all.map(|f| joined(&f)),
    }
}

async fn post_endpoint(
    app: &TestApp,
    path: &str,
    form: Option<&[(&str, &str)]>,
    s: &Signer,
) -> reqwest::Response {
    prepare(app, reqwest::Method::POST, path, &[], form, s)
        .send(app)
        .await
}

/// A refused endpoint call: status, challenge and the form-encoded body.
async fn refusal(r: reqwest::Response) -> (u16, Option<String>, Vec<(String, String)>) {
    let status = r.status().as_u16();
    let challenge = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(r.headers()["content-type"], FORM);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    let pairs = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    (status, challenge, pairs)
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Asserts an endpoint refusal: `status`, the challenge exactly on 401, and `problem`.
async fn assert_refused(r: reqwest::Response, status: u16, problem: &str) -> Vec<(String, String)> {
    let (s, ch, body) = refusal(r).await;
    assert_eq!(s, status, "{body:?}");
    if status == 401 {
        assert_eq!(ch.as_deref(), Some(CHALLENGE));
    } else {
        assert_eq!(ch, None);
    }
    assert_eq!(field(&body, "oauth_problem"), Some(problem), "{body:?}");
    assert!(!field(&body, "oauth_problem_advice")
        .unwrap_or("")
        .is_empty());
    body
}

/// Org `acme` with UI user `alice` (every grant, a password) and a confidential
/// application registered with [`CB`]; its client id and secret.
async fn setup(app: &TestApp) -> (String, String) {
    app.org("acme").await;
    app.ui_user_with_password("acme", "alice", GrantSet::apis(), PASSWORD)
        .await;
    let (id, secret) = app.client("acme", "Partner", CB, false).await;
    (id, secret.unwrap())
}

/// Temporary credentials for `callback` (§2.1), with `scope` in the form body if any.
async fn request_token(
    app: &TestApp,
    consumer: &Signer,
    callback: &str,
    scope: Option<&str>,
) -> (String, String) {
    let form: Vec<(&str, &str)> = scope.map(|s| vec![("scope", s)]).unwrap_or_default();
    let s = consumer.clone().with("oauth_callback", callback);
    let r = post_endpoint(app, "/oauth1/request_token", Some(&form), &s).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], FORM);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "oauth_token",
            "oauth_token_secret",
            "oauth_callback_confirmed"
        ]
    );
    let token = field(&pairs, "oauth_token").unwrap().to_string();
    assert!(token.starts_with("grq_"), "{token}");
    assert_eq!(field(&pairs, "oauth_callback_confirmed"), Some("true"));
    let secret = field(&pairs, "oauth_token_secret").unwrap().to_string();
    assert!(!secret.is_empty());
    (token, secret)
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end]
        .replace("&#38;", "&")
        .replace("&#61;", "=")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn cookie(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("a {name} cookie"))
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_string()
}

fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Signs in as `alice` on the authorization page for `token` (§2.2) and answers the
/// consent page with `decision`: the last answer, unfollowed.
async fn authorize(app: &TestApp, token: &str, decision: &str) -> reqwest::Response {
    let b = app.browser();
    let query = format!("oauth_token={token}");
    let r = b
        .get(app.url(&format!("/oauth1/authorize?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let login_cookie = cookie(&r, "grantry_login_oauth1");
    let page = r.text().await.unwrap();
    assert!(page.contains("Partner"), "{page}");
    assert_eq!(hidden(&page, "query"), query);
    let r = b
        .post(app.url("/oauth1/authorize/login"))
        .header("cookie", &login_cookie)
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("query", &hidden(&page, "query")),
            ("csrf", &hidden(&page, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| !c.starts_with("grantry_login"))
        .expect("the session cookie");
    let r = b
        .get(app.url(&location(&r)))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("name=\"decision\" value=\"allow\""), "{page}");
    b.post(app.url("/oauth1/authorize"))
        .header("cookie", &session)
        .form(&[
            ("query", hidden(&page, "query")),
            ("csrf", hidden(&page, "csrf")),
            ("decision", decision.into()),
        ])
        .send()
        .await
        .unwrap()
}

/// The authorization step for a callback: the verifier the callback received.
async fn verifier(app: &TestApp, token: &str) -> String {
    let r = authorize(app, token, "allow").await;
    assert_eq!(r.status(), 303);
    let back = location(&r);
    assert!(back.starts_with(&format!("{CB}?")), "{back}");
    assert_eq!(param(&back, "oauth_token").as_deref(), Some(token));
    param(&back, "oauth_verifier").unwrap()
}

async fn access_token_call(
    app: &TestApp,
    consumer: &Signer,
    temp: &(String, String),
    verifier: &str,
) -> reqwest::Response {
    let s = consumer
        .clone()
        .token(&temp.0, &temp.1)
        .with("oauth_verifier", verifier);
    post_endpoint(app, "/oauth1/access_token", None, &s).await
}

/// Token credentials (§2.3).
async fn access_token(
    app: &TestApp,
    consumer: &Signer,
    temp: &(String, String),
    verifier: &str,
) -> (String, String) {
    let r = access_token_call(app, consumer, temp, verifier).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], FORM);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body = r.text().await.unwrap();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let names: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["oauth_token", "oauth_token_secret"]);
    let token = field(&pairs, "oauth_token").unwrap().to_string();
    assert!(token.starts_with("goa_"), "{token}");
    let secret = field(&pairs, "oauth_token_secret").unwrap().to_string();
    (token, secret)
}

/// The three legs with the callback; a signer with the token credentials.
async fn three_legs(app: &TestApp, consumer: &Signer, scope: Option<&str>) -> Signer {
    let temp = request_token(app, consumer, CB, scope).await;
    let v = verifier(app, &temp.0).await;
    let (t, ts) = access_token(app, consumer, &temp, &v).await;
    consumer.clone().token(&t, &ts)
}

/// Setup and the three legs: the signer of `alice`'s token credentials.
async fn signed_in(app: &TestApp) -> Signer {
    let (id, secret) = setup(app).await;
    three_legs(app, &Signer::new(&id, &secret), None).await
}

async fn get_lists(app: &TestApp, s: &Signer) -> reqwest::Response {
    prepare(app, reqwest::Method::GET, "/rest/databases", &[], None, s)
        .send(app)
        .await
}

/// A refusal at the REST API: status, challenge and its `generalErrors` text.
async fn rest_refusal(r: reqwest::Response) -> (u16, Option<String>, String) {
    let status = r.status().as_u16();
    let ch = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let v: Value = r.json().await.unwrap();
    let errors = v["meta"]["generalErrors"].to_string();
    (status, ch, errors)
}

async fn user_id(app: &TestApp, org: &str, username: &str) -> grantry_core::model::UserId {
    let org = app.store.org_by_name(org).await.unwrap().unwrap();
    app.store
        .user_by_username(org.id, username)
        .await
        .unwrap()
        .unwrap()
        .id
}

// ----- the three legs -----

both!(
    rfc5849_2_three_legs_issue_token_credentials_under_the_account_access,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        // An account access the admin added before: the consent extends it.
        app.access("acme", &id, "alice").await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        let v = verifier(&app, &temp.0).await;
        let (token, token_secret) = access_token(&app, &consumer, &temp, &v).await;
        assert_ne!(token, temp.0);
        assert_ne!(token_secret, temp.1);

        let accesses = admin::list_account_access(&app.cx(), "acme").await.unwrap();
        let ours: Vec<_> = accesses
            .iter()
            .filter(|a| a.client_id == id && a.username == "alice")
            .collect();
        assert_eq!(ours.len(), 1, "the consent extended the account access");
        let app_id = app
            .store
            .application_by_client_id(&id)
            .await
            .unwrap()
            .unwrap()
            .id;
        let alice = user_id(&app, "acme", "alice").await;
        let access = app.store.account_access(app_id, alice).await.unwrap();
        assert_eq!(access.unwrap().id, ours[0].access.id);
        assert_eq!(app.audit_count("acme", "consent.granted").await, 1);
        assert_eq!(app.audit_count("acme", "oauth1_token.issued").await, 1);

        let s = consumer.token(&token, &token_secret);
        assert_eq!(get_lists(&app, &s).await.status(), 200);
    }
);

both!(
    rfc5849_2_1_oob_shows_the_verifier_on_the_page,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, "oob", None).await;
        let r = authorize(&app, &temp.0, "allow").await;
        assert_eq!(r.status(), 200);
        let page = r.text().await.unwrap();
        let v = page
            .split("<code id=\"verifier\">")
            .nth(1)
            .and_then(|rest| rest.split("</code>").next())
            .unwrap_or_else(|| panic!("the verifier in {page}"))
            .to_string();
        assert!(!v.is_empty());
        let (t, ts) = access_token(&app, &consumer, &temp, &v).await;
        let r = get_lists(&app, &consumer.token(&t, &ts)).await;
        assert_eq!(r.status(), 200);
        // The consent created the account access.
        let accesses = admin::list_account_access(&app.cx(), "acme").await.unwrap();
        assert_eq!(
            accesses
                .iter()
                .filter(|a| a.client_id == id && a.username == "alice")
                .count(),
            1
        );
    }
);

both!(
    rfc5849_2_2_a_denied_consent_tells_the_callback,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        let r = authorize(&app, &temp.0, "deny").await;
        assert_eq!(r.status(), 303);
        let back = location(&r);
        assert_eq!(
            param(&back, "oauth_problem").as_deref(),
            Some("permission_denied")
        );
        assert_eq!(app.audit_count("acme", "consent.denied").await, 1);
        assert_eq!(app.audit_count("acme", "consent.granted").await, 0);
        let r = access_token_call(&app, &consumer, &temp, "anything").await;
        assert_refused(r, 401, "token_rejected").await;
    }
);

// ----- signed calls -----

both!(
    rfc5849_3_signed_rest_calls_with_each_hmac_in_header_and_query,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let created = prepare(
            &app,
            reqwest::Method::POST,
            "/rest/databases",
            &[],
            None,
            &s,
        );
        let mut created = created;
        created.content_type = Some("application/json".into());
        created.body = Some(json!({"name": "Signed"}).to_string());
        let r = created.send(&app).await;
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        let db = v["data"]["id"].as_i64().unwrap();
        for method in [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256] {
            for place in [Place::Header, Place::Query] {
                let signer = s.clone().method(method).place(place);
                // §3.4.1.3.2: repeated names and non-ASCII values all count, encoded.
                let query = [("page", "1"), ("x", "a b&c"), ("x", "1"), ("q", "café ✓")];
                let r = prepare(
                    &app,
                    reqwest::Method::GET,
                    "/rest/databases",
                    &query,
                    None,
                    &signer,
                )
                .send(&app)
                .await;
                assert_eq!(r.status(), 200, "{method:?} {place:?}");
                let v: Value = r.json().await.unwrap();
                let ids: Vec<i64> = v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["id"].as_i64().unwrap())
                    .collect();
                assert_eq!(ids, [db], "{method:?} {place:?}");
            }
        }
    }
);

both!(
    rfc5849_3_5_2_signed_xml_call_with_the_signature_beside_xml,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        for place in [Place::Body, Place::Header] {
            let signer = s.clone().place(place);
            let r = prepare(
                &app,
                reqwest::Method::POST,
                "/XMLAPI",
                &[],
                Some(&[("xml", GET_LISTS)]),
                &signer,
            )
            .send(&app)
            .await;
            assert_eq!(r.status(), 200, "{place:?}");
            let body = r.text().await.unwrap();
            assert!(body.contains("<SUCCESS>TRUE</SUCCESS>"), "{body}");
        }
        // The form body is signed: a changed envelope breaks the signature.
        let mut p = prepare(
            &app,
            reqwest::Method::POST,
            "/XMLAPI",
            &[],
            Some(&[("xml", GET_LISTS)]),
            &s.clone().place(Place::Body),
        );
        p.body = p
            .body
            .map(|b| b.replace("VISIBILITY%3E1", "VISIBILITY%3E0"));
        let r = p.send(&app).await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
        let body = r.text().await.unwrap();
        assert!(body.contains("signature_invalid"), "{body}");
    }
);

both!(
    rfc5849_3_signed_event_call_is_stored,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let mut p = prepare(
            &app,
            reqwest::Method::POST,
            "/campaignapi/resources/v3/events",
            &[],
            None,
            &s,
        );
        let event = json!({"event-id": "signup", "event-key": "k-1", "event-params": {"EMAIL": "a@example.com"}});
        p.content_type = Some("application/json".into());
        p.body = Some(event.to_string());
        let r = p.send(&app).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        let tx = v["transaction-id"].as_str().unwrap().to_string();
        let stored = app.store.events(1).await.unwrap();
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].transaction_id, tx);
        assert_eq!(stored[0].event_key, "k-1");
    }
);

both!(
    token_credentials_carry_only_the_scope_asked_for,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let s = three_legs(&app, &Signer::new(&id, &secret), Some("lists:read")).await;
        assert_eq!(get_lists(&app, &s).await.status(), 200);
        let mut p = prepare(
            &app,
            reqwest::Method::POST,
            "/rest/databases",
            &[],
            None,
            &s,
        );
        p.content_type = Some("application/json".into());
        p.body = Some(json!({"name": "nope"}).to_string());
        let r = p.send(&app).await;
        assert_eq!(r.status(), 403);
        let ch = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        let (_, _, errors) = rest_refusal(r).await;
        assert!(
            ch.contains("error=\"insufficient_scope\"") && ch.contains("scope=\"lists:write\""),
            "{ch}"
        );
        assert!(errors.contains("lists:write"), "{errors}");
        let lists = app.store.org_by_name("acme").await.unwrap().unwrap();
        assert!(app.store.lists(lists.id).await.unwrap().is_empty());
    }
);

both!(
    token_credentials_see_only_their_orgs_data,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let other = app.integration("globex").await;
        let t = app.access_token(&other).await;
        let (st, _) = app
            .rest(
                reqwest::Method::POST,
                "/rest/databases",
                &t,
                Some(json!({"name": "Globex only"})),
            )
            .await;
        assert_eq!(st, 201);
        let r = get_lists(&app, &s).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["data"], json!([]), "{v}");
        let (st, v) = app
            .rest(reqwest::Method::GET, "/rest/databases", &t, None)
            .await;
        assert_eq!(st, 200);
        let globex = v["data"][0]["id"].as_i64().unwrap();
        let r = prepare(
            &app,
            reqwest::Method::GET,
            &format!("/rest/databases/{globex}"),
            &[],
            None,
            &s,
        )
        .send(&app)
        .await;
        assert_eq!(r.status(), 404);
    }
);

both!(
    plaintext_is_accepted_from_loopback,
    |app: TestApp| async move {
        // The harness's client connects over loopback (§3.4.4 asks for a secure channel;
        // docs/architecture.md counts loopback as one).
        let s = signed_in(&app).await;
        let r = get_lists(&app, &s.clone().method(SignatureMethod::Plaintext)).await;
        assert_eq!(r.status(), 200);
    }
);

both!(
    rfc5849_3_4_4_plaintext_is_refused_without_a_secure_channel,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let url = url::Url::parse(&app.url("/oauth1/request_token")).unwrap();
        let base_uri = base_string_uri("http", url.host_str().unwrap(), url.port(), url.path());
        let stamp = (app.clock.now().0 / 1000).to_string();
        let header = format!(
            "OAuth oauth_consumer_key=\"{}\", oauth_signature_method=\"PLAINTEXT\", \
             oauth_timestamp=\"{stamp}\", oauth_nonce=\"n1\", oauth_callback=\"{}\", \
             oauth_signature=\"{}\"",
            encode(&id),
            encode(CB),
            encode(&format!("{}&", encode(&secret)))
        );
        let req = grantry_core::oauth1::SignedRequest {
            method: "POST",
            base_uri,
            query: "",
            authorization: Some(&header),
            form_body: None,
            confidential: false,
        };
        let unlimited = grantry_core::limits::Unlimited;
        let attempt = grantry_core::limits::Attempt::new(&unlimited, None);
        let e = grantry_core::oauth1::flow::request_token(
            &*app.store,
            app.clock.now(),
            &app.settings,
            attempt,
            &req,
        )
        .await
        .err()
        .expect("refused");
        assert_eq!(e.problem.name(), "signature_method_rejected");
        assert!(e.problem.is_bad_request());
        // The same request over a secure channel goes through.
        let req = grantry_core::oauth1::SignedRequest {
            confidential: true,
            ..req
        };
        let attempt = grantry_core::limits::Attempt::new(&unlimited, None);
        let ok = grantry_core::oauth1::flow::request_token(
            &*app.store,
            app.clock.now(),
            &app.settings,
            attempt,
            &req,
        )
        .await;
        assert!(ok.is_ok());
    }
);

// ----- refusals at the endpoints (§3.2) -----

both!(
    rfc5849_3_2_a_missing_parameter_is_400_parameter_absent,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        for missing in [
            "oauth_nonce",
            "oauth_signature_method",
            "oauth_consumer_key",
        ] {
            let mut s = Signer::new(&id, &secret).with("oauth_callback", CB);
            s.without.push(missing);
            let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
            let body = assert_refused(r, 400, "parameter_absent").await;
            let advice = field(&body, "oauth_problem_advice").unwrap();
            assert!(advice.contains(missing), "{advice}");
        }
        let mut s = Signer::new(&id, &secret);
        s.without.push("oauth_callback");
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_refused(r, 400, "parameter_absent").await;
    }
);

both!(
    rfc5849_3_2_a_parameter_in_header_and_query_is_400,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let s = Signer::new(&id, &secret).with("oauth_callback", CB);
        let mut p = prepare(
            &app,
            reqwest::Method::POST,
            "/oauth1/request_token",
            &[],
            None,
            &s,
        );
        p.url.push_str("?oauth_nonce=again");
        let body = assert_refused(p.send(&app).await, 400, "parameter_rejected").await;
        assert!(field(&body, "oauth_problem_advice")
            .unwrap()
            .contains("oauth_nonce was sent more than once"));

        // At an API, in the API's own format.
        let token = three_legs(&app, &Signer::new(&id, &secret), None).await;
        let mut p = prepare(
            &app,
            reqwest::Method::GET,
            "/rest/databases",
            &[],
            None,
            &token,
        );
        p.url.push_str("?oauth_nonce=again");
        let (s, _, errors) = rest_refusal(p.send(&app).await).await;
        assert_eq!(s, 400);
        assert!(
            errors.contains("oauth_nonce was sent more than once"),
            "{errors}"
        );
    }
);

both!(
    rfc5849_3_2_an_unknown_oauth_parameter_is_400,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let s = Signer::new(&id, &secret)
            .with("oauth_callback", CB)
            .with("oauth_foo", "bar");
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        let body = assert_refused(r, 400, "parameter_rejected").await;
        assert!(field(&body, "oauth_problem_advice")
            .unwrap()
            .contains("oauth_foo"));
    }
);

both!(
    rfc5849_3_2_oauth_version_2_is_400,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let s = Signer::new(&id, &secret)
            .with("oauth_callback", CB)
            .with("oauth_version", "2.0");
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_refused(r, 400, "version_rejected").await;
    }
);

both!(
    rfc5849_3_2_an_unknown_signature_method_is_400,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let mut s = Signer::new(&id, &secret).with("oauth_callback", CB);
        s.method_name = Some("RSA-SHA1".into());
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_refused(r, 400, "signature_method_rejected").await;
    }
);

both!(
    rfc5849_3_2_an_unknown_consumer_key_is_401,
    |app: TestApp| async move {
        setup(&app).await;
        let s = Signer::new("no-such-client", "x").with("oauth_callback", CB);
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_refused(r, 401, "consumer_key_unknown").await;
    }
);

both!(
    a_public_application_cannot_sign,
    |app: TestApp| async move {
        setup(&app).await;
        let (id, _) = app.client("acme", "Phone", CB, true).await;
        let s = Signer::new(&id, "").with("oauth_callback", CB);
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_refused(r, 401, "consumer_key_rejected").await;
    }
);

both!(
    rfc5849_3_2_a_wrong_signature_is_401_with_the_base_string,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let mut s = Signer::new(&id, &secret).with("oauth_callback", CB);
        s.sign_with = Some("not-the-secret".into());
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        let body = assert_refused(r, 401, "signature_invalid").await;
        let base = field(&body, "oauth_signature_base_string").unwrap();
        let expected = format!("POST&{}&", encode(&app.url("/oauth1/request_token")));
        assert!(base.starts_with(&expected), "{base}");
        assert!(
            base.contains(&encode(&format!("oauth_consumer_key={id}"))),
            "{base}"
        );
        assert!(!base.contains(&secret));
    }
);

both!(
    rfc5849_3_3_timestamps_within_300_seconds_are_accepted,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        assert_eq!(
            app.settings.oauth1.timestamp_window,
            Duration::from_secs(300)
        );
        for skew in [-300, 300] {
            let mut s = Signer::new(&id, &secret).with("oauth_callback", CB);
            s.skew = skew;
            let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
            assert_eq!(r.status(), 200, "skew {skew}");
        }
        for skew in [-301, 301] {
            let mut s = Signer::new(&id, &secret).with("oauth_callback", CB);
            s.skew = skew;
            let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
            assert_refused(r, 401, "timestamp_refused").await;
        }
        // At an API, with the clock moved on past the token's request.
        let token = three_legs(&app, &Signer::new(&id, &secret), None).await;
        let mut stale = token.clone();
        stale.skew = -301;
        let (s, ch, errors) = rest_refusal(get_lists(&app, &stale).await).await;
        assert_eq!((s, ch.as_deref()), (401, Some(CHALLENGE)));
        assert!(errors.contains("timestamp_refused"), "{errors}");
        app.advance(Duration::from_secs(3600));
        assert_eq!(get_lists(&app, &token).await.status(), 200);
    }
);

both!(
    rfc5849_3_3_a_reused_nonce_is_401,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let p = prepare(&app, reqwest::Method::GET, "/rest/databases", &[], None, &s);
        assert_eq!(p.send(&app).await.status(), 200);
        let (st, ch, errors) = rest_refusal(p.send(&app).await).await;
        assert_eq!((st, ch.as_deref()), (401, Some(CHALLENGE)));
        assert!(errors.contains("nonce_used"), "{errors}");
        // At an endpoint too.
        let (id, secret) = (s.key.clone(), s.secret.clone());
        let mut c = Signer::new(&id, &secret).with("oauth_callback", CB);
        c.nonce = Some("once".into());
        let p = prepare(
            &app,
            reqwest::Method::POST,
            "/oauth1/request_token",
            &[],
            None,
            &c,
        );
        assert_eq!(p.send(&app).await.status(), 200);
        assert_refused(p.send(&app).await, 401, "nonce_used").await;
    }
);

both!(
    rfc5849_3_3_sixteen_parallel_requests_with_one_nonce_succeed_once,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let p = prepare(&app, reqwest::Method::GET, "/rest/databases", &[], None, &s);
        let app = std::sync::Arc::new(app);
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (app, p, start) = (app.clone(), p.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    p.send(&app).await.status().as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        statuses.sort();
        let ok = statuses.iter().filter(|s| **s == 200).count();
        assert_eq!(ok, 1, "{statuses:?}");
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{statuses:?}"
        );
    }
);

both!(
    rfc5849_2_3_temporary_credentials_are_single_use,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        let v = verifier(&app, &temp.0).await;
        access_token(&app, &consumer, &temp, &v).await;
        let r = access_token_call(&app, &consumer, &temp, &v).await;
        assert_refused(r, 401, "token_rejected").await;
        assert_eq!(app.audit_count("acme", "oauth1_token.issued").await, 1);
    }
);

both!(
    rfc5849_2_3_a_wrong_verifier_is_401,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        let v = verifier(&app, &temp.0).await;
        let r = access_token_call(&app, &consumer, &temp, "not-the-verifier").await;
        assert_refused(r, 401, "verifier_invalid").await;
        // The right one still works: a wrong guess does not spend the credentials.
        access_token(&app, &consumer, &temp, &v).await;
    }
);

both!(
    rfc5849_2_3_unauthorized_temporary_credentials_are_401,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        let r = access_token_call(&app, &consumer, &temp, "guess").await;
        assert_refused(r, 401, "token_rejected").await;
    }
);

both!(
    rfc5849_2_3_expired_temporary_credentials_are_401,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        let v = verifier(&app, &temp.0).await;
        app.advance(Duration::from_secs(600));
        let r = access_token_call(&app, &consumer, &temp, &v).await;
        assert_refused(r, 401, "token_rejected").await;
        assert_eq!(app.audit_count("acme", "oauth1_token.issued").await, 0);
        // The authorization page no longer offers them either.
        let r = app
            .browser()
            .get(app.url(&format!("/oauth1/authorize?oauth_token={}", temp.0)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
);

both!(
    token_credentials_of_another_consumer_are_401,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let (other, other_secret) = app.client("acme", "Other", CB, false).await;
        let (t, ts) = s.token.clone().unwrap();
        let theirs = Signer::new(&other, &other_secret.unwrap()).token(&t, &ts);
        let (st, ch, errors) = rest_refusal(get_lists(&app, &theirs).await).await;
        assert_eq!((st, ch.as_deref()), (401, Some(CHALLENGE)));
        assert!(errors.contains("token_rejected"), "{errors}");
        // Temporary credentials of another consumer at access_token.
        let temp = request_token(&app, &Signer::new(&s.key, &s.secret), CB, None).await;
        let other_consumer = Signer::new(&theirs.key, &theirs.secret);
        let r = access_token_call(&app, &other_consumer, &temp, "v").await;
        assert_refused(r, 401, "token_rejected").await;
    }
);

both!(
    rfc5849_2_1_an_unregistered_callback_is_400,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let s = Signer::new(&id, &secret).with("oauth_callback", "https://evil.example/cb");
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_refused(r, 400, "parameter_rejected").await;
    }
);

both!(a_nul_in_a_parameter_is_400, |app: TestApp| async move {
    let (id, secret) = setup(&app).await;
    let s = Signer::new(&id, &secret).with("oauth_callback", CB);
    let r = post_endpoint(
        &app,
        "/oauth1/request_token",
        Some(&[("scope", "lists:read\0")]),
        &s,
    )
    .await;
    let body = assert_refused(r, 400, "parameter_rejected").await;
    assert!(field(&body, "oauth_problem_advice")
        .unwrap()
        .contains("NUL"));
    let s = Signer::new(&id, &secret).with("oauth_callback", CB);
    let mut p = prepare(
        &app,
        reqwest::Method::POST,
        "/oauth1/request_token",
        &[],
        None,
        &s,
    );
    p.url.push_str("?x=%00");
    assert_refused(p.send(&app).await, 400, "parameter_rejected").await;
});

both!(
    too_many_bad_signatures_lock_the_consumer,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let mut bad = Signer::new(&id, &secret).with("oauth_callback", CB);
        bad.sign_with = Some("guess".into());
        for _ in 0..5 {
            let r = post_endpoint(&app, "/oauth1/request_token", None, &bad).await;
            assert_refused(r, 401, "signature_invalid").await;
        }
        let good = Signer::new(&id, &secret).with("oauth_callback", CB);
        let r = post_endpoint(&app, "/oauth1/request_token", None, &good).await;
        let retry = r.headers()["retry-after"].to_str().unwrap().to_string();
        assert!(retry.parse::<u64>().unwrap() >= 1, "{retry}");
        assert_refused(r, 429, "too_many_attempts").await;
        app.advance(Duration::from_secs(retry.parse().unwrap()));
        let r = post_endpoint(&app, "/oauth1/request_token", None, &good).await;
        assert_eq!(r.status(), 200);
    }
);

// ----- revocation -----

both!(
    deleting_the_account_access_revokes_the_token_credentials,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        assert_eq!(get_lists(&app, &s).await.status(), 200);
        admin::delete_account_access(&app.cx(), "acme", &s.key, "alice")
            .await
            .unwrap();
        let (st, ch, errors) = rest_refusal(get_lists(&app, &s).await).await;
        assert_eq!((st, ch.as_deref()), (401, Some(CHALLENGE)));
        assert!(errors.contains("token_revoked"), "{errors}");
        let (xs, _, xch) = {
            let p = prepare(
                &app,
                reqwest::Method::POST,
                "/XMLAPI",
                &[],
                Some(&[("xml", GET_LISTS)]),
                &s.clone().place(Place::Body),
            );
            let r = p.send(&app).await;
            let st = r.status().as_u16();
            let ch = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_string());
            (st, r.text().await.unwrap(), ch)
        };
        assert_eq!((xs, xch.as_deref()), (401, Some(CHALLENGE)));
    }
);

both!(
    disabling_the_user_refuses_the_token_credentials,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        assert_eq!(get_lists(&app, &s).await.status(), 200);
        admin::set_disabled(&app.cx(), "acme", "alice", true)
            .await
            .unwrap();
        let (st, ch, errors) = rest_refusal(get_lists(&app, &s).await).await;
        assert_eq!((st, ch.as_deref()), (401, Some(CHALLENGE)));
        assert!(errors.contains("disabled"), "{errors}");
    }
);

// ----- client secrets the server cannot derive again -----

both!(
    a_secret_minted_without_the_key_must_be_rotated,
    |app: TestApp| async move {
        app.org("acme").await;
        app.ui_user_with_password("acme", "alice", GrantSet::apis(), PASSWORD)
            .await;
        let mut keyless = app.settings.clone();
        keyless.oauth1.key = None;
        let cx = Ctx {
            store: &*app.store,
            now: app.clock.now(),
            settings: &keyless,
            actor: "test",
            request_id: None,
            idempotency: None,
        };
        let input = AppInput {
            name: "Partner".into(),
            description: "Partner reads your lists".into(),
            redirect_uris: vec![CB.into()],
            scopes: None,
            public: false,
            rotate_refresh_tokens: false,
            token_format: grantry_core::model::TokenFormat::Opaque,
        };
        let (created, old) = admin::add_application(&cx, "acme", input).await.unwrap();
        let id = created.client_id;
        let old = old.unwrap().expose_secret().to_string();
        let s = Signer::new(&id, &old).with("oauth_callback", CB);
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        let body = assert_refused(r, 401, "consumer_key_rejected").await;
        assert!(
            field(&body, "oauth_problem_advice")
                .unwrap()
                .contains("rotate"),
            "{body:?}"
        );
        // OAuth 2.0 still takes it.
        let refresh_token = app.access("acme", &id, "alice").await;
        let r = app
            .token(&[
                ("grant_type", "refresh_token"),
                ("client_id", &id),
                ("client_secret", &old),
                ("refresh_token", &refresh_token),
            ])
            .await;
        assert_eq!(r.status(), 200);

        let (new, _) =
            admin::rotate_client_secret(&app.cx(), "acme", &id, Duration::from_secs(3600))
                .await
                .unwrap();
        let new = new.expose_secret().to_string();
        let consumer = Signer::new(&id, &new);
        let s = three_legs(&app, &consumer, None).await;
        assert_eq!(get_lists(&app, &s).await.status(), 200);
        // The old secret, though still valid for OAuth 2.0 during the overlap, cannot sign.
        let s = Signer::new(&id, &old).with("oauth_callback", CB);
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_refused(r, 401, "signature_invalid").await;
    }
);

both!(
    rfc5849_3_5_the_endpoints_read_parameters_from_each_place,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        for place in [Place::Header, Place::Query, Place::Body] {
            for method in [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256] {
                let s = Signer::new(&id, &secret)
                    .with("oauth_callback", CB)
                    .place(place)
                    .method(method);
                let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
                assert_eq!(r.status(), 200, "{place:?} {method:?}");
                let body = r.text().await.unwrap();
                assert!(body.starts_with("oauth_token=grq_"), "{body}");
            }
        }
    }
);

both!(
    an_answered_authorization_request_is_not_shown_again,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        verifier(&app, &temp.0).await;
        let r = app
            .browser()
            .get(app.url(&format!("/oauth1/authorize?oauth_token={}", temp.0)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.text().await.unwrap().contains("already answered"));
        assert_eq!(app.audit_count("acme", "consent.granted").await, 1);
    }
);

both!(
    temporary_credentials_do_not_open_the_apis,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        verifier(&app, &temp.0).await;
        let s = consumer.clone().token(&temp.0, &temp.1);
        let (st, ch, errors) = rest_refusal(get_lists(&app, &s).await).await;
        assert_eq!((st, ch.as_deref()), (401, Some(CHALLENGE)));
        assert!(errors.contains("token_rejected"), "{errors}");
        // Nor do token credentials stand in for temporary ones at access_token.
        let creds = three_legs(&app, &consumer, None).await;
        let (t, ts) = creds.token.clone().unwrap();
        let r = access_token_call(&app, &consumer, &(t, ts), "v").await;
        assert_refused(r, 401, "token_rejected").await;
    }
);

both!(
    refusals_at_the_event_and_xml_apis_are_in_their_own_formats,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let mut wrong = s.clone();
        wrong.sign_with = Some("guess".into());
        let mut p = prepare(
            &app,
            reqwest::Method::POST,
            "/campaignapi/resources/v3/events",
            &[],
            None,
            &wrong,
        );
        p.content_type = Some("application/json".into());
        p.body = Some(json!({"event-id": "e", "event-key": "k"}).to_string());
        let r = p.send(&app).await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"].as_u64(), Some(2001), "{v}");
        assert!(
            v["description"]
                .as_str()
                .unwrap()
                .contains("signature_invalid"),
            "{v}"
        );
        assert!(app.store.events(10).await.unwrap().is_empty());

        let r = prepare(
            &app,
            reqwest::Method::POST,
            "/XMLAPI",
            &[],
            Some(&[("xml", GET_LISTS)]),
            &wrong.clone().place(Place::Body),
        )
        .send(&app)
        .await;
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], CHALLENGE);
        let body = r.text().await.unwrap();
        assert!(
            body.contains("<SUCCESS>false</SUCCESS>") && body.contains("<errorid>145</errorid>"),
            "{body}"
        );
        assert!(body.contains("signature_invalid"), "{body}");
    }
);

both!(
    too_many_bad_signatures_at_an_api_lock_the_consumer,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        let mut wrong = s.clone();
        wrong.sign_with = Some("guess".into());
        for _ in 0..5 {
            assert_eq!(get_lists(&app, &wrong).await.status(), 401);
        }
        let r = get_lists(&app, &s).await;
        assert_eq!(r.status(), 429);
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1);
        let v: Value = r.json().await.unwrap();
        assert!(
            !v["meta"]["generalErrors"][0].as_str().unwrap().is_empty(),
            "{v}"
        );
        app.advance(Duration::from_secs(retry));
        assert_eq!(get_lists(&app, &s).await.status(), 200);
    }
);

both!(
    a_new_consent_after_deletion_does_not_revive_old_token_credentials,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let old = three_legs(&app, &consumer, None).await;
        admin::delete_account_access(&app.cx(), "acme", &id, "alice")
            .await
            .unwrap();
        let new = three_legs(&app, &consumer, None).await;
        assert_eq!(get_lists(&app, &new).await.status(), 200);
        let (st, _, errors) = rest_refusal(get_lists(&app, &old).await).await;
        assert_eq!(st, 401);
        assert!(errors.contains("token_revoked"), "{errors}");
        let accesses = admin::list_account_access(&app.cx(), "acme").await.unwrap();
        assert_eq!(accesses.iter().filter(|a| a.client_id == id).count(), 1);
    }
);

both!(
    re_enabling_the_user_restores_the_token_credentials,
    |app: TestApp| async move {
        let s = signed_in(&app).await;
        admin::set_disabled(&app.cx(), "acme", "alice", true)
            .await
            .unwrap();
        assert_eq!(get_lists(&app, &s).await.status(), 401);
        admin::set_disabled(&app.cx(), "acme", "alice", false)
            .await
            .unwrap();
        assert_eq!(get_lists(&app, &s).await.status(), 200);
    }
);

both!(
    a_rotated_secret_signs_until_its_overlap_ends,
    |app: TestApp| async move {
        let (id, old) = setup(&app).await;
        let s = three_legs(&app, &Signer::new(&id, &old), None).await;
        let (new, _) =
            admin::rotate_client_secret(&app.cx(), "acme", &id, Duration::from_secs(3600))
                .await
                .unwrap();
        let new = new.expose_secret().to_string();
        let (t, ts) = s.token.clone().unwrap();
        let with_new = Signer::new(&id, &new).token(&t, &ts);
        assert_eq!(
            get_lists(&app, &s).await.status(),
            200,
            "the old one overlaps"
        );
        assert_eq!(get_lists(&app, &with_new).await.status(), 200);
        app.advance(Duration::from_secs(3601));
        let (st, _, errors) = rest_refusal(get_lists(&app, &s).await).await;
        assert_eq!(st, 401);
        assert!(errors.contains("signature_invalid"), "{errors}");
        assert_eq!(get_lists(&app, &with_new).await.status(), 200);
    }
);

both!(
    rfc5849_3_2_malformed_timestamps_and_nonces_are_400,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let stamp = (app.clock.now().0 / 1000).to_string();
        for (k, v) in [
            ("oauth_timestamp", "soon"),
            ("oauth_timestamp", &*format!("+{stamp}")),
            ("oauth_nonce", &*"n".repeat(129)),
        ] {
            let s = Signer::new(&id, &secret)
                .with("oauth_callback", CB)
                .with(k, v);
            let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
            let body = assert_refused(r, 400, "parameter_rejected").await;
            assert!(field(&body, "oauth_problem_advice").unwrap().contains(k));
        }
        let s = Signer::new(&id, &secret)
            .with("oauth_callback", CB)
            .with("oauth_nonce", &"n".repeat(128));
        let r = post_endpoint(&app, "/oauth1/request_token", None, &s).await;
        assert_eq!(r.status(), 200);
        // An access_token request without its token or verifier.
        let temp = request_token(&app, &Signer::new(&id, &secret), CB, None).await;
        let v = verifier(&app, &temp.0).await;
        let mut s = Signer::new(&id, &secret)
            .token(&temp.0, &temp.1)
            .with("oauth_verifier", &v);
        s.without.push("oauth_verifier");
        let r = post_endpoint(&app, "/oauth1/access_token", None, &s).await;
        assert_refused(r, 400, "parameter_absent").await;
        let mut s = Signer::new(&id, &secret).with("oauth_verifier", &v);
        s.without.push("oauth_token");
        let r = post_endpoint(&app, "/oauth1/access_token", None, &s).await;
        assert_refused(r, 400, "parameter_absent").await;
        // Neither spent the temporary credentials.
        access_token(&app, &Signer::new(&id, &secret), &temp, &v).await;
    }
);

both!(
    rfc5849_2_3_concurrent_exchanges_issue_one_token,
    |app: TestApp| async move {
        let (id, secret) = setup(&app).await;
        let consumer = Signer::new(&id, &secret);
        let temp = request_token(&app, &consumer, CB, None).await;
        let v = verifier(&app, &temp.0).await;
        let s = consumer.token(&temp.0, &temp.1).with("oauth_verifier", &v);
        // Each request has its own nonce: only the single use of the credentials is tested.
        let prepared: Vec<Prepared> = (0..16)
            .map(|_| {
                prepare(
                    &app,
                    reqwest::Method::POST,
                    "/oauth1/access_token",
                    &[],
                    None,
                    &s,
                )
            })
            .collect();
        let app = std::sync::Arc::new(app);
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = prepared
            .into_iter()
            .map(|p| {
                let (app, start) = (app.clone(), start.clone());
                tokio::spawn(async move {
                    start.wait().await;
                    p.send(&app).await.status().as_u16()
                })
            })
            .collect();
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{statuses:?}"
        );
        assert_eq!(app.audit_count("acme", "oauth1_token.issued").await, 1);
        let accesses = admin::list_account_access(&app.cx(), "acme").await.unwrap();
        assert_eq!(accesses.iter().filter(|a| a.client_id == id).count(), 1);
    }
);
