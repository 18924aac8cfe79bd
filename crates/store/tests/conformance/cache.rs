//! Credential lookups are cached in each process, and a change that narrows what a credential
//! opens is honoured within one second by every other process on the same database (and at
//! once by the process that made it). Each test warms the cache of store `b`, changes the
//! database through store `a` (another process, as the CLI or a second instance would be),
//! and requires `b` to see the change in under a second.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use grantry_core::credential::{self, Kind};
use grantry_core::store::{Revocation, TokenOwner};
use grantry_core::GrantSet;

use crate::harness::*;

/// The bound, and the slack allowed for measuring it on a loaded machine.
const BOUND: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_millis(100);

/// Polls `check` until it holds. The bound is about lookups that *start* after a change: it
/// fails only when a lookup that started more than [`BOUND`] (plus [`SLACK`]) after the change
/// returned still saw the old state, so a stalled machine that starts its next lookup late
/// cannot make it fail, and a real breach of the bound always does.
#[allow(
    clippy::disallowed_methods,
    reason = "the bound under test is one of wall time"
)]
pub(crate) async fn within_a_second<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let changed = Instant::now();
    loop {
        let started = Instant::now();
        if check().await {
            return;
        }
        let late = started.duration_since(changed);
        assert!(
            late <= BOUND + SLACK,
            "{what}: a lookup that started {} ms after the change still saw the old state \
             (bound {} ms)",
            late.as_millis(),
            BOUND.as_millis()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

conformance_twins!(
    deleting_an_account_access_reaches_the_other_instance,
    |a, b| async move {
        let g = granted(&*a).await;
        let (digest, _) = issue_from(&*a, g.org.id, g.refresh_id, T0).await;
        for _ in 0..2 {
            assert!(!b.access_token(&digest).await.unwrap().unwrap().revoked);
            assert!(b.refresh_token(&g.refresh_token).await.unwrap().is_some());
        }
        assert!(a
            .revoke_account_access(
                g.access.id,
                T0,
                audit(Some(g.org.id), T0, "account_access.deleted")
            )
            .await
            .unwrap());
        within_a_second("the revoked access token", || async {
            b.access_token(&digest).await.unwrap().unwrap().revoked
        })
        .await;
        within_a_second("the revoked refresh token", || async {
            b.refresh_token(&g.refresh_token).await.unwrap().is_none()
        })
        .await;
    }
);

conformance_twins!(
    deleting_an_application_reaches_the_other_instance,
    |a, b| async move {
        let g = granted(&*a).await;
        let (digest, _) = issue_from(&*a, g.org.id, g.refresh_id, T0).await;
        for _ in 0..2 {
            assert!(!b.access_token(&digest).await.unwrap().unwrap().revoked);
            assert!(b.refresh_token(&g.refresh_token).await.unwrap().is_some());
            assert!(b
                .application_by_client_id(&g.app.client_id)
                .await
                .unwrap()
                .is_some());
            assert_eq!(b.client_secrets(g.app.id, T0).await.unwrap().len(), 1);
        }
        assert!(a
            .delete_application(g.app.id, audit(Some(g.org.id), T0, "application.deleted"))
            .await
            .unwrap());
        within_a_second("the deleted application's access token", || async {
            b.access_token(&digest).await.unwrap().is_none()
        })
        .await;
        within_a_second("the deleted application's refresh token", || async {
            b.refresh_token(&g.refresh_token).await.unwrap().is_none()
        })
        .await;
        within_a_second("the deleted application", || async {
            b.application_by_client_id(&g.app.client_id)
                .await
                .unwrap()
                .is_none()
                && b.client_secrets(g.app.id, T0).await.unwrap().is_empty()
        })
        .await;
    }
);

conformance_twins!(
    revoking_one_token_reaches_the_other_instance,
    |a, b| async move {
        let g = granted(&*a).await;
        let (digest, _) = issue_from(&*a, g.org.id, g.refresh_id, T0).await;
        assert!(!b.access_token(&digest).await.unwrap().unwrap().revoked);
        assert!(
            a.revoke_token(
                TokenOwner::Application(g.app.id),
                &digest,
                T0,
                audit(Some(g.org.id), T0, "token.revoked")
            )
            .await
            .unwrap()
                == Revocation::Revoked
        );
        within_a_second("the revoked access token", || async {
            b.access_token(&digest).await.unwrap().unwrap().revoked
        })
        .await;
    }
);

conformance_twins!(
    grant_changes_and_disablement_reach_the_other_instance,
    |a, b| async move {
        let g = granted(&*a).await;
        let (digest, _) = issue_from(&*a, g.org.id, g.refresh_id, T0).await;
        let before = b.access_token(&digest).await.unwrap().unwrap();
        assert!(before.user.grants.contains(grantry_core::Grant::ListsRead));
        assert_eq!(
            b.user_by_id(g.user.id).await.unwrap().unwrap().grants,
            before.user.grants
        );

        let narrowed = GrantSet::parse_scope("contacts:read").unwrap();
        a.set_user_grants(
            g.user.id,
            narrowed,
            audit(Some(g.org.id), T0, "user.grants"),
        )
        .await
        .unwrap();
        within_a_second("the narrowed grants", || async {
            b.access_token(&digest).await.unwrap().unwrap().user.grants == narrowed
                && b.user_by_id(g.user.id).await.unwrap().unwrap().grants == narrowed
        })
        .await;

        a.set_user_disabled(
            g.user.id,
            true,
            T0,
            audit(Some(g.org.id), T0, "user.disabled"),
        )
        .await
        .unwrap();
        within_a_second("the disabled user", || async {
            b.access_token(&digest)
                .await
                .unwrap()
                .unwrap()
                .user
                .disabled
                && b.user_by_id(g.user.id).await.unwrap().unwrap().disabled
        })
        .await;
    }
);

conformance_twins!(
    deleting_a_secret_key_reaches_the_other_instance,
    |a, b| async move {
        let (org, _) = make_org(&*a, "acme").await;
        let user = a
            .create_user(
                org.id,
                api_user("feeder", GrantSet::all()),
                audit(Some(org.id), T0, "user.created"),
            )
            .await
            .unwrap();
        let secret = credential::mint(Kind::ApiSecretKey, "test").digest;
        a.generate_api_key(
            user.id,
            secret,
            T0,
            audit(Some(org.id), T0, "api_key.generated"),
        )
        .await
        .unwrap();
        let (key, _) = b.api_key_by_digest(&secret).await.unwrap().unwrap();
        assert!(key.works_at(T0.plus(HOUR)));

        // Deleted with no grace: it stops at once.
        a.delete_api_key(
            user.id,
            1,
            T0,
            T0,
            audit(Some(org.id), T0, "api_key.deleted"),
        )
        .await
        .unwrap()
        .expect("the key in slot 1");
        within_a_second("the deleted key", || async {
            let (key, _) = b.api_key_by_digest(&secret).await.unwrap().unwrap();
            !key.works_at(T0.plus(HOUR))
        })
        .await;
    }
);

conformance_twins!(
    a_rotated_client_secret_reaches_the_other_instance,
    |a, b| async move {
        let (org, _) = make_org(&*a, "acme").await;
        let app = make_app(&*a, org.id, "crm-sync").await;
        let old = b.client_secrets(app.id, T0).await.unwrap();
        assert_eq!(old.len(), 1);
        let new = credential::mint(Kind::ClientSecret, "test").digest;
        a.rotate_client_secret(
            app.id,
            new.into(),
            T0,
            T0,
            audit(Some(org.id), T0, "application.secret_rotated"),
        )
        .await
        .unwrap();
        within_a_second("the new client secret", || async {
            b.client_secrets(app.id, T0.plus(HOUR)).await.unwrap() == vec![new]
        })
        .await;
    }
);

conformance!(
    the_instance_that_makes_a_change_honours_it_at_once,
    |store| async move {
        let g = granted(&*store).await;
        let (digest, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        assert!(!store.access_token(&digest).await.unwrap().unwrap().revoked);
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_some());
        store
            .revoke_account_access(
                g.access.id,
                T0,
                audit(Some(g.org.id), T0, "account_access.deleted"),
            )
            .await
            .unwrap();
        assert!(store.access_token(&digest).await.unwrap().unwrap().revoked);
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_none());
    }
);

conformance!(
    the_instance_that_deletes_an_application_refuses_its_tokens_at_once,
    |store| async move {
        let g = granted(&*store).await;
        let (digest, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        assert!(!store.access_token(&digest).await.unwrap().unwrap().revoked);
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_some());
        assert!(store
            .application_by_client_id(&g.app.client_id)
            .await
            .unwrap()
            .is_some());
        assert_eq!(store.client_secrets(g.app.id, T0).await.unwrap().len(), 1);
        assert!(store
            .delete_application(g.app.id, audit(Some(g.org.id), T0, "application.deleted"))
            .await
            .unwrap());
        assert!(store.access_token(&digest).await.unwrap().is_none());
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .application_by_client_id(&g.app.client_id)
            .await
            .unwrap()
            .is_none());
        assert!(store.client_secrets(g.app.id, T0).await.unwrap().is_empty());
    }
);

conformance!(
    grant_changes_and_disablement_are_honoured_at_once_by_the_instance_making_them,
    |store| async move {
        let g = granted(&*store).await;
        let (digest, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        assert!(
            !store
                .access_token(&digest)
                .await
                .unwrap()
                .unwrap()
                .user
                .disabled
        );
        assert!(!store.user_by_id(g.user.id).await.unwrap().unwrap().disabled);

        let narrowed = GrantSet::parse_scope("contacts:read").unwrap();
        store
            .set_user_grants(
                g.user.id,
                narrowed,
                audit(Some(g.org.id), T0, "user.grants"),
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .access_token(&digest)
                .await
                .unwrap()
                .unwrap()
                .user
                .grants,
            narrowed
        );

        store
            .set_user_disabled(
                g.user.id,
                true,
                T0,
                audit(Some(g.org.id), T0, "user.disabled"),
            )
            .await
            .unwrap();
        assert!(
            store
                .access_token(&digest)
                .await
                .unwrap()
                .unwrap()
                .user
                .disabled
        );
        assert!(store.user_by_id(g.user.id).await.unwrap().unwrap().disabled);
    }
);
