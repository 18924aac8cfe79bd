//! OAuth 1.0a (RFC 5849; docs/architecture.md, OAuth 1.0a): nonces are used once (§3.3),
//! temporary credentials are authorized once and exchanged once (§2.3), secrets the server
//! can derive again are the only ones it signs with, token credentials fall with their
//! account access, and the sweep purges what has expired.

use std::sync::Arc;
use std::time::Duration;

use grantry_core::credential::{self, DeriveKey, Digest, Kind};
use grantry_core::model::{AppId, UserId};
use grantry_core::store::{Exchange, NewRequestToken, NewSecret, SweepReport};
use grantry_core::{GrantSet, Store, Timestamp};

use crate::harness::*;

const TTL: Duration = Duration::from_secs(600);

/// Stores temporary credentials of `app` created at `at`; returns their digest.
async fn request_token(store: &dyn Store, app: AppId, at: Timestamp) -> Digest {
    let digest = credential::mint(Kind::RequestToken, "test").digest;
    store
        .create_request_token(NewRequestToken {
            digest,
            app_id: app,
            callback: "https://app.example.com/callback".into(),
            scopes: GrantSet::parse_scope("lists:read").unwrap(),
            created_at: at,
            expires_at: at.plus(TTL),
        })
        .await
        .unwrap();
    digest
}

async fn authorize(store: &dyn Store, g: &Granted, digest: &Digest, user: UserId) -> bool {
    store
        .authorize_request_token(
            digest,
            user,
            Digest::of("the-verifier"),
            T0,
            audit(Some(g.org.id), T0, "consent.granted"),
        )
        .await
        .unwrap()
}

async fn exchange(store: &dyn Store, g: &Granted, digest: &Digest, at: Timestamp) -> Exchange {
    let token = credential::mint(Kind::OAuth1Token, "test").digest;
    store
        .exchange_request_token(
            digest,
            g.app.id,
            at,
            token,
            audit(Some(g.org.id), at, "oauth1_token.issued"),
        )
        .await
        .unwrap()
}

conformance!(a_nonce_is_used_once, |store| async move {
    let g = granted(&*store).await;
    let until = T0.plus(TTL);
    assert!(store.use_nonce(g.app.id, 1, "n-1", until).await.unwrap());
    assert!(!store.use_nonce(g.app.id, 1, "n-1", until).await.unwrap());
    // §3.3: a nonce is unique per timestamp and consumer.
    assert!(store.use_nonce(g.app.id, 2, "n-1", until).await.unwrap());
    let other = make_app(&*store, g.org.id, "other").await;
    assert!(store.use_nonce(other.id, 1, "n-1", until).await.unwrap());
});

conformance!(
    concurrent_uses_of_one_nonce_succeed_once,
    |store| async move {
        let g = granted(&*store).await;
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, start) = (store.clone(), start.clone());
                let app = g.app.id;
                tokio::spawn(async move {
                    start.wait().await;
                    store
                        .use_nonce(app, 7, "shared", T0.plus(TTL))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut firsts = 0;
        for t in tasks {
            if t.await.unwrap() {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1);
    }
);

conformance!(
    concurrent_exchanges_of_temporary_credentials_issue_once,
    |store| async move {
        let g = granted(&*store).await;
        let digest = request_token(&*store, g.app.id, T0).await;
        assert!(authorize(&*store, &g, &digest, g.user.id).await);
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, start) = (store.clone(), start.clone());
                let (app, org) = (g.app.id, g.org.id);
                tokio::spawn(async move {
                    let token = credential::mint(Kind::OAuth1Token, "test").digest;
                    start.wait().await;
                    let a = audit(Some(org), T0, "oauth1_token.issued");
                    let e = store
                        .exchange_request_token(&digest, app, T0, token, a)
                        .await
                        .unwrap();
                    (e, token)
                })
            })
            .collect();
        let mut issued = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (Exchange::Issued { access, .. }, token) => issued.push((access, token)),
                (Exchange::Refused, _) => {}
            }
        }
        assert_eq!(issued.len(), 1, "issued {} times", issued.len());
        // The existing account access was extended, not duplicated.
        assert_eq!(issued[0].0, g.access.id);
        assert!(store.oauth1_token(&issued[0].1).await.unwrap().is_some());
        assert_eq!(
            count_audit(&*store, g.org.id, "oauth1_token.issued").await,
            1
        );
        assert!(store.request_token(&digest).await.unwrap().unwrap().used);
    }
);

conformance!(
    unauthorized_temporary_credentials_are_refused,
    |store| async move {
        let g = granted(&*store).await;
        let digest = request_token(&*store, g.app.id, T0).await;
        assert_eq!(exchange(&*store, &g, &digest, T0).await, Exchange::Refused);
        assert!(!store.request_token(&digest).await.unwrap().unwrap().used);
        assert_eq!(
            count_audit(&*store, g.org.id, "oauth1_token.issued").await,
            0
        );
    }
);

