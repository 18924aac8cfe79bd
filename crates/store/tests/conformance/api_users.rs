//! API users' secret keys (two slots, promotion, a grace period after deletion), and
//! disabling and deleting users.

use grantry_core::credential::{self, Digest, Kind};
use grantry_core::model::{OrgId, User};
use grantry_core::store::RefreshOutcome;
use grantry_core::{GrantSet, Store, StoreError, Timestamp};

use crate::harness::*;

const MINUTE: std::time::Duration = std::time::Duration::from_secs(60);

async fn api_user_of(store: &dyn Store, org: OrgId, username: &str) -> User {
    let grants = GrantSet::parse_scope("lists:read events:write").unwrap();
    store
        .create_user(
            org,
            api_user(username, grants),
            audit(Some(org), T0, "user.created"),
        )
        .await
        .unwrap()
}

fn secret() -> Digest {
    credential::mint(Kind::ApiSecretKey, "test").digest
}

async fn generate(store: &dyn Store, user: &User, digest: Digest, at: Timestamp) -> i64 {
    let key = store
        .generate_api_key(
            user.id,
            digest,
            at,
            audit(Some(user.org_id), at, "api_key.generated"),
        )
        .await
        .unwrap();
    assert_eq!(key.user_id, user.id);
    key.slot.map(i64::from).expect("a new key holds a slot")
}

conformance!(
    api_keys_fill_slot_one_then_two_and_a_third_conflicts,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let (first, second) = (secret(), secret());
        assert_eq!(generate(&*store, &user, first, T0).await, 1);
        assert_eq!(generate(&*store, &user, second, T0.plus(MINUTE)).await, 2);

        let third = secret();
        let err = store
            .generate_api_key(
                user.id,
                third,
                T0,
                audit(Some(org.id), T0, "api_key.generated"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict("secret key")), "{err:?}");
        assert!(store.api_key_by_digest(&third).await.unwrap().is_none());
        assert_eq!(count_audit(&*store, org.id, "api_key.generated").await, 2);

        let keys = store.api_keys(user.id, T0.plus(HOUR)).await.unwrap();
        let slots: Vec<_> = keys.iter().map(|k| k.slot).collect();
        assert_eq!(slots, [Some(1), Some(2)]);
        assert!(keys
            .iter()
            .all(|k| k.stops_at.is_none() && k.deleted_at.is_none()));

        let (key, owner) = store.api_key_by_digest(&first).await.unwrap().unwrap();
        assert_eq!(key, keys[0]);
        assert_eq!(key.created_at, T0);
        assert_eq!(owner, user);
    }
);

conformance!(
    deleting_slot_one_promotes_slot_two_and_the_deleted_key_works_until_its_grace_ends,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let (first, second) = (secret(), secret());
        generate(&*store, &user, first, T0).await;
        generate(&*store, &user, second, T0).await;

        let now = T0.plus(HOUR);
        let stops_at = now.plus(5 * MINUTE);
        let deleted = store
            .delete_api_key(
                user.id,
                1,
                now,
                stops_at,
                audit(Some(org.id), now, "api_key.deleted"),
            )
            .await
            .unwrap()
            .expect("slot 1 held a key");
        assert!(deleted.promoted);
        assert_eq!(deleted.key.slot, None);
        assert_eq!(deleted.key.deleted_at, Some(now));
        assert_eq!(deleted.key.stops_at, Some(stops_at));
        assert_eq!(count_audit(&*store, org.id, "api_key.deleted").await, 1);

        let (old, _) = store.api_key_by_digest(&first).await.unwrap().unwrap();
        assert_eq!(old, deleted.key);
        assert!(old.works_at(stops_at.minus(MINUTE)));
        assert!(!old.works_at(stops_at));
        let (promoted, _) = store.api_key_by_digest(&second).await.unwrap().unwrap();
        assert_eq!(promoted.slot, Some(1));

        // Live keys first, then the deleted one while its grace lasts.
        let during = store.api_keys(user.id, now.plus(MINUTE)).await.unwrap();
        let ids: Vec<_> = during.iter().map(|k| (k.id, k.slot)).collect();
        assert_eq!(ids, [(promoted.id, Some(1)), (old.id, None)]);
        let after = store.api_keys(user.id, stops_at).await.unwrap();
        assert_eq!(after, [promoted]);

        // The freed slot is slot 2.
        assert_eq!(generate(&*store, &user, secret(), now).await, 2);
    }
);

