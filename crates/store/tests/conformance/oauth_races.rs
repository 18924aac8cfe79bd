//! Concurrent calls of the web-server flow: a code is spent once, a refresh token rotates
//! once, and concurrent consents of one user share one account access.

use std::sync::Arc;

use grantry_core::credential::{self, Kind};
use grantry_core::store::Redemption;

use crate::harness::*;

conformance!(
    concurrent_redemptions_of_one_code_spend_it_once,
    |store| async move {
        let g = granted(&*store).await;
        let code = new_auth_code(g.org.id, g.app.id, g.user.id, T0);
        let (digest, app) = (code.digest, code.app_id);
        store.create_auth_code(code).await.unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    store.redeem_auth_code(&digest, app, T0).await.unwrap()
                })
            })
            .collect();
        let mut fresh = Vec::new();
        let mut reused = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Redemption::Fresh(c) => fresh.push(c),
                Redemption::Reused(c) => reused.push(c),
                other => panic!("the client's own code: {other:?}"),
            }
        }
        assert_eq!(fresh.len(), 1, "the code was spent {} times", fresh.len());
        assert_eq!(reused.len(), 15);
        assert!(reused.iter().all(|c| *c == fresh[0]));
    }
);

conformance!(
    concurrent_rotations_of_one_token_yield_one_successor,
    |store| async move {
        let g = granted(&*store).await;
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let start = start.clone();
                let old = g.refresh_id;
                tokio::spawn(async move {
                    let digest = credential::mint(Kind::RefreshToken, "test").digest;
                    let nonce = credential::nonce().to_vec();
                    start.wait().await;
                    let rotated = rotate(&*store, old, digest, nonce.clone(), T0).await;
                    (digest, nonce, rotated)
                })
            })
            .collect();
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (digest, nonce, Some(id)) => winners.push((digest, nonce, id)),
                (digest, _, None) => losers.push(digest),
            }
        }
        assert_eq!(winners.len(), 1, "{} successors", winners.len());
        assert_eq!(losers.len(), 7);
        let (digest, nonce, id) = winners.pop().unwrap();
        assert_eq!(
            store.refresh_successor(g.refresh_id).await.unwrap(),
            Some((id, nonce))
        );
        let successor = store.refresh_token(&digest).await.unwrap().unwrap();
        assert_eq!(successor.id, id);
        assert_eq!(successor.family_id, g.refresh_id);
        for digest in &losers {
            assert_eq!(store.refresh_token(digest).await.unwrap(), None);
        }
    }
);

conformance!(
    concurrent_consents_of_one_user_share_one_access,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let app = make_app(&*store, org.id, "crm-sync").await;
        let bob = make_user(&*store, org.id, "bob").await;
        let scopes = ["lists:read", "contacts:read"];
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let start = start.clone();
                let c = consent(org.id, app.id, bob.id, scopes[i % 2], None);
                tokio::spawn(async move {
                    let digest = c.refresh_token;
                    start.wait().await;
                    let granted = store
                        .grant_account_access(c, audit(Some(org.id), T0, "account_access.granted"))
                        .await;
                    (digest, granted)
                })
            })
            .collect();
        let mut accesses = Vec::new();
        let mut digests = Vec::new();
        for task in tasks {
            let (digest, granted) = task.await.unwrap();
            let (access, _) = granted.unwrap_or_else(|e| panic!("a consent failed: {e:?}"));
            accesses.push(access.id);
            digests.push(digest);
        }
        accesses.dedup();
        assert_eq!(accesses.len(), 1, "{accesses:?}");
        let access = store.account_access(app.id, bob.id).await.unwrap().unwrap();
        assert_eq!(access.id, accesses[0]);
        assert_eq!(
            access.scopes,
            grantry_core::GrantSet::parse_scope("lists:read contacts:read").unwrap()
        );
        for digest in &digests {
            let record = store.refresh_token(digest).await.unwrap().unwrap();
            assert_eq!(record.access, access);
        }
        assert_eq!(
            count_audit(&*store, org.id, "account_access.granted").await,
            8
        );
    }
);