conformance!(
    expired_temporary_credentials_are_refused,
    |store| async move {
        let g = granted(&*store).await;
        let digest = request_token(&*store, g.app.id, T0).await;
        assert!(authorize(&*store, &g, &digest, g.user.id).await);
        let later = T0.plus(TTL).plus(Duration::from_secs(1));
        assert_eq!(
            exchange(&*store, &g, &digest, later).await,
            Exchange::Refused
        );
        // Another application's exchange is refused too, even while they live.
        let fresh = request_token(&*store, g.app.id, T0).await;
        assert!(authorize(&*store, &g, &fresh, g.user.id).await);
        let other = make_app(&*store, g.org.id, "other").await;
        let token = credential::mint(Kind::OAuth1Token, "test").digest;
        let e = store
            .exchange_request_token(
                &fresh,
                other.id,
                T0,
                token,
                audit(Some(g.org.id), T0, "oauth1_token.issued"),
            )
            .await
            .unwrap();
        assert_eq!(e, Exchange::Refused);
    }
);

conformance!(
    temporary_credentials_are_authorized_once,
    |store| async move {
        let g = granted(&*store).await;
        let digest = request_token(&*store, g.app.id, T0).await;
        assert!(authorize(&*store, &g, &digest, g.user.id).await);
        let other = make_user(&*store, g.org.id, "bob").await;
        assert!(!authorize(&*store, &g, &digest, other.id).await);
        let rec = store.request_token(&digest).await.unwrap().unwrap();
        assert_eq!(
            rec.authorized,
            Some((g.user.id, Digest::of("the-verifier")))
        );
        assert_eq!(count_audit(&*store, g.org.id, "consent.granted").await, 1);
        // Expired ones cannot be authorized.
        let old = request_token(&*store, g.app.id, T0.minus(TTL)).await;
        assert!(!authorize(&*store, &g, &old, g.user.id).await);
    }
);

conformance!(
    derivable_secrets_omit_expired_and_random_ones,
    |store| async move {
        let g = granted(&*store).await;
        // The fixture's only secret was minted at random.
        assert!(store
            .derivable_secrets(g.app.id, T0)
            .await
            .unwrap()
            .is_empty());
        let key = DeriveKey::random();
        let first_nonce = [1u8; 16];
        let first = key.client_secret("test", &first_nonce).digest;
        let rotate = |digest: Digest, nonce: Option<[u8; 16]>, at: Timestamp| {
            let store = store.clone();
            let org = g.org.id;
            let app = g.app.id;
            async move {
                store
                    .rotate_client_secret(
                        app,
                        NewSecret {
                            digest,
                            derive_nonce: nonce,
                        },
                        at,
                        at.plus(HOUR),
                        audit(Some(org), at, "client_secret.rotated"),
                    )
                    .await
                    .unwrap();
            }
        };
        rotate(first, Some(first_nonce), T0).await;
        let got = store.derivable_secrets(g.app.id, T0).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].digest, got[0].nonce), (first, first_nonce));
        // A second derived one: both while the overlap lasts, newest first.
        let second_nonce = [2u8; 16];
        let second = key.client_secret("test", &second_nonce).digest;
        let t1 = T0.plus(Duration::from_secs(60));
        rotate(second, Some(second_nonce), t1).await;
        let got = store.derivable_secrets(g.app.id, t1).await.unwrap();
        let digests: Vec<_> = got.iter().map(|s| s.digest).collect();
        assert_eq!(digests, [second, first]);
        // After the overlap the first has expired.
        let t2 = t1.plus(2 * HOUR);
        let got = store.derivable_secrets(g.app.id, t2).await.unwrap();
        let digests: Vec<_> = got.iter().map(|s| s.digest).collect();
        assert_eq!(digests, [second]);
        // A random one rotated in is not derivable; the derived one lasts its overlap.
        rotate(
            credential::mint(Kind::ClientSecret, "test").digest,
            None,
            t2,
        )
        .await;
        let got = store.derivable_secrets(g.app.id, t2).await.unwrap();
        assert_eq!(got.iter().map(|s| s.digest).collect::<Vec<_>>(), [second]);
        let t3 = t2.plus(2 * HOUR);
        assert!(store
            .derivable_secrets(g.app.id, t3)
            .await
            .unwrap()
            .is_empty());
    }
);

