//! What the admin console reads and changes: an org's users and applications, roles,
//! passwords and the sessions they end, sessions that end after a time without requests, and
//! the audit log one page at a time.

use std::collections::HashSet;
use std::time::Duration;

use grantry_core::credential::{self, Digest, Kind};
use grantry_core::model::{Role, User};
use grantry_core::store::{AuditEvent, AuditQuery, NewAudit, Redemption};
use grantry_core::{GrantSet, Store, StoreError, Timestamp};

use crate::harness::*;

const MINUTE: Duration = Duration::from_secs(60);
const MS: Duration = Duration::from_millis(1);
/// The time without requests after which the tests' sessions end.
const IDLE: Duration = Duration::from_secs(30 * 60);

/// An id no row has.
const MISSING: i64 = 9_999_999;

fn usernames(users: &[User]) -> Vec<&str> {
    users.iter().map(|u| u.username.as_str()).collect()
}

/// A new session of `user`, begun at `at` and ending 8 hours later.
async fn session(store: &dyn Store, user: &User, at: Timestamp) -> Digest {
    let digest = credential::mint(Kind::Session, "test").digest;
    store
        .create_session(digest, user.id, at, at.plus(8 * HOUR))
        .await
        .unwrap();
    digest
}

conformance!(users_of_an_org_are_listed_by_username, |store| async move {
    let (acme, admin) = make_org(&*store, "acme").await;
    let (globex, _) = make_org(&*store, "globex").await;
    for name in ["carol", "alice", "bob"] {
        make_user(&*store, acme.id, name).await;
    }
    let feeder = store
        .create_user(
            acme.id,
            api_user("zed-feeder", GrantSet::empty()),
            audit(Some(acme.id), T0, "user.created"),
        )
        .await
        .unwrap();
    make_user(&*store, globex.id, "aaron").await;
    make_user(&*store, globex.id, "bob").await;

    let users = store.users(acme.id).await.unwrap();
    assert_eq!(
        usernames(&users),
        ["acme-admin", "alice", "bob", "carol", "zed-feeder"]
    );
    assert!(users.iter().all(|u| u.org_id == acme.id));
    assert_eq!(users[0], admin);
    assert_eq!(users[4], feeder);
    for u in &users {
        assert_eq!(store.user_by_id(u.id).await.unwrap().as_ref(), Some(u));
    }

    let others = store.users(globex.id).await.unwrap();
    assert_eq!(usernames(&others), ["aaron", "bob", "globex-admin"]);
    assert!(others.iter().all(|u| u.org_id == globex.id));
    assert!(store.users(MISSING).await.unwrap().is_empty());
});

