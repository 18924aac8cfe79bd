//! Concurrent calls: what the store serializes, so that no race issues two tokens inside the
//! window, leaves a token alive past its revocation, records a first use twice, fills a third
//! key slot, or loses an acknowledged write.

use std::collections::BTreeMap;
use std::sync::Arc;

use grantry_core::credential::{self, Kind};
use grantry_core::model::AccessTokenRecord;
use grantry_core::store::{ContactKey, RefreshOutcome, Reissue};
use grantry_core::{GrantSet, StoreError};

use crate::harness::*;

conformance!(
    concurrent_refreshes_issue_exactly_one_token,
    |store| async move {
        let g = granted(&*store).await;
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                let start = start.clone();
                let (refresh, org) = (g.refresh_id, g.org.id);
                tokio::spawn(async move {
                    let fresh = fresh_token(T0);
                    let digest = fresh.digest;
                    start.wait().await;
                    let outcome = store
                        .refresh_access_token(
                            refresh,
                            &issue_if_none,
                            fresh,
                            audit(Some(org), T0, "access_token.issued"),
                        )
                        .await
                        .unwrap();
                    (digest, outcome)
                })
            })
            .collect();
        let mut issued = Vec::new();
        let mut reused = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (digest, RefreshOutcome::Issued(r)) => issued.push((digest, r)),
                (digest, RefreshOutcome::Reused(r)) => reused.push((digest, r)),
                (_, other) => panic!("unexpected outcome {other:?}"),
            }
        }
        assert_eq!(
            issued.len(),
            1,
            "{} tokens issued inside the window",
            issued.len()
        );
        assert_eq!(reused.len(), 15);
        let (issued_digest, token) = &issued[0];
        for (_, r) in &reused {
            assert_eq!(r.id, token.id);
            assert_eq!(r, token);
        }
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            1
        );
        let bearer = store.access_token(issued_digest).await.unwrap().unwrap();
        assert_eq!(bearer.token_id, token.id);
        for (digest, _) in &reused {
            assert!(store.access_token(digest).await.unwrap().is_none());
        }
    }
);

conformance!(
    refreshes_racing_a_revocation_leave_no_live_token,
    |store| async move {
        let g = granted(&*store).await;
        let start = Arc::new(tokio::sync::Barrier::new(9));
        let refreshes: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let start = start.clone();
                let (refresh, org) = (g.refresh_id, g.org.id);
                tokio::spawn(async move {
                    let fresh = fresh_token(T0);
                    let digest = fresh.digest;
                    start.wait().await;
                    let outcome = store
                        .refresh_access_token(
                            refresh,
                            &|_: Option<&AccessTokenRecord>| Reissue::Issue,
                            fresh,
                            audit(Some(org), T0, "access_token.issued"),
                        )
                        .await
                        .unwrap();
                    (digest, outcome)
                })
            })
            .collect();
        start.wait().await;
        let revoke = audit(Some(g.org.id), T0, "account_access.revoked");
        assert!(store
            .revoke_account_access(g.access.id, T0, revoke)
            .await
            .unwrap());
        for task in refreshes {
            let (digest, outcome) = task.await.unwrap();
            match outcome {
                RefreshOutcome::Issued(r) => {
                    let bearer = store.access_token(&digest).await.unwrap().unwrap();
                    assert_eq!(bearer.token_id, r.id);
                    assert!(
                        bearer.revoked,
                        "a token issued around the revocation is live"
                    );
                }
                RefreshOutcome::Revoked => {
                    assert!(store.access_token(&digest).await.unwrap().is_none());
                }
                other => panic!("unexpected outcome {other:?}"),
            }
        }
        // Whatever raced, nothing is issued after the revocation.
        let late = store
            .refresh_access_token(
                g.refresh_id,
                &|_: Option<&AccessTokenRecord>| Reissue::Issue,
                fresh_token(T0),
                audit(Some(g.org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        assert_eq!(late, RefreshOutcome::Revoked);
    }
);

conformance!(
    concurrent_first_uses_are_recorded_once,
    |store| async move {
        let g = granted(&*store).await;
        let (digest, token) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let start = start.clone();
                let org = g.org.id;
                tokio::spawn(async move {
                    start.wait().await;
                    let used = audit(Some(org), T0, "access_token.first_used");
                    store
                        .mark_access_token_used(&digest, token.id, used)
                        .await
                        .unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.first_used").await,
            1
        );
    }
);

conformance!(
    concurrent_updates_of_one_contact_lose_no_column,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let ann = add(&*store, org.id, list.id, "ann@example.com").await;
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    let cols = columns(&[(&format!("C{i:02}"), "set")]);
                    start.wait().await;
                    store
                        .update_contact(org.id, list.id, ann.id, None, &cols, T0)
                        .await
                        .unwrap()
                        .expect("the contact exists");
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let stored = store
            .contact(org.id, list.id, ContactKey::Id(ann.id))
            .await
            .unwrap()
            .unwrap();
        let missing: Vec<_> = (0..16)
            .map(|i| format!("C{i:02}"))
            .filter(|k| !stored.columns.contains_key(k))
            .collect();
        assert!(missing.is_empty(), "acknowledged updates lost: {missing:?}");
        assert_eq!(stored.columns["FIRST"], "ann@example.com");
    }
);

conformance!(
    concurrent_adds_of_one_address_create_one_contact,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    let email = if i % 2 == 0 {
                        "ann@example.com"
                    } else {
                        "ANN@example.com"
                    };
                    start.wait().await;
                    store
                        .add_contact(org.id, list.id, email, &BTreeMap::new(), T0)
                        .await
                })
            })
            .collect();
        let mut added = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => added += 1,
                Err(StoreError::Conflict("contact")) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        assert_eq!(added, 1);
        assert_eq!(store.list(org.id, list.id).await.unwrap().unwrap().size, 1);
    }
);

conformance!(
    concurrent_key_generation_fills_at_most_two_slots,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = store
            .create_user(
                org.id,
                api_user("feeder", GrantSet::all()),
                audit(Some(org.id), T0, "user.created"),
            )
            .await
            .unwrap();
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                let start = start.clone();
                tokio::spawn(async move {
                    let digest = credential::mint(Kind::ApiSecretKey, "test").digest;
                    let generated = audit(Some(org.id), T0, "api_key.generated");
                    start.wait().await;
                    store.generate_api_key(user.id, digest, T0, generated).await
                })
            })
            .collect();
        let mut slots = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(key) => slots.push(key.slot),
                Err(StoreError::Conflict("secret key")) => {}
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        slots.sort();
        assert_eq!(slots, [Some(1), Some(2)]);
        assert_eq!(store.api_keys(user.id, T0).await.unwrap().len(), 2);
        assert_eq!(count_audit(&*store, org.id, "api_key.generated").await, 2);
    }
);