conformance!(
    deleting_slot_two_promotes_nothing_and_an_empty_slot_is_none,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let delete = |slot: u8| {
            let store = store.clone();
            async move {
                let at = T0.plus(HOUR);
                store
                    .delete_api_key(
                        user.id,
                        slot,
                        at,
                        at.plus(5 * MINUTE),
                        audit(Some(org.id), at, "api_key.deleted"),
                    )
                    .await
                    .unwrap()
            }
        };
        assert_eq!(delete(1).await, None);
        let first = secret();
        generate(&*store, &user, first, T0).await;
        generate(&*store, &user, secret(), T0).await;
        let deleted = delete(2).await.expect("slot 2 held a key");
        assert!(!deleted.promoted);
        assert_eq!(delete(2).await, None);
        let (kept, _) = store.api_key_by_digest(&first).await.unwrap().unwrap();
        assert_eq!(kept.slot, Some(1));
        assert_eq!(count_audit(&*store, org.id, "api_key.deleted").await, 1);
    }
);

conformance!(
    key_token_reports_its_user_and_when_its_key_stops,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let digest = secret();
        generate(&*store, &user, digest, T0).await;
        let (key, _) = store.api_key_by_digest(&digest).await.unwrap().unwrap();
        let token = fresh_token(T0);
        let id = store
            .issue_key_token(
                &key,
                &user,
                token.clone(),
                audit(Some(org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        let bearer = store.access_token(&token.digest).await.unwrap().unwrap();
        assert_eq!(bearer.token_id, id);
        assert_eq!(bearer.user, user);
        assert_eq!(bearer.app, None);
        assert_eq!(bearer.scopes, token.scopes);
        assert_eq!(bearer.expires_at, token.expires_at);
        assert_eq!(bearer.key_stops_at, None);
        assert!(!bearer.revoked);
        assert_eq!(count_audit(&*store, org.id, "access_token.issued").await, 1);

        let stops_at = T0.plus(HOUR);
        let del = audit(Some(org.id), T0, "api_key.deleted");
        store
            .delete_api_key(user.id, 1, T0, stops_at, del)
            .await
            .unwrap();
        let bearer = store.access_token(&token.digest).await.unwrap().unwrap();
        assert_eq!(bearer.key_stops_at, Some(stops_at));
    }
);

conformance!(
    disabled_user_is_reported_disabled_by_every_lookup,
    |store| async move {
        let g = granted(&*store).await;
        let token = fresh_token(T0);
        let outcome = store
            .refresh_access_token(
                g.refresh_id,
                &issue_if_none,
                token.clone(),
                audit(Some(g.org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        assert!(matches!(outcome, RefreshOutcome::Issued(_)), "{outcome:?}");
        let feeder = api_user_of(&*store, g.org.id, "feeder").await;
        let key = secret();
        generate(&*store, &feeder, key, T0).await;

        let at = T0.plus(HOUR);
        for user in [g.user.id, feeder.id] {
            let a = audit(Some(g.org.id), at, "user.disabled");
            store.set_user_disabled(user, true, at, a).await.unwrap();
        }
        assert!(store.user_by_id(g.user.id).await.unwrap().unwrap().disabled);
        let bearer = store.access_token(&token.digest).await.unwrap().unwrap();
        assert!(bearer.user.disabled);
        let (_, owner) = store.api_key_by_digest(&key).await.unwrap().unwrap();
        assert!(owner.disabled);
        assert_eq!(count_audit(&*store, g.org.id, "user.disabled").await, 2);

        let a = audit(Some(g.org.id), at, "user.enabled");
        store
            .set_user_disabled(g.user.id, false, at, a)
            .await
            .unwrap();
        assert!(!store.user_by_id(g.user.id).await.unwrap().unwrap().disabled);
        let bearer = store.access_token(&token.digest).await.unwrap().unwrap();
        assert!(!bearer.user.disabled);

        let a = audit(Some(g.org.id), at, "user.disabled");
        let err = store
            .set_user_disabled(feeder.id + 1000, true, at, a)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
        assert_eq!(count_audit(&*store, g.org.id, "user.disabled").await, 2);
    }
);

conformance!(
    deleted_user_takes_its_keys_account_access_and_tokens_along,
    |store| async move {
        let g = granted(&*store).await;
        let token = fresh_token(T0);
        store
            .refresh_access_token(
                g.refresh_id,
                &issue_if_none,
                token.clone(),
                audit(Some(g.org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        let feeder = api_user_of(&*store, g.org.id, "feeder").await;
        let key = secret();
        generate(&*store, &feeder, key, T0).await;

        for user in [g.user.id, feeder.id] {
            let a = audit(Some(g.org.id), T0, "user.deleted");
            store.delete_user(user, a).await.unwrap();
        }
        assert_eq!(store.user_by_id(g.user.id).await.unwrap(), None);
        assert_eq!(
            store.user_by_username(g.org.id, "alice").await.unwrap(),
            None
        );
        assert_eq!(
            store.account_access(g.app.id, g.user.id).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .refresh_token(&g.refresh_token)
                .await
                .unwrap()
                .map(|r| r.access),
            None
        );
        assert!(store.access_token(&token.digest).await.unwrap().is_none());
        assert!(store.api_key_by_digest(&key).await.unwrap().is_none());
        assert!(store.api_keys(feeder.id, T0).await.unwrap().is_empty());
        assert_eq!(count_audit(&*store, g.org.id, "user.deleted").await, 2);

        let a = audit(Some(g.org.id), T0, "user.deleted");
        let err = store.delete_user(g.user.id, a).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
        assert_eq!(count_audit(&*store, g.org.id, "user.deleted").await, 2);
        // The username is free again.
        api_user_of(&*store, g.org.id, "feeder").await;
    }
);

/// The audit record of an issuance, as the token endpoint writes it.
fn issued(org: OrgId) -> grantry_core::store::audit::NewAudit {
    audit(Some(org), T0, "access_token.issued")
        .with_detail(serde_json::json!({"grant_type": "client_credentials"}))
}

conformance!(
    concurrent_issuances_are_all_kept_and_a_failing_one_undoes_only_itself,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let digest = secret();
        generate(&*store, &user, digest, T0).await;
        let (key, _) = store.api_key_by_digest(&digest).await.unwrap().unwrap();
        let taken = fresh_token(T0);
        let first = store
            .issue_key_token(&key, &user, taken.clone(), issued(org.id))
            .await
            .unwrap();

        // 48 issuances at once (on SQLite they share transactions); one of them reuses a
        // digest that is already stored, so it fails.
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(48));
        let tasks: Vec<_> = (0..48)
            .map(|i| {
                let (store, start, key, user) =
                    (store.clone(), start.clone(), key.clone(), user.clone());
                let token = if i == 17 {
                    taken.clone()
                } else {
                    fresh_token(T0)
                };
                tokio::spawn(async move {
                    start.wait().await;
                    let at = issued(user.org_id);
                    let out = store.issue_key_token(&key, &user, token.clone(), at).await;
                    (token.digest, out)
                })
            })
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for (i, task) in tasks.into_iter().enumerate() {
            let (digest, out) = task.await.unwrap();
            if i == 17 {
                assert!(out.is_err(), "a duplicate digest is refused");
                continue;
            }
            let id = out.expect("every other issuance succeeds");
            assert!(ids.insert(id), "ids are distinct");
            let stored = store.access_token(&digest).await.unwrap().expect("stored");
            assert_eq!(stored.token_id, id);
        }
        assert_eq!(ids.len(), 47);

        // One audit record per kept token (plus the first), naming it; none for the failed one.
        ids.insert(first);
        let named: std::collections::BTreeSet<i64> = store
            .audit_events(org.id, None)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "access_token.issued")
            .map(|e| {
                e.detail["token"]
                    .as_i64()
                    .expect("the audit names the token")
            })
            .collect();
        assert_eq!(named, ids);
        assert_eq!(
            count_audit(&*store, org.id, "access_token.issued").await,
            48
        );
    }
);

conformance!(
    issuances_of_many_requests_at_once_are_each_stored_with_their_own_audit_record,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let digest = secret();
        generate(&*store, &user, digest, T0).await;
        let (key, _) = store.api_key_by_digest(&digest).await.unwrap().unwrap();

        // 64 at once, nothing failing: they share transactions (SQLite) or statements
        // (PostgreSQL), and every token comes back with its own id, stored under its digest.
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (store, start, key, user) =
                    (store.clone(), start.clone(), key.clone(), user.clone());
                tokio::spawn(async move {
                    let token = fresh_token(T0);
                    start.wait().await;
                    let id = store
                        .issue_key_token(&key, &user, token.clone(), issued(user.org_id))
                        .await
                        .expect("every issuance succeeds");
                    (token, id)
                })
            })
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for task in tasks {
            let (token, id) = task.await.unwrap();
            assert!(ids.insert(id), "ids are distinct");
            let stored = store
                .access_token(&token.digest)
                .await
                .unwrap()
                .expect("stored");
            assert_eq!(stored.token_id, id);
            assert_eq!(stored.scopes, token.scopes);
            assert_eq!(stored.expires_at, token.expires_at);
        }
        let named: Vec<i64> = store
            .audit_events(org.id, None)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == "access_token.issued")
            .map(|e| {
                e.detail["token"]
                    .as_i64()
                    .expect("the audit names the token")
            })
            .collect();
        assert_eq!(named.len(), 64, "one audit record per token");
        assert_eq!(
            named.into_iter().collect::<std::collections::BTreeSet<_>>(),
            ids
        );
    }
);

conformance!(
    an_api_user_revokes_the_tokens_of_its_keys_and_nothing_else,
    |store| async move {
        use grantry_core::store::{Revocation, TokenOwner};
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let other = api_user_of(&*store, org.id, "other").await;
        let app = make_app(&*store, org.id, "Sync").await;
        let digest = secret();
        generate(&*store, &user, digest, T0).await;
        let (key, _) = store.api_key_by_digest(&digest).await.unwrap().unwrap();
        let token = fresh_token(T0);
        store
            .issue_key_token(
                &key,
                &user,
                token.clone(),
                audit(Some(org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        let revoke = || audit(Some(org.id), T0, "token.revoked");
        for stranger in [
            TokenOwner::ApiUser(other.id),
            TokenOwner::Application(app.id),
        ] {
            let r = store
                .revoke_token(stranger, &token.digest, T0, revoke())
                .await
                .unwrap();
            assert_eq!(r, Revocation::NotOwner);
        }
        assert!(
            !store
                .access_token(&token.digest)
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
        let r = store
            .revoke_token(TokenOwner::ApiUser(user.id), &token.digest, T0, revoke())
            .await
            .unwrap();
        assert_eq!(r, Revocation::Revoked);
        assert!(
            store
                .access_token(&token.digest)
                .await
                .unwrap()
                .unwrap()
                .revoked
        );
        assert_eq!(count_audit(&*store, org.id, "token.revoked").await, 1);
    }
);

conformance!(
    a_keys_last_use_is_recorded_never_moves_back_and_is_seen_through_the_cache,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = api_user_of(&*store, org.id, "feeder").await;
        let digest = secret();
        generate(&*store, &user, digest, T0).await;
        let (key, _) = store.api_key_by_digest(&digest).await.unwrap().unwrap();
        assert_eq!(key.last_used_at, None);
        assert!(key.use_is_news(T0));

        store
            .mark_api_key_used(&digest, key.id, T0.plus(MINUTE))
            .await
            .unwrap();
        let (cached, _) = store.api_key_by_digest(&digest).await.unwrap().unwrap();
        assert_eq!(cached.last_used_at, Some(T0.plus(MINUTE)));
        assert!(!cached.use_is_news(T0.plus(MINUTE).plus(MINUTE / 2)));
        assert!(cached.use_is_news(T0.plus(MINUTE * 2)));

        // An earlier use arriving late keeps the later one.
        store.mark_api_key_used(&digest, key.id, T0).await.unwrap();
        let listed = store.api_keys(user.id, T0.plus(HOUR)).await.unwrap();
        assert_eq!(listed[0].last_used_at, Some(T0.plus(MINUTE)));
        let (again, _) = store.api_key_by_digest(&digest).await.unwrap().unwrap();
        assert_eq!(again.last_used_at, Some(T0.plus(MINUTE)));
    }
);
