//! Seeds a grantry database at scale, through grantry's own admin and token code (the same
//! calls the command line and the token endpoint make), for the benchmark's scale run
//! (docs/benchmarks/README.md, "Scale of data"):
//!
//! * `--orgs` organizations (default 10,000), each with its principal org admin and an API
//!   user holding a secret key;
//! * `--apps-per-org` confidential applications in each (default 10), each with account
//!   access for the org admin and its first access token (a `refresh_token` exchange);
//! * `client_credentials` tokens of the API users, spread over the orgs, until `--tokens`
//!   live access tokens exist in all (default 1,000,000).
//!
//! Run it with the server stopped, or beside it: every write is an ordinary one.
//!
//! ```text
//! cargo run --release -p grantry-server --example seed -- \
//!     --database sqlite:///var/lib/grantry/grantry.db --orgs 10000 --tokens 1000000
//! ```
//!
//! `--pod` must be the serving instance's `pod.id` (default `local`), or its doors refuse
//! every seeded credential as another pod's.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use secrecy::{ExposeSecret, SecretString};

use grantry_core::admin::{self, AppInput, Ctx, UserInput};
use grantry_core::limits::{Attempt, Unlimited};
use grantry_core::mail::{Mailer, Message};
use grantry_core::model::{Role, TokenFormat, UserKind};
use grantry_core::oauth::{exchange, OAuthError, Params, TokenRequest};
use grantry_core::{Clock, GrantSet, Settings, Store, SystemClock};

/// What to seed.
struct Plan {
    database: String,
    orgs: u64,
    apps_per_org: u64,
    tokens: u64,
    concurrency: usize,
    pod: String,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: seed --database URL [--orgs N] [--apps-per-org N] [--tokens N] \
                     [--concurrency N] [--pod ID]";

fn plan() -> Result<Plan, String> {
    let mut plan = Plan {
        database: String::new(),
        orgs: 10_000,
        apps_per_org: 10,
        tokens: 1_000_000,
        concurrency: 64,
        pod: "local".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a whole number, not {value:?}"))
        };
        match flag.as_str() {
            "--database" => plan.database = value.clone(),
            "--orgs" => plan.orgs = number()?,
            "--apps-per-org" => plan.apps_per_org = number()?,
            "--tokens" => plan.tokens = number()?,
            "--concurrency" => plan.concurrency = number()?.clamp(1, 1024) as usize,
            "--pod" => plan.pod = value.clone(),
            _ => return Err(format!("unknown option {flag}; {USAGE}")),
        }
    }
    if plan.database.is_empty() {
        return Err(format!("--database is required; {USAGE}"));
    }
    if plan.orgs == 0 {
        return Err("--orgs must be at least 1".into());
    }
    Ok(plan)
}

/// Account-access notices go nowhere.
struct NoMail;

#[async_trait]
impl Mailer for NoMail {
    async fn send(&self, _: Message) -> Result<(), String> {
        Ok(())
    }
}

/// Counts what was made, for the progress lines.
#[derive(Default)]
struct Made {
    orgs: AtomicU64,
    apps: AtomicU64,
    tokens: AtomicU64,
}

