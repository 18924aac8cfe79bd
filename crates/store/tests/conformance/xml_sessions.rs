//! The XML API's `Login` sessions: start, lookup with the user and key as they are now, the
//! liveness bound, touch, end, the per-org cap (atomic under races) and purging.

use std::sync::Arc;
use std::time::Duration;

use grantry_core::credential::{self, Digest, Kind};
use grantry_core::model::{ApiKey, OrgId, User};
use grantry_core::store::{SessionBounds, SessionStart};
use grantry_core::{GrantSet, Store, Timestamp};

use crate::harness::*;

const LIVE_FOR: Duration = Duration::from_secs(31 * 60);

async fn api_user_with_key(store: &dyn Store, org: OrgId, username: &str) -> (User, ApiKey) {
    let grants = GrantSet::parse_scope("lists:read").unwrap();
    let user = store
        .create_user(
            org,
            api_user(username, grants),
            audit(Some(org), T0, "user.created"),
        )
        .await
        .unwrap();
    let key = store
        .generate_api_key(
            user.id,
            credential::mint(Kind::ApiSecretKey, "test").digest,
            T0,
            audit(Some(org), T0, "api_key.generated"),
        )
        .await
        .unwrap();
    (user, key)
}

fn session_id() -> Digest {
    credential::mint(Kind::XmlSession, "test").digest
}

async fn start(
    store: &dyn Store,
    user: &User,
    key: &ApiKey,
    at: Timestamp,
    cap: u32,
) -> (Digest, SessionStart) {
    let d = session_id();
    let audit = audit(Some(user.org_id), at, "xml_session.started");
    let bounds = SessionBounds {
        live_for: LIVE_FOR,
        max_per_org: cap,
    };
    let started = store
        .start_xml_session(d, user, key, at, bounds, audit)
        .await
        .unwrap();
    (d, started)
}

conformance!(
    xml_session_starts_and_is_found_with_its_user_and_key,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let (user, key) = api_user_with_key(&*store, org.id, "feeder").await;
        let (d, started) = start(&*store, &user, &key, T0, 20).await;
        assert_eq!(started, SessionStart::Started);
        assert_eq!(count_audit(&*store, org.id, "xml_session.started").await, 1);
        let s = store.xml_session(&d, T0, LIVE_FOR).await.unwrap().unwrap();
        assert_eq!((s.org_id, s.user.id, s.key.id), (org.id, user.id, key.id));
        assert_eq!((s.created_at, s.last_seen_at), (T0, T0));
        assert!(store
            .xml_session(&session_id(), T0, LIVE_FOR)
            .await
            .unwrap()
            .is_none());
    }
);

conformance!(
    xml_session_is_live_up_to_its_bound_and_touch_extends_it,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let (user, key) = api_user_with_key(&*store, org.id, "feeder").await;
        let (d, _) = start(&*store, &user, &key, T0, 20).await;
        let edge = T0.plus(LIVE_FOR);
        assert!(store
            .xml_session(&d, edge, LIVE_FOR)
            .await
            .unwrap()
            .is_some());
        let past = Timestamp(edge.0 + 1);
        assert!(store
            .xml_session(&d, past, LIVE_FOR)
            .await
            .unwrap()
            .is_none());

        let later = T0.plus(Duration::from_secs(600));
        let s = store
            .xml_session(&d, later, LIVE_FOR)
            .await
            .unwrap()
            .unwrap();
        store.touch_xml_session(s.id, later).await.unwrap();
        // The time never moves back.
        store.touch_xml_session(s.id, T0).await.unwrap();
        let s = store
            .xml_session(&d, past, LIVE_FOR)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.last_seen_at, later);
        let gone = Timestamp(later.plus(LIVE_FOR).0 + 1);
        assert!(store
            .xml_session(&d, gone, LIVE_FOR)
            .await
            .unwrap()
            .is_none());
    }
);

conformance!(xml_session_ends_once, |store| async move {
    let (org, _) = make_org(&*store, "acme").await;
    let (user, key) = api_user_with_key(&*store, org.id, "feeder").await;
    let (d, _) = start(&*store, &user, &key, T0, 20).await;
    let end = || audit(Some(org.id), T0, "xml_session.ended");
    assert!(store.end_xml_session(&d, end()).await.unwrap());
    assert!(!store.end_xml_session(&d, end()).await.unwrap());
    assert!(store.xml_session(&d, T0, LIVE_FOR).await.unwrap().is_none());
    assert_eq!(count_audit(&*store, org.id, "xml_session.ended").await, 1);
});