conformance!(
    token_credentials_are_revoked_with_their_account_access,
    |store| async move {
        let g = granted(&*store).await;
        let digest = request_token(&*store, g.app.id, T0).await;
        assert!(authorize(&*store, &g, &digest, g.user.id).await);
        let token = credential::mint(Kind::OAuth1Token, "test").digest;
        let e = store
            .exchange_request_token(
                &digest,
                g.app.id,
                T0,
                token,
                audit(Some(g.org.id), T0, "oauth1_token.issued"),
            )
            .await
            .unwrap();
        let Exchange::Issued { access, .. } = e else {
            panic!("expected Issued, got {e:?}");
        };
        let rec = store.oauth1_token(&token).await.unwrap().unwrap();
        assert!(!rec.revoked);
        assert_eq!((rec.user.id, rec.app.id), (g.user.id, g.app.id));
        assert_eq!(rec.scopes, GrantSet::parse_scope("lists:read").unwrap());
        assert!(store
            .revoke_account_access(
                access,
                T0,
                audit(Some(g.org.id), T0, "account_access.deleted")
            )
            .await
            .unwrap());
        assert!(store.oauth1_token(&token).await.unwrap().unwrap().revoked);
    }
);

conformance!(
    the_sweep_purges_expired_temporary_credentials_and_nonces,
    |store| async move {
        let g = granted(&*store).await;
        let min = |m: u64| Duration::from_secs(60 * m);
        // Written in the order of their expiry: two expire at T0 + 10 min, one lives on.
        let expired_a = request_token(&*store, g.app.id, T0).await;
        let expired_b = request_token(&*store, g.app.id, T0).await;
        let live = request_token(&*store, g.app.id, T0.plus(min(30))).await;
        assert!(store
            .use_nonce(g.app.id, 1, "old", T0.plus(min(5)))
            .await
            .unwrap());
        assert!(store
            .use_nonce(g.app.id, 2, "live", T0.plus(min(60)))
            .await
            .unwrap());

        let now = T0.plus(min(20));
        let report = store.sweep(now, T0.minus(HOUR)).await.unwrap();
        let expected = SweepReport {
            oauth1_request_tokens: 2,
            oauth1_nonces: 1,
            ..SweepReport::default()
        };
        assert_eq!(report, Some(expected));
        assert!(store.request_token(&expired_a).await.unwrap().is_none());
        assert!(store.request_token(&expired_b).await.unwrap().is_none());
        assert!(store.request_token(&live).await.unwrap().is_some());
        // The live nonce is still remembered; the purged one may be used again.
        assert!(!store
            .use_nonce(g.app.id, 2, "live", T0.plus(min(60)))
            .await
            .unwrap());
        assert!(store
            .use_nonce(g.app.id, 1, "old", T0.plus(min(60)))
            .await
            .unwrap());

        let again = store.sweep(now, T0.minus(HOUR)).await.unwrap();
        assert_eq!(again, Some(SweepReport::default()));
    }
);

conformance_twins!(
    revoked_token_credentials_are_refused_by_the_other_instance_within_a_second,
    |a, b| async move {
        let g = granted(&*a).await;
        let digest = request_token(&*a, g.app.id, T0).await;
        assert!(authorize(&*a, &g, &digest, g.user.id).await);
        let token = credential::mint(Kind::OAuth1Token, "test").digest;
        let e = a
            .exchange_request_token(
                &digest,
                g.app.id,
                T0,
                token,
                audit(Some(g.org.id), T0, "oauth1_token.issued"),
            )
            .await
            .unwrap();
        let Exchange::Issued { access, .. } = e else {
            panic!("expected Issued, got {e:?}");
        };
        // `b` answers from its cache from the second lookup on.
        for _ in 0..2 {
            assert!(!b.oauth1_token(&token).await.unwrap().unwrap().revoked);
            assert!(b.derivable_secrets(g.app.id, T0).await.unwrap().is_empty());
        }
        // A secret OAuth 1.0a can sign with, rotated in through `a`, reaches `b`'s cached list.
        let nonce = [7u8; 16];
        let secret = DeriveKey::random().client_secret("test", &nonce).digest;
        a.rotate_client_secret(
            g.app.id,
            NewSecret {
                digest: secret,
                derive_nonce: Some(nonce),
            },
            T0,
            T0.plus(HOUR),
            audit(Some(g.org.id), T0, "client_secret.rotated"),
        )
        .await
        .unwrap();
        crate::cache::within_a_second("the rotated-in secret", || async {
            b.derivable_secrets(g.app.id, T0).await.unwrap().len() == 1
        })
        .await;
        assert!(a
            .revoke_account_access(
                access,
                T0,
                audit(Some(g.org.id), T0, "account_access.deleted")
            )
            .await
            .unwrap());
        crate::cache::within_a_second("the revoked token credentials", || async {
            b.oauth1_token(&token).await.unwrap().unwrap().revoked
        })
        .await;
    }
);