/// One organization and everything in it.
async fn seed_org(
    store: &dyn Store,
    settings: &Settings,
    made: &Made,
    plan: &Plan,
    index: u64,
) -> Result<(), Failure> {
    let name = format!("scale-{index:05}");
    let cx = Ctx {
        store,
        now: SystemClock.now(),
        settings,
        actor: "seed",
        request_id: None,
        idempotency: None,
    };
    admin::create_org(&cx, &name, "admin", &format!("admin@{name}.example")).await?;
    admin::add_user(
        &cx,
        &name,
        UserInput {
            username: "robot".into(),
            email: format!("robot@{name}.example"),
            kind: UserKind::Api,
            role: Role::User,
            grants: GrantSet::all(),
            password: None,
        },
    )
    .await?;
    let key = admin::api_keys::generate(&cx, &name, "robot").await?;
    made.orgs.fetch_add(1, Ordering::Relaxed);

    for app in 0..plan.apps_per_org {
        let cx = Ctx {
            now: SystemClock.now(),
            ..cx
        };
        let input = AppInput {
            name: format!("app-{app}"),
            description: String::new(),
            redirect_uris: vec![format!("https://app{app}.{name}.example/callback")],
            scopes: None,
            public: false,
            rotate_refresh_tokens: false,
            token_format: TokenFormat::Opaque,
        };
        let (application, secret) = admin::add_application(&cx, &name, input).await?;
        let secret = secret.ok_or("a confidential application was registered without a secret")?;
        let access = admin::add_account_access(
            &cx,
            &NoMail,
            &name,
            &application.client_id,
            "admin",
            "admin",
        )
        .await?;
        token(
            store,
            settings,
            vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", application.client_id.clone()),
                ("client_secret", secret.expose_secret().to_string()),
                (
                    "refresh_token",
                    access.refresh_token.expose_secret().to_string(),
                ),
            ],
        )
        .await?;
        made.apps.fetch_add(1, Ordering::Relaxed);
        made.tokens.fetch_add(1, Ordering::Relaxed);
    }

    // This org's share of the API users' tokens: the remainder goes to the first orgs.
    let key_tokens = plan.tokens.saturating_sub(plan.orgs * plan.apps_per_org);
    let share = key_tokens / plan.orgs + u64::from(index < key_tokens % plan.orgs);
    let form = |secret: &SecretString| {
        vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", key.key_id.clone()),
            ("client_secret", secret.expose_secret().to_string()),
        ]
    };
    stream::iter(0..share)
        .map(|_| token(store, settings, form(&key.secret)))
        .buffer_unordered(8)
        .try_for_each(|()| async {
            made.tokens.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .await?;
    Ok(())
}

/// One token request, exactly as the token endpoint runs it.
async fn token(
    store: &dyn Store,
    settings: &Settings,
    form: Vec<(&str, String)>,
) -> Result<(), Failure> {
    let pairs = form.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let refused = |e: OAuthError| {
        format!(
            "the token request was refused: {:?}: {}{}",
            e.code,
            e.description,
            e.cause.map(|c| format!(" ({c})")).unwrap_or_default()
        )
    };
    let params = Params::parse(pairs).map_err(refused)?;
    let request = TokenRequest::parse(&params, None).map_err(refused)?;
    let attempt = Attempt::new(&Unlimited, None);
    exchange(store, SystemClock.now(), settings, attempt, request)
        .await
        .map_err(refused)?;
    Ok(())
}

#[allow(
    clippy::disallowed_methods,
    reason = "the progress lines' elapsed time only; every write takes its time from the Clock"
)]
fn started() -> std::time::Instant {
    std::time::Instant::now()
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let plan = match plan() {
        Ok(plan) => plan,
        Err(why) => {
            eprintln!("{why}");
            std::process::exit(2);
        }
    };
    let store = grantry_store::open(&plan.database).await?;
    let settings = Settings {
        pod_id: plan.pod.clone(),
        pod_name: plan.pod.clone(),
        ..Settings::default()
    };
    let made = Arc::new(Made::default());
    let started = started();
    let progress = {
        let made = made.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "  {:>6.0}s: {} orgs, {} applications, {} tokens",
                    started.elapsed().as_secs_f64(),
                    made.orgs.load(Ordering::Relaxed),
                    made.apps.load(Ordering::Relaxed),
                    made.tokens.load(Ordering::Relaxed),
                );
            }
        })
    };
    eprintln!(
        "seeding {} orgs, {} applications with account access, {} live tokens ...",
        plan.orgs,
        plan.orgs * plan.apps_per_org,
        plan.tokens.max(plan.orgs * plan.apps_per_org)
    );
    let outcome = stream::iter(0..plan.orgs)
        .map(|i| seed_org(store.as_ref(), &settings, &made, &plan, i))
        .buffer_unordered(plan.concurrency)
        .try_collect::<()>()
        .await;
    progress.abort();
    outcome?;
    store.close().await;
    eprintln!(
        "seeded {} orgs, {} applications, {} tokens in {:.1}s",
        made.orgs.load(Ordering::Relaxed),
        made.apps.load(Ordering::Relaxed),
        made.tokens.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
