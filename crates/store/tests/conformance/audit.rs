//! The audit log: per org, oldest first, from a given time on.

use grantry_core::store::audit::{AuditEvent, NewAudit};
use grantry_core::Timestamp;

use crate::harness::*;

conformance!(
    audit_events_are_oldest_first_per_org_from_since_on,
    |store| async move {
        let (a, _) = make_org(&*store, "acme").await;
        let (b, _) = make_org(&*store, "globex").await;
        let record = |org, hours: u32, action| {
            let store = store.clone();
            async move {
                let at = T0.plus(HOUR * hours);
                store.record_audit(audit(org, at, action)).await.unwrap();
            }
        };
        // Written out of time order; read back by time, then by arrival.
        record(Some(a.id), 2, "c").await;
        record(Some(a.id), 1, "a").await;
        record(Some(b.id), 1, "other-org").await;
        record(None, 1, "no-org").await;
        record(Some(a.id), 1, "b").await;
        record(Some(a.id), 3, "d").await;

        let actions =
            |events: Vec<AuditEvent>| events.into_iter().map(|e| e.action).collect::<Vec<_>>();
        let all = store.audit_events(a.id, None).await.unwrap();
        assert!(all.iter().all(|e| e.org_id == Some(a.id)));
        assert!(all.windows(2).all(|w| w[0].at <= w[1].at));
        assert_eq!(actions(all), ["organization.created", "a", "b", "c", "d"]);

        let since = store.audit_events(a.id, Some(T0.plus(HOUR))).await.unwrap();
        assert_eq!(actions(since), ["a", "b", "c", "d"]);
        let since = store
            .audit_events(a.id, Some(T0.plus(2 * HOUR)))
            .await
            .unwrap();
        assert_eq!(actions(since), ["c", "d"]);
        let since = store
            .audit_events(a.id, Some(T0.plus(4 * HOUR)))
            .await
            .unwrap();
        assert!(since.is_empty());

        let other = store.audit_events(b.id, None).await.unwrap();
        assert_eq!(actions(other), ["organization.created", "other-org"]);
        let event = store
            .audit_events(a.id, Some(T0.plus(3 * HOUR)))
            .await
            .unwrap();
        assert_eq!(event[0].actor, "tester");
        assert_eq!(event[0].target, "test:d");
        assert_eq!(event[0].at, T0.plus(3 * HOUR));
    }
);

/// A refused authentication of `actor` at `at`, merged inside one hour.
fn failure(org: grantry_core::model::OrgId, at: Timestamp, actor: &str, target: &str) -> NewAudit {
    NewAudit::auth_failed(org, at, actor, target, "wrong client_secret", HOUR)
}

/// The org's `authentication.failed` events.
async fn failures(
    store: &dyn grantry_core::Store,
    org: grantry_core::model::OrgId,
) -> Vec<AuditEvent> {
    let events = store.audit_events(org, None).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.action == "authentication.failed")
        .collect()
}

conformance!(
    refusals_of_one_credential_inside_the_window_are_one_counted_event,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let minutes = |m: u64| T0.plus(std::time::Duration::from_secs(60 * m));
        for m in [0, 10, 50] {
            store
                .record_audit(failure(org.id, minutes(m), "app-1", "application:app-1"))
                .await
                .unwrap();
        }
        // Another credential, and an event that does not merge, are events of their own.
        store
            .record_audit(failure(org.id, minutes(20), "app-2", "application:app-2"))
            .await
            .unwrap();
        let plain = NewAudit::new(
            Some(org.id),
            minutes(30),
            "app-1",
            "authentication.failed",
            "application:app-1",
        );
        store.record_audit(plain).await.unwrap();

        let events = failures(&*store, org.id).await;
        let summary: Vec<_> = events
            .iter()
            .map(|e| (e.actor.as_str(), e.at, e.count, e.last_at))
            .collect();
        assert_eq!(
            summary,
            [
                ("app-1", minutes(0), 3, minutes(50)),
                ("app-2", minutes(20), 1, minutes(20)),
                ("app-1", minutes(30), 1, minutes(30)),
            ]
        );
        assert_eq!(
            events[0].detail,
            serde_json::json!({"reason": "wrong client_secret"})
        );

        // An hour after the credential's events, the window is over: a new event starts.
        store
            .record_audit(failure(org.id, minutes(91), "app-1", "application:app-1"))
            .await
            .unwrap();
        store
            .record_audit(failure(org.id, minutes(92), "app-1", "application:app-1"))
            .await
            .unwrap();
        let events = failures(&*store, org.id).await;
        assert_eq!(events.len(), 4);
        assert_eq!(
            (events[3].at, events[3].count, events[3].last_at),
            (minutes(91), 2, minutes(92))
        );
        assert_eq!(events[0].count, 3, "the closed window's event is unchanged");

        // The same credential in another organization is another event.
        let (other, _) = make_org(&*store, "globex").await;
        store
            .record_audit(failure(other.id, minutes(93), "app-1", "application:app-1"))
            .await
            .unwrap();
        assert_eq!(failures(&*store, other.id).await.len(), 1);
        assert_eq!(failures(&*store, org.id).await[3].count, 2);
        // Only refusals merge: other events are appended, whatever they ask.
        for m in [1, 2] {
            let mut signed_in = NewAudit::new(
                Some(org.id),
                minutes(m),
                "app-1",
                "user.signed_in",
                "application:app-1",
            );
            signed_in.merge_within = Some(HOUR);
            store.record_audit(signed_in).await.unwrap();
        }
        assert_eq!(count_audit(&*store, org.id, "user.signed_in").await, 2);
        // Every other event counts once.
        let created = store.audit_events(org.id, None).await.unwrap();
        assert_eq!(created[0].action, "organization.created");
        assert_eq!((created[0].count, created[0].last_at), (1, created[0].at));
    }
);

conformance_twins!(
    concurrent_refusals_of_one_credential_are_counted_exactly_on_one_event,
    |a, b| async move {
        let (org, _) = make_org(&*a, "acme").await;
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(24));
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                let start = start.clone();
                let at = T0.plus(std::time::Duration::from_millis(i));
                tokio::spawn(async move {
                    start.wait().await;
                    store
                        .record_audit(failure(org.id, at, "app-1", "application:app-1"))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let events = failures(&*a, org.id).await;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].count, 24);
        assert_eq!(
            events[0].last_at,
            T0.plus(std::time::Duration::from_millis(23))
        );
    }
);
