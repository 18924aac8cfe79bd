//! What the admin API needs of a store (docs/architecture.md, the admin API): updates as
//! compare-and-set, the idempotency key of a create stored by the create's own transaction
//! and unique per org, and the sweeper forgetting keys after a day.

use grantry_core::admin::idempotency::KEPT_FOR;
use grantry_core::model::Role;
use grantry_core::store::{IdempotencyRecord, SweepReport};
use grantry_core::{Grant, GrantSet, StoreError};

use crate::cache::within_a_second;
use crate::harness::*;

conformance!(
    an_application_update_is_a_compare_and_set,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let old = make_app(&*store, org.id, "crm").await;
        make_app(&*store, org.id, "billing").await;
        // Read once: the cached record must not outlive the update.
        assert_eq!(
            store
                .application_by_client_id(&old.client_id)
                .await
                .unwrap(),
            Some(old.clone())
        );
        let mut new = old.clone();
        new.name = "CRM sync".into();
        new.description = "nightly".into();
        new.scopes = [Grant::ListsRead].into_iter().collect();
        new.redirect_uris = vec!["https://crm.example.com/cb".into()];
        let changed = store
            .update_application(&old, &new, audit(Some(org.id), T0, "application.updated"))
            .await
            .unwrap();
        assert!(changed);
        assert_eq!(
            store
                .application_by_client_id(&old.client_id)
                .await
                .unwrap(),
            Some(new.clone())
        );
        // A writer holding the record as it was before changes nothing, and records nothing.
        let mut late = old.clone();
        late.name = "Overwritten".into();
        let changed = store
            .update_application(&old, &late, audit(Some(org.id), T0, "application.updated"))
            .await
            .unwrap();
        assert!(!changed);
        assert_eq!(
            store
                .application_by_client_id(&old.client_id)
                .await
                .unwrap(),
            Some(new.clone())
        );
        assert_eq!(count_audit(&*store, org.id, "application.updated").await, 1);
        // Another application's name is taken.
        let mut clash = new.clone();
        clash.name = "billing".into();
        let err = store
            .update_application(&new, &clash, audit(Some(org.id), T0, "application.updated"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict("application")),
            "{err:?}"
        );
        assert_eq!(count_audit(&*store, org.id, "application.updated").await, 1);
    }
);

conformance!(
    a_users_role_and_grants_update_is_a_compare_and_set,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let old = make_user(&*store, org.id, "alice").await;
        let grants: GrantSet = [Grant::ContactsRead].into_iter().collect();
        let changed = store
            .update_user_access(
                &old,
                Role::OrgAdmin,
                grants,
                audit(Some(org.id), T0, "user.updated"),
            )
            .await
            .unwrap();
        assert!(changed);
        let now = store.user_by_id(old.id).await.unwrap().unwrap();
        assert_eq!((now.role, now.grants), (Role::OrgAdmin, grants));
        let changed = store
            .update_user_access(
                &old,
                Role::User,
                GrantSet::empty(),
                audit(Some(org.id), T0, "user.updated"),
            )
            .await
            .unwrap();
        assert!(
            !changed,
            "the role and grants read before the first update are stale"
        );
        let now = store.user_by_id(old.id).await.unwrap().unwrap();
        assert_eq!((now.role, now.grants), (Role::OrgAdmin, grants));
        assert_eq!(count_audit(&*store, org.id, "user.updated").await, 1);
    }
);

fn keyed(
    org: grantry_core::model::OrgId,
    key: &str,
    fingerprint: u8,
    target: String,
) -> grantry_core::store::NewAudit {
    let mut a = audit(Some(org), T0, "application.created");
    a.target = target;
    a.idempotency = Some(IdempotencyRecord {
        org_id: org,
        key: key.into(),
        fingerprint: [fingerprint; 32],
    });
    a
}

conformance!(
    an_idempotency_key_is_stored_once_per_org_by_the_creates_transaction,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let (other, _) = make_org(&*store, "beta").await;
        let first = new_app(org.id, "crm", GrantSet::apis(), false);
        let target = format!("application:{}", first.client_id);
        store
            .create_application(first.clone(), None, keyed(org.id, "k-1", 7, target.clone()))
            .await
            .unwrap();
        let stored = store
            .idempotent_request(org.id, "k-1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                stored.fingerprint,
                stored.target.as_str(),
                stored.created_at
            ),
            ([7; 32], target.as_str(), T0)
        );
        assert_eq!(store.idempotent_request(org.id, "k-2").await.unwrap(), None);
        assert_eq!(
            store.idempotent_request(other.id, "k-1").await.unwrap(),
            None
        );

        // A second create under the key commits nothing: not the application, not its event.
        let second = new_app(org.id, "crm-again", GrantSet::apis(), false);
        let target2 = format!("application:{}", second.client_id);
        let err = store
            .create_application(second.clone(), None, keyed(org.id, "k-1", 8, target2))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict("idempotency key")),
            "{err:?}"
        );
        assert_eq!(
            store
                .application_by_client_id(&second.client_id)
                .await
                .unwrap(),
            None
        );
        assert_eq!(count_audit(&*store, org.id, "application.created").await, 1);
        assert_eq!(
            store
                .idempotent_request(org.id, "k-1")
                .await
                .unwrap()
                .unwrap()
                .fingerprint,
            [7; 32]
        );

        // The same key in another org is another key.
        let theirs = new_app(other.id, "crm", GrantSet::apis(), false);
        let target3 = format!("application:{}", theirs.client_id);
        store
            .create_application(theirs, None, keyed(other.id, "k-1", 9, target3))
            .await
            .unwrap();

        // The sweeper forgets keys a day old, and nothing younger.
        let report = store
            .sweep(T0.plus(KEPT_FOR), T0.minus(HOUR))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.idempotency_keys, 0);
        let report = store
            .sweep(
                T0.plus(KEPT_FOR).plus(std::time::Duration::from_millis(1)),
                T0.minus(HOUR),
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            report,
            SweepReport {
                idempotency_keys: 2,
                ..SweepReport::default()
            }
        );
        assert_eq!(store.idempotent_request(org.id, "k-1").await.unwrap(), None);
        assert!(store
            .application_by_client_id(&first.client_id)
            .await
            .unwrap()
            .is_some());
    }
);

conformance_twins!(
    an_application_narrowed_by_one_instance_is_narrow_on_the_other_within_a_second,
    |a, b| async move {
        let (org, _) = make_org(&*a, "acme").await;
        let old = make_app(&*a, org.id, "crm").await;
        for _ in 0..2 {
            assert_eq!(
                b.application_by_client_id(&old.client_id)
                    .await
                    .unwrap()
                    .unwrap()
                    .scopes,
                GrantSet::all()
            );
        }
        let mut new = old.clone();
        new.scopes = [Grant::ListsRead].into_iter().collect();
        assert!(a
            .update_application(&old, &new, audit(Some(org.id), T0, "application.updated"))
            .await
            .unwrap());
        within_a_second("the narrowed application", || async {
            b.application_by_client_id(&old.client_id)
                .await
                .unwrap()
                .unwrap()
                .scopes
                == new.scopes
        })
        .await;
    }
);