conformance!(
    xml_sessions_capped_per_org_counting_only_live_ones,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let (other, _) = make_org(&*store, "other").await;
        let (user, key) = api_user_with_key(&*store, org.id, "feeder").await;
        let (user2, key2) = api_user_with_key(&*store, other.id, "feeder").await;
        let (first, _) = start(&*store, &user, &key, T0, 2).await;
        assert_eq!(
            start(&*store, &user, &key, T0, 2).await.1,
            SessionStart::Started
        );
        assert_eq!(
            start(&*store, &user, &key, T0, 2).await.1,
            SessionStart::OrgFull
        );
        assert_eq!(count_audit(&*store, org.id, "xml_session.started").await, 2);
        // Another org has its own places.
        assert_eq!(
            start(&*store, &user2, &key2, T0, 2).await.1,
            SessionStart::Started
        );
        // An ended session frees its place.
        let end = audit(Some(org.id), T0, "xml_session.ended");
        assert!(store.end_xml_session(&first, end).await.unwrap());
        assert_eq!(
            start(&*store, &user, &key, T0, 2).await.1,
            SessionStart::Started
        );
        // Idle ones do not count.
        let later = Timestamp(T0.plus(LIVE_FOR).0 + 1);
        assert_eq!(
            start(&*store, &user, &key, later, 2).await.1,
            SessionStart::Started
        );
        assert_eq!(
            start(&*store, &user, &key, later, 2).await.1,
            SessionStart::Started
        );
        assert_eq!(
            start(&*store, &user, &key, later, 2).await.1,
            SessionStart::OrgFull
        );
    }
);

conformance!(
    racing_starts_for_the_last_places_exactly_the_cap_succeed,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let (user, key) = api_user_with_key(&*store, org.id, "feeder").await;
        for _ in 0..19 {
            assert_eq!(
                start(&*store, &user, &key, T0, 20).await.1,
                SessionStart::Started
            );
        }
        // The 20th and 21st at once.
        let (a, b) = tokio::join!(
            start(&*store, &user, &key, T0, 20),
            start(&*store, &user, &key, T0, 20)
        );
        let mut outcomes = [a.1, b.1];
        outcomes.sort_by_key(|o| *o == SessionStart::OrgFull);
        assert_eq!(outcomes, [SessionStart::Started, SessionStart::OrgFull]);

        // Sixteen at once for four places.
        let (org2, _) = make_org(&*store, "busy").await;
        let (user, key) = api_user_with_key(&*store, org2.id, "feeder").await;
        let (user, key) = (Arc::new(user), Arc::new(key));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (store, user, key) = (store.clone(), user.clone(), key.clone());
                tokio::spawn(async move { start(&*store, &user, &key, T0, 4).await.1 })
            })
            .collect();
        let mut started = 0;
        for t in tasks {
            if t.await.unwrap() == SessionStart::Started {
                started += 1;
            }
        }
        assert_eq!(started, 4);
        assert_eq!(
            count_audit(&*store, org2.id, "xml_session.started").await,
            4
        );
    }
);

conformance!(
    xml_sessions_end_with_their_user_and_key,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let (user, key) = api_user_with_key(&*store, org.id, "feeder").await;
        let (d, _) = start(&*store, &user, &key, T0, 20).await;
        // Disabling is seen at once (the caller refuses a disabled user).
        store
            .set_user_disabled(user.id, true, T0, audit(Some(org.id), T0, "user.disabled"))
            .await
            .unwrap();
        let s = store.xml_session(&d, T0, LIVE_FOR).await.unwrap().unwrap();
        assert!(s.user.disabled);
        // Deleting a key is seen at once with its stop time.
        store
            .set_user_disabled(user.id, false, T0, audit(Some(org.id), T0, "user.enabled"))
            .await
            .unwrap();
        let stops = T0.plus(Duration::from_secs(60));
        store
            .delete_api_key(
                user.id,
                1,
                T0,
                stops,
                audit(Some(org.id), T0, "api_key.deleted"),
            )
            .await
            .unwrap();
        let s = store.xml_session(&d, T0, LIVE_FOR).await.unwrap().unwrap();
        assert_eq!(s.key.stops_at, Some(stops));
        // Deleting the user ends the session.
        store
            .delete_user(user.id, audit(Some(org.id), T0, "user.deleted"))
            .await
            .unwrap();
        assert!(store.xml_session(&d, T0, LIVE_FOR).await.unwrap().is_none());
    }
);

conformance!(sweep_purges_idle_xml_sessions_only, |store| async move {
    let (org, _) = make_org(&*store, "acme").await;
    let (user, key) = api_user_with_key(&*store, org.id, "feeder").await;
    let (old, _) = start(&*store, &user, &key, T0, 20).await;
    let later = T0.plus(Duration::from_secs(600));
    let (fresh, _) = start(&*store, &user, &key, later, 20).await;
    let at_edge = T0.plus(LIVE_FOR);
    let r = store.sweep(at_edge, Timestamp(0)).await.unwrap().unwrap();
    assert_eq!(r.xml_sessions, 0);
    let past = Timestamp(at_edge.0 + 1);
    let r = store.sweep(past, Timestamp(0)).await.unwrap().unwrap();
    assert_eq!(r.xml_sessions, 1);
    assert!(store
        .xml_session(&old, T0, LIVE_FOR)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .xml_session(&fresh, past, LIVE_FOR)
        .await
        .unwrap()
        .is_some());
});
