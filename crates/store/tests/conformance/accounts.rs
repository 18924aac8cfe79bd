//! Organizations, users and applications.

use grantry_core::credential::{self, Kind};
use grantry_core::model::{Role, UserKind};
use grantry_core::{Grant, GrantSet, StoreError};

use crate::harness::*;

conformance!(
    create_org_creates_org_and_its_principal_admin,
    |store| async move {
        assert_eq!(store.count_orgs().await.unwrap(), 0);
        let (org, admin) = make_org(&*store, "acme").await;
        assert_eq!(org.name, "acme");
        assert_eq!(org.created_at, T0);
        assert_eq!(store.org_by_name("acme").await.unwrap(), Some(org.clone()));
        assert_eq!(store.org_by_name("nope").await.unwrap(), None);
        assert_eq!(store.count_orgs().await.unwrap(), 1);

        assert_eq!(admin.org_id, org.id);
        assert_eq!(admin.username, "acme-admin");
        assert_eq!(admin.email, "acme-admin@example.com");
        assert_eq!(admin.kind, UserKind::Ui);
        assert_eq!(admin.role, Role::OrgAdmin);
        assert!(admin.principal);
        assert!(!admin.disabled);
        assert_eq!(admin.effective_grants(), GrantSet::all());

        assert_eq!(
            store.principal_admin(org.id).await.unwrap(),
            Some(admin.clone())
        );
        assert_eq!(
            store.user_by_username(org.id, "acme-admin").await.unwrap(),
            Some(admin.clone())
        );
        assert_eq!(store.user_by_id(admin.id).await.unwrap(), Some(admin));

        // The audit record is filed under the new org, whose id the caller could not know.
        let events = store.audit_events(org.id, None).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "organization.created");
        assert_eq!(events[0].org_id, Some(org.id));
    }
);

conformance!(
    org_name_taken_conflicts_and_creates_nothing,
    |store| async move {
        let (org, admin) = make_org(&*store, "acme").await;
        let before = store.audit_events(org.id, None).await.unwrap();

        let second = ui_user("intruder", Role::OrgAdmin, GrantSet::all());
        let err = store
            .create_org("acme", second, audit(None, T0, "organization.created"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict("organization")),
            "{err:?}"
        );

        assert_eq!(store.count_orgs().await.unwrap(), 1);
        assert_eq!(
            store.user_by_username(org.id, "intruder").await.unwrap(),
            None
        );
        assert_eq!(store.principal_admin(org.id).await.unwrap(), Some(admin));
        assert_eq!(store.audit_events(org.id, None).await.unwrap(), before);

        // Nothing of the failed call was left behind to collide with later.
        let (other, other_admin) = make_org(&*store, "globex").await;
        assert_eq!(store.count_orgs().await.unwrap(), 2);
        assert_eq!(store.audit_events(other.id, None).await.unwrap().len(), 1);
        assert_eq!(
            store.principal_admin(other.id).await.unwrap(),
            Some(other_admin)
        );
    }
);

conformance!(
    username_taken_in_org_conflicts_but_is_free_in_another_org,
    |store| async move {
        let (a, _) = make_org(&*store, "acme").await;
        let (b, _) = make_org(&*store, "globex").await;
        let grants = GrantSet::parse_scope("lists:read").unwrap();

        let alice = store
            .create_user(
                a.id,
                ui_user("alice", Role::User, grants),
                audit(Some(a.id), T0, "user.created"),
            )
            .await
            .unwrap();
        assert_eq!(alice.org_id, a.id);
        assert!(!alice.principal);
        assert_eq!(
            store.user_by_id(alice.id).await.unwrap(),
            Some(alice.clone())
        );

        let err = store
            .create_user(
                a.id,
                ui_user("alice", Role::OrgAdmin, GrantSet::all()),
                audit(Some(a.id), T0, "user.created"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict("user")), "{err:?}");
        assert_eq!(count_audit(&*store, a.id, "user.created").await, 1);
        assert_eq!(
            store.user_by_username(a.id, "alice").await.unwrap(),
            Some(alice.clone()),
            "the failed call changed the existing user"
        );

        let other_alice = store
            .create_user(
                b.id,
                ui_user("alice", Role::User, GrantSet::empty()),
                audit(Some(b.id), T0, "user.created"),
            )
            .await
            .unwrap();
        assert_ne!(other_alice.id, alice.id);
        assert_eq!(
            store.user_by_username(b.id, "alice").await.unwrap(),
            Some(other_alice.clone())
        );
        assert_eq!(
            store
                .user_by_id(other_alice.id)
                .await
                .unwrap()
                .unwrap()
                .org_id,
            b.id
        );
        assert_eq!(
            store.user_by_id(alice.id).await.unwrap().unwrap().org_id,
            a.id
        );
        assert_eq!(
            store
                .user_by_id(alice.id + other_alice.id + 1000)
                .await
                .unwrap(),
            None
        );
    }
);

conformance!(
    api_user_is_stored_with_its_key_id_and_grants,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let grants: GrantSet = [Grant::ContactsRead, Grant::EventsWrite]
            .into_iter()
            .collect();
        let new = api_user("feeder", grants);
        let key_id = new.key_id.clone();
        let user = store
            .create_user(org.id, new, audit(Some(org.id), T0, "user.created"))
            .await
            .unwrap();
        let stored = store
            .user_by_username(org.id, "feeder")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, user);
        assert_eq!(stored.kind, UserKind::Api);
        assert_eq!(stored.key_id, key_id);
        assert_eq!(stored.grants, grants);
        assert_eq!(stored.effective_grants(), grants);
    }
);