conformance!(
    a_role_change_is_honoured_at_once_and_a_missing_user_is_not_found,
    |store| async move {
        let g = granted(&*store).await;
        let (digest, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        // Cached before the change.
        assert_eq!(
            store.user_by_id(g.user.id).await.unwrap().unwrap().role,
            Role::User
        );
        let bearer = store.access_token(&digest).await.unwrap().unwrap();
        assert_eq!(bearer.user.role, Role::User);
        assert_ne!(bearer.user.effective_grants(), GrantSet::all());

        store
            .set_user_role(
                g.user.id,
                Role::OrgAdmin,
                audit(Some(g.org.id), T0, "user.role_changed"),
            )
            .await
            .unwrap();
        let user = store.user_by_id(g.user.id).await.unwrap().unwrap();
        assert_eq!(user.role, Role::OrgAdmin);
        assert_eq!(user.grants, g.user.grants, "the grants held are kept");
        let bearer = store.access_token(&digest).await.unwrap().unwrap();
        assert_eq!(bearer.user.role, Role::OrgAdmin);
        assert_eq!(bearer.user.effective_grants(), GrantSet::all());
        assert_eq!(
            store.users(g.org.id).await.unwrap()[1].role,
            Role::OrgAdmin,
            "alice, listed after acme-admin"
        );
        assert_eq!(count_audit(&*store, g.org.id, "user.role_changed").await, 1);

        store
            .set_user_role(
                g.user.id,
                Role::User,
                audit(Some(g.org.id), T0, "user.role_changed"),
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
                .role,
            Role::User
        );

        let err = store
            .set_user_role(
                MISSING,
                Role::OrgAdmin,
                audit(Some(g.org.id), T0, "user.role_changed"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
        assert_eq!(count_audit(&*store, g.org.id, "user.role_changed").await, 2);
    }
);

conformance!(
    the_one_time_password_flag_is_stored_and_read_everywhere,
    |store| async move {
        let (org, admin) = make_org(&*store, "acme").await;
        assert!(!admin.must_change_password);
        let mut new = ui_user("alice", Role::User, GrantSet::empty());
        new.must_change_password = true;
        let alice = store
            .create_user(org.id, new, audit(Some(org.id), T0, "user.created"))
            .await
            .unwrap();
        assert!(alice.must_change_password);
        assert_eq!(
            store.user_by_id(alice.id).await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.user_by_username(org.id, "alice").await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(store.users(org.id).await.unwrap()[1], alice);
        let s = session(&*store, &alice, T0).await;
        assert_eq!(
            store.session_user(&s, T0).await.unwrap(),
            Some(alice.clone())
        );

        let mut boss = ui_user("boss", Role::OrgAdmin, GrantSet::all());
        boss.must_change_password = true;
        let (other, boss) = store
            .create_org("globex", boss, audit(None, T0, "organization.created"))
            .await
            .unwrap();
        assert!(boss.must_change_password);
        assert_eq!(store.principal_admin(other.id).await.unwrap(), Some(boss));

        store
            .set_password(
                alice.id,
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$aGFzaDI".into(),
                false,
                Some(s),
                audit(Some(org.id), T0, "user.password_changed"),
            )
            .await
            .unwrap();
        assert!(
            !store
                .user_by_id(alice.id)
                .await
                .unwrap()
                .unwrap()
                .must_change_password
        );
        let touched = store
            .touch_session(&s, T0.plus(MINUTE), T0, T0.plus(MINUTE))
            .await
            .unwrap()
            .unwrap();
        assert!(!touched.must_change_password);
    }
);

conformance!(
    a_new_password_ends_every_other_session_of_its_user,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let alice = make_user(&*store, org.id, "alice").await;
        let bob = make_user(&*store, org.id, "bob").await;
        let kept = session(&*store, &alice, T0).await;
        let ended = [
            session(&*store, &alice, T0).await,
            session(&*store, &alice, T0).await,
        ];
        let bobs = session(&*store, &bob, T0).await;

        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDI$aGFzaDI";
        store
            .set_password(
                alice.id,
                hash.into(),
                false,
                Some(kept),
                audit(Some(org.id), T0, "user.password_changed"),
            )
            .await
            .unwrap();
        assert_eq!(
            store.password_hash(alice.id).await.unwrap().as_deref(),
            Some(hash)
        );
        let now = T0.plus(MINUTE);
        assert!(store.session_user(&kept, now).await.unwrap().is_some());
        for s in &ended {
            assert_eq!(store.session_user(s, now).await.unwrap(), None);
            assert_eq!(store.touch_session(s, now, T0, now).await.unwrap(), None);
        }
        assert_eq!(
            store.session_user(&bobs, now).await.unwrap().map(|u| u.id),
            Some(bob.id),
            "another user's session is left alone"
        );
        assert_eq!(
            count_audit(&*store, org.id, "user.password_changed").await,
            1
        );

        // Set by an admin: every session ends, and the password is a one-time one.
        let other = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDM$aGFzaDM";
        store
            .set_password(
                alice.id,
                other.into(),
                true,
                None,
                audit(Some(org.id), T0, "user.password_changed"),
            )
            .await
            .unwrap();
        assert_eq!(store.session_user(&kept, now).await.unwrap(), None);
        assert!(store.session_user(&bobs, now).await.unwrap().is_some());
        assert_eq!(
            store.password_hash(alice.id).await.unwrap().as_deref(),
            Some(other)
        );
        assert!(
            store
                .user_by_id(alice.id)
                .await
                .unwrap()
                .unwrap()
                .must_change_password
        );

        let err = store
            .set_password(
                MISSING,
                hash.into(),
                false,
                None,
                audit(Some(org.id), T0, "user.password_changed"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
        // API users have no password.
        let feeder = store
            .create_user(
                org.id,
                api_user("feeder", GrantSet::empty()),
                audit(Some(org.id), T0, "user.created"),
            )
            .await
            .unwrap();
        let err = store
            .set_password(
                feeder.id,
                hash.into(),
                false,
                None,
                audit(Some(org.id), T0, "user.password_changed"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("user")), "{err:?}");
        assert_eq!(store.password_hash(feeder.id).await.unwrap(), None);
        assert_eq!(
            count_audit(&*store, org.id, "user.password_changed").await,
            2
        );
    }
);

conformance!(
    an_access_was_last_used_when_any_of_its_rotated_refresh_tokens_was,
    |store| async move {
        let g = granted(&*store).await;
        let last_use = |store: std::sync::Arc<dyn Store>| async move {
            let access = store.account_accesses(g.org.id).await.unwrap()[0].last_used_at;
            let apps = store.applications(g.org.id).await.unwrap();
            let app = apps
                .iter()
                .find(|a| a.app.id == g.app.id)
                .unwrap()
                .last_used_at;
            assert_eq!(access, app, "the application's last use is its access's");
            access
        };
        assert_eq!(last_use(store.clone()).await, None);

        let at = T0.plus(HOUR);
        issue_from(&*store, g.org.id, g.refresh_id, at).await;
        assert_eq!(last_use(store.clone()).await, Some(at));

        // Rotating is a use of the old token; its successor is not used yet.
        let rotated_at = at.plus(MINUTE);
        let successor = rotate(
            &*store,
            g.refresh_id,
            credential::mint(Kind::RefreshToken, "test").digest,
            vec![7; 16],
            rotated_at,
        )
        .await
        .unwrap();
        assert_eq!(last_use(store.clone()).await, Some(rotated_at));

        let latest = rotated_at.plus(HOUR);
        issue_from(&*store, g.org.id, successor, latest).await;
        assert_eq!(last_use(store.clone()).await, Some(latest));
    }
);

conformance!(
    applications_are_listed_by_name_with_their_last_use,
    |store| async move {
        let g = granted(&*store).await;
        let billing = make_app(&*store, g.org.id, "billing").await;
        let (other, _) = make_org(&*store, "globex").await;
        make_app(&*store, other.id, "aardvark").await;

        let apps = store.applications(g.org.id).await.unwrap();
        let names: Vec<&str> = apps.iter().map(|a| a.app.name.as_str()).collect();
        assert_eq!(names, ["billing", "crm-sync"]);
        assert_eq!(apps[0].app, billing);
        assert_eq!(apps[1].app, g.app);
        assert!(apps.iter().all(|a| a.last_used_at.is_none()));

        let at = T0.plus(HOUR);
        issue_from(&*store, g.org.id, g.refresh_id, at).await;
        let apps = store.applications(g.org.id).await.unwrap();
        assert_eq!(apps[0].last_used_at, None);
        assert_eq!(apps[1].last_used_at, Some(at));

        // The latest use over every account access of the application.
        let bob = make_user(&*store, g.org.id, "bob").await;
        let refresh = credential::mint(Kind::RefreshToken, "test").digest;
        store
            .create_account_access(
                g.org.id,
                g.app.id,
                bob.id,
                Some(g.admin.id),
                refresh,
                audit(Some(g.org.id), at, "account_access.created"),
            )
            .await
            .unwrap();
        let bobs = store.refresh_token(&refresh).await.unwrap().unwrap().id;
        let later = at.plus(HOUR);
        issue_from(&*store, g.org.id, bobs, later).await;
        issue_from(&*store, g.org.id, g.refresh_id, at.plus(MINUTE)).await;
        let apps = store.applications(g.org.id).await.unwrap();
        assert_eq!(apps[1].last_used_at, Some(later));

        let theirs = store.applications(other.id).await.unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].app.name, "aardvark");
        assert!(store.applications(MISSING).await.unwrap().is_empty());
    }
);

conformance!(
    deleting_an_application_removes_it_with_everything_it_holds,
    |store| async move {
        let g = granted(&*store).await;
        let keep = make_app(&*store, g.org.id, "billing").await;
        let (digest, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        let code = new_auth_code(g.org.id, g.app.id, g.user.id, T0);
        let code_digest = code.digest;
        store.create_auth_code(code).await.unwrap();

        assert!(store
            .delete_application(g.app.id, audit(Some(g.org.id), T0, "application.deleted"))
            .await
            .unwrap());
        assert_eq!(
            store
                .application_by_client_id(&g.app.client_id)
                .await
                .unwrap(),
            None
        );
        assert!(store.client_secrets(g.app.id, T0).await.unwrap().is_empty());
        assert_eq!(
            store.account_access(g.app.id, g.user.id).await.unwrap(),
            None
        );
        assert!(store.account_accesses(g.org.id).await.unwrap().is_empty());
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_none());
        assert!(store.access_token(&digest).await.unwrap().is_none());
        assert!(matches!(
            store
                .redeem_auth_code(&code_digest, g.app.id, T0)
                .await
                .unwrap(),
            Redemption::Unknown
        ));
        let apps = store.applications(g.org.id).await.unwrap();
        assert_eq!(apps.len(), 1);
        assert_eq!(apps[0].app, keep);
        assert_eq!(
            store.user_by_id(g.user.id).await.unwrap().as_ref(),
            Some(&g.user),
            "the user stays"
        );
        assert_eq!(
            count_audit(&*store, g.org.id, "application.deleted").await,
            1
        );

        assert!(!store
            .delete_application(g.app.id, audit(Some(g.org.id), T0, "application.deleted"))
            .await
            .unwrap());
        assert_eq!(
            count_audit(&*store, g.org.id, "application.deleted").await,
            1,
            "nothing deleted, nothing recorded"
        );
    }
);

conformance!(
    a_touched_session_lives_until_idle_or_expired,
    |store| async move {
        let g = granted(&*store).await;
        let s = session(&*store, &g.user, T0).await;
        let idle_since = |now: Timestamp| now.minus(IDLE);

        // Not seen since it began: it began at T0.
        let t = T0.plus(IDLE).minus(MS);
        assert_eq!(
            store.touch_session(&s, t, idle_since(t), t).await.unwrap(),
            Some(g.user.clone())
        );
        // Each request keeps it alive for another idle period from its own time.
        let t2 = t.plus(IDLE).minus(MS);
        assert_eq!(
            store
                .touch_session(&s, t2, idle_since(t2), t2)
                .await
                .unwrap(),
            Some(g.user.clone()),
            "seen at t, live at t + idle - 1 ms"
        );
        let t3 = t2.plus(IDLE).minus(MS);
        assert!(store
            .touch_session(&s, t3, idle_since(t3), t3)
            .await
            .unwrap()
            .is_some());
        let late = t3.plus(IDLE).plus(MS);
        assert_eq!(
            store
                .touch_session(&s, late, idle_since(late), late)
                .await
                .unwrap(),
            None,
            "idle for longer than the idle period"
        );
        // A refused touch records nothing: the session was last seen at t3 still.
        assert_eq!(
            store
                .touch_session(&s, late, t3.plus(MS), late)
                .await
                .unwrap(),
            None
        );
        assert!(store
            .touch_session(&s, late, t3, late)
            .await
            .unwrap()
            .is_some());

        // Untouched past the idle period.
        let quiet = session(&*store, &g.user, T0).await;
        let now = T0.plus(IDLE).plus(MS);
        assert_eq!(
            store
                .touch_session(&quiet, now, idle_since(now), now)
                .await
                .unwrap(),
            None
        );

        // Expired, however recently seen.
        let short = credential::mint(Kind::Session, "test").digest;
        let expires_at = T0.plus(20 * MINUTE);
        store
            .create_session(short, g.user.id, T0, expires_at)
            .await
            .unwrap();
        let t = expires_at.minus(MINUTE);
        assert!(store
            .touch_session(&short, t, idle_since(t), t)
            .await
            .unwrap()
            .is_some());
        let t = expires_at.minus(MS);
        assert!(store
            .touch_session(&short, t, idle_since(t), t)
            .await
            .unwrap()
            .is_some());
        for t in [expires_at, expires_at.plus(MS)] {
            assert_eq!(
                store
                    .touch_session(&short, t, idle_since(t), t)
                    .await
                    .unwrap(),
                None,
                "at {t:?}"
            );
        }

        let unknown = credential::mint(Kind::Session, "test").digest;
        assert_eq!(
            store.touch_session(&unknown, T0, T0, T0).await.unwrap(),
            None
        );
    }
);

conformance!(
    a_session_seen_recently_enough_is_read_not_recorded,
    |store| async move {
        let g = granted(&*store).await;
        // A request at `now` that records itself if the session was last seen before
        // `record_before`; the session ends `IDLE` after that.
        let touch = |s: Digest, now: Timestamp, record_before: Timestamp| {
            let store = store.clone();
            async move {
                store
                    .touch_session(&s, now, now.minus(IDLE), record_before)
                    .await
                    .unwrap()
            }
        };
        let (t, late) = (T0.plus(MINUTE), T0.plus(IDLE).plus(MS));
        let user = Some(g.user.clone());

        // Seen at T0 (its start), which is not before T0: answered, nothing recorded, so
        // its idle time still counts from T0.
        let read = session(&*store, &g.user, T0).await;
        assert_eq!(touch(read, t, T0).await, user);
        assert_eq!(
            touch(read, late, late).await,
            None,
            "the use at T0 + 1 min was not recorded"
        );

        // Seen at T0, which is before T0 + 1 min: this use is recorded.
        let recorded = session(&*store, &g.user, T0).await;
        assert_eq!(touch(recorded, t, t).await, user);
        assert_eq!(
            touch(recorded, late, T0).await,
            user,
            "the use at T0 + 1 min was recorded"
        );
    }
);

conformance!(
    a_session_of_a_disabled_user_or_an_api_user_is_not_touched,
    |store| async move {
        let g = granted(&*store).await;
        let s = session(&*store, &g.user, T0).await;
        let at = T0.plus(MINUTE);
        store
            .set_user_disabled(
                g.user.id,
                true,
                at,
                audit(Some(g.org.id), at, "user.disabled"),
            )
            .await
            .unwrap();
        assert_eq!(store.touch_session(&s, at, T0, at).await.unwrap(), None);
        store
            .set_user_disabled(
                g.user.id,
                false,
                at,
                audit(Some(g.org.id), at, "user.enabled"),
            )
            .await
            .unwrap();
        assert_eq!(
            store
                .touch_session(&s, at, T0, at)
                .await
                .unwrap()
                .map(|u| u.id),
            Some(g.user.id)
        );

        let feeder = store
            .create_user(
                g.org.id,
                api_user("feeder", GrantSet::all()),
                audit(Some(g.org.id), T0, "user.created"),
            )
            .await
            .unwrap();
        let theirs = session(&*store, &feeder, T0).await;
        assert_eq!(
            store.touch_session(&theirs, at, T0, at).await.unwrap(),
            None
        );
    }
);

conformance!(signing_out_ends_the_session, |store| async move {
    let g = granted(&*store).await;
    let s = session(&*store, &g.user, T0).await;
    let other = session(&*store, &g.user, T0).await;
    store.delete_session(&s).await.unwrap();
    assert_eq!(store.session_user(&s, T0).await.unwrap(), None);
    assert_eq!(store.touch_session(&s, T0, T0, T0).await.unwrap(), None);
    assert!(store.session_user(&other, T0).await.unwrap().is_some());
    // Signing out twice, or out of a session that never was, is no error.
    store.delete_session(&s).await.unwrap();
    let unknown = credential::mint(Kind::Session, "test").digest;
    store.delete_session(&unknown).await.unwrap();
});

fn actions(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.action.as_str()).collect()
}

/// A page of up to 100 events.
fn query() -> AuditQuery {
    AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    }
}

conformance!(audit_pages_are_filtered_newest_first, |store| async move {
    let (acme, _) = make_org(&*store, "acme").await;
    let (globex, _) = make_org(&*store, "globex").await;
    let record = |org, hours: u32, actor: &'static str, action: &'static str| {
        let store = store.clone();
        async move {
            let at = T0.plus(HOUR * hours);
            let event = NewAudit::new(Some(org), at, actor, action, "test:target");
            store.record_audit(event).await.unwrap();
        }
    };
    record(acme.id, 1, "alice", "account_access.created").await;
    record(globex.id, 1, "alice", "account_access.created").await;
    record(acme.id, 2, "bob", "account_access.deleted").await;
    record(acme.id, 3, "alice", "user.created").await;
    // `_` is a plain character in a prefix, not a wildcard.
    record(acme.id, 4, "carol", "accountXaccess.created").await;
    record(globex.id, 5, "alice", "user.created").await;

    let org = acme.id;
    let page = |q: AuditQuery| {
        let store = store.clone();
        async move {
            let events = store.audit_page(org, &q).await.unwrap();
            assert!(events.iter().all(|e| e.org_id == Some(org)));
            events
        }
    };
    let all = page(query()).await;
    assert_eq!(
        actions(&all),
        [
            "accountXaccess.created",
            "user.created",
            "account_access.deleted",
            "account_access.created",
            "organization.created"
        ]
    );
    assert_eq!(all[0].actor, "carol");
    assert_eq!(all[0].at, T0.plus(4 * HOUR));
    assert_eq!(all[0].target, "test:target");

    let alices = page(AuditQuery {
        actor: Some("alice".into()),
        ..query()
    })
    .await;
    assert_eq!(actions(&alices), ["user.created", "account_access.created"]);
    assert!(page(AuditQuery {
        actor: Some("ali".into()),
        ..query()
    })
    .await
    .is_empty());

    let accesses = page(AuditQuery {
        action_prefix: Some("account_access.".into()),
        ..query()
    })
    .await;
    assert_eq!(
        actions(&accesses),
        ["account_access.deleted", "account_access.created"]
    );
    let prefixed = page(AuditQuery {
        action_prefix: Some("account".into()),
        ..query()
    })
    .await;
    assert_eq!(prefixed.len(), 3);
    assert!(page(AuditQuery {
        action_prefix: Some("%".into()),
        ..query()
    })
    .await
    .is_empty());

    let from = page(AuditQuery {
        from: Some(T0.plus(2 * HOUR)),
        ..query()
    })
    .await;
    assert_eq!(
        actions(&from),
        [
            "accountXaccess.created",
            "user.created",
            "account_access.deleted"
        ],
        "from is inclusive"
    );
    let to = page(AuditQuery {
        to: Some(T0.plus(2 * HOUR)),
        ..query()
    })
    .await;
    assert_eq!(
        actions(&to),
        ["account_access.created", "organization.created"],
        "to is exclusive"
    );
    let between = page(AuditQuery {
        actor: Some("alice".into()),
        from: Some(T0.plus(HOUR)),
        to: Some(T0.plus(3 * HOUR)),
        ..query()
    })
    .await;
    assert_eq!(actions(&between), ["account_access.created"]);

    let two = page(AuditQuery {
        limit: 2,
        ..query()
    })
    .await;
    assert_eq!(actions(&two), actions(&all[..2]));
    assert!(page(AuditQuery::default()).await.is_empty(), "limit 0");

    let theirs = store.audit_page(globex.id, &query()).await.unwrap();
    assert_eq!(
        actions(&theirs),
        [
            "user.created",
            "account_access.created",
            "organization.created"
        ]
    );
});

conformance!(
    paging_through_the_audit_log_sees_each_event_once,
    |store| async move {
        let (acme, _) = make_org(&*store, "acme").await;
        let (globex, _) = make_org(&*store, "globex").await;
        // Three events a minute, so pages also break between events of one time.
        for i in 0..25u32 {
            let at = T0.plus(HOUR).plus(MINUTE * (i / 3));
            for org in [acme.id, globex.id] {
                let event = NewAudit::new(Some(org), at, "tester", "page.event", "test:page");
                store.record_audit(event).await.unwrap();
            }
        }

        let mut seen: Vec<AuditEvent> = Vec::new();
        let mut sizes = Vec::new();
        let mut before = None;
        loop {
            let q = AuditQuery {
                action_prefix: Some("page.".into()),
                before,
                limit: 10,
                ..AuditQuery::default()
            };
            let events = store.audit_page(acme.id, &q).await.unwrap();
            sizes.push(events.len());
            let Some(last) = events.last() else {
                break;
            };
            before = Some((last.at, last.id));
            seen.extend(events);
        }
        assert_eq!(sizes, [10, 10, 5, 0]);
        assert!(seen.iter().all(|e| e.org_id == Some(acme.id)));
        let ids: HashSet<i64> = seen.iter().map(|e| e.id).collect();
        assert_eq!(ids.len(), 25, "no event twice");
        assert!(
            seen.windows(2)
                .all(|w| (w[0].at, w[0].id) > (w[1].at, w[1].id)),
            "newest first"
        );
        assert_eq!(seen[0].at, T0.plus(HOUR).plus(MINUTE * 8));
        assert_eq!(seen[24].at, T0.plus(HOUR));

        // The whole log, oldest first, is the same events.
        let mut all: Vec<AuditEvent> = store
            .audit_events(acme.id, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "page.event")
            .collect();
        all.reverse();
        assert_eq!(all, seen);
    }
);
