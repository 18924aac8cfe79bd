//! The audit log: per org, oldest first, from a given time on.

use grantry_core::store::audit::AuditEvent;

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