conformance!(
    set_user_grants_changes_grants_and_unknown_user_is_not_found,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let user = store
            .create_user(
                org.id,
                api_user("feeder", GrantSet::parse_scope("lists:read").unwrap()),
                audit(Some(org.id), T0, "user.created"),
            )
            .await
            .unwrap();
        let grants = GrantSet::parse_scope("contacts:read contacts:write").unwrap();
        store
            .set_user_grants(
                user.id,
                grants,
                audit(Some(org.id), T0, "user.grants_changed"),
            )
            .await
            .unwrap();
        let stored = store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(stored.grants, grants);
        assert_eq!(stored.effective_grants(), grants);
        assert_eq!(count_audit(&*store, org.id, "user.grants_changed").await, 1);

        let err = store
            .set_user_grants(
                user.id + 1000,
                GrantSet::all(),
                audit(Some(org.id), T0, "user.grants_changed"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
        assert_eq!(count_audit(&*store, org.id, "user.grants_changed").await, 1);
    }
);

conformance!(
    application_is_found_by_client_id_with_its_secret,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let secret = credential::mint(Kind::ClientSecret, "test");
        let scopes = GrantSet::parse_scope("lists:read contacts:write").unwrap();
        let new = new_app(org.id, "crm-sync", scopes, false);
        let app = store
            .create_application(
                new.clone(),
                Some(secret.digest.into()),
                audit(Some(org.id), T0, "application.created"),
            )
            .await
            .unwrap();
        assert_eq!(app.org_id, org.id);
        assert_eq!(app.client_id, new.client_id);

        let stored = store
            .application_by_client_id(&new.client_id)
            .await
            .unwrap()
            .expect("the application is found by its client id");
        assert_eq!(stored, app);
        assert_eq!(stored.name, "crm-sync");
        assert_eq!(stored.description, new.description);
        assert_eq!(stored.scopes, scopes);
        assert_eq!(stored.redirect_uris, new.redirect_uris);
        assert!(!stored.public);
        assert_eq!(stored.created_at, T0);

        let secrets = store.client_secrets(app.id, T0.plus(HOUR)).await.unwrap();
        assert_eq!(secrets.len(), 1);
        assert!(secrets[0].matches(&secret.digest));
        assert_eq!(count_audit(&*store, org.id, "application.created").await, 1);
        assert_eq!(
            store
                .application_by_client_id("no-such-client")
                .await
                .unwrap(),
            None
        );
    }
);

conformance!(
    public_application_has_no_client_secrets,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let new = new_app(org.id, "cli", GrantSet::all(), true);
        let app = store
            .create_application(new, None, audit(Some(org.id), T0, "application.created"))
            .await
            .unwrap();
        let stored = store
            .application_by_client_id(&app.client_id)
            .await
            .unwrap()
            .unwrap();
        assert!(stored.public);
        assert!(store.client_secrets(app.id, T0).await.unwrap().is_empty());
    }
);

conformance!(
    application_name_taken_in_org_conflicts_but_is_free_in_another_org,
    |store| async move {
        let (a, _) = make_org(&*store, "acme").await;
        let (b, _) = make_org(&*store, "globex").await;
        let first = make_app(&*store, a.id, "crm-sync").await;

        let again = new_app(a.id, "crm-sync", GrantSet::all(), false);
        let again_client_id = again.client_id.clone();
        let again_secret = credential::mint(Kind::ClientSecret, "test").digest;
        let err = store
            .create_application(
                again,
                Some(again_secret.into()),
                audit(Some(a.id), T0, "application.created"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict("application")),
            "{err:?}"
        );
        assert_eq!(
            store
                .application_by_client_id(&again_client_id)
                .await
                .unwrap(),
            None
        );
        assert_eq!(count_audit(&*store, a.id, "application.created").await, 1);
        assert_eq!(store.client_secrets(first.id, T0).await.unwrap().len(), 1);

        let other = make_app(&*store, b.id, "crm-sync").await;
        assert_ne!(other.id, first.id);
        assert_eq!(
            store
                .application_by_client_id(&other.client_id)
                .await
                .unwrap(),
            Some(other)
        );
    }
);

conformance!(concurrent_grant_changes_all_hold, |store| async move {
    // Each change is made in place: none reads the set and writes it back over another.
    use grantry_core::Grant;
    let (org, _) = make_org(&*store, "acme").await;
    let user = store
        .create_user(
            org.id,
            api_user(
                "feeder",
                GrantSet::parse_scope("lists:read lists:write").unwrap(),
            ),
            audit(Some(org.id), T0, "user.created"),
        )
        .await
        .unwrap();
    for round in 0..8 {
        let changes = [
            (Grant::ContactsRead, true),
            (Grant::ContactsWrite, true),
            (Grant::EventsWrite, true),
            (Grant::ListsRead, false),
            (Grant::ListsWrite, false),
        ];
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(changes.len()));
        let tasks: Vec<_> = changes
            .into_iter()
            .map(|(g, on)| {
                let (store, start) = (store.clone(), start.clone());
                let on = if round % 2 == 0 { on } else { !on };
                tokio::spawn(async move {
                    start.wait().await;
                    let a = audit(Some(org.id), T0, "user.grant_changed");
                    store.change_user_grant(user.id, g, on, a).await.unwrap()
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let want = if round % 2 == 0 {
            "contacts:read contacts:write events:write"
        } else {
            "lists:read lists:write"
        };
        let stored = store.user_by_id(user.id).await.unwrap().unwrap();
        assert_eq!(
            stored.grants,
            GrantSet::parse_scope(want).unwrap(),
            "round {round}"
        );
    }
    assert_eq!(count_audit(&*store, org.id, "user.grant_changed").await, 40);
    let err = store
        .change_user_grant(
            user.id + 1000,
            Grant::ListsRead,
            true,
            audit(Some(org.id), T0, "x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
});
