//! Failed authentications per subject: counted atomically, forgotten after the memory
//! window or on success, locks that only grow, and every instance sees the same counts.

use std::sync::Arc;
use std::time::Duration;

use grantry_core::limits::{self, Subject};
use grantry_core::settings::LimitSettings;
use grantry_core::store::FailureCount;
use grantry_core::Timestamp;

use crate::harness::*;

const HOUR: Duration = Duration::from_secs(3600);

conformance!(concurrent_failures_are_each_counted, |store| async move {
    let start = Arc::new(tokio::sync::Barrier::new(16));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            let start = start.clone();
            tokio::spawn(async move {
                start.wait().await;
                store
                    .count_failure("client:c1", T0, T0.minus(HOUR))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=16).collect::<Vec<u32>>(),
        "each call saw its own count"
    );
    let next = store
        .count_failure("client:c1", T0, T0.minus(HOUR))
        .await
        .unwrap();
    assert_eq!(next, 17);
    let other = store
        .count_failure("client:c2", T0, T0.minus(HOUR))
        .await
        .unwrap();
    assert_eq!(other, 1, "subjects are counted apart");
});

conformance!(
    a_count_older_than_the_memory_starts_again_and_forgets_its_lock,
    |store| async move {
        for _ in 0..3 {
            store
                .count_failure("user:1:ann", T0, T0.minus(HOUR))
                .await
                .unwrap();
        }
        store
            .lock_subject("user:1:ann", T0.plus(HOUR))
            .await
            .unwrap();
        let later = T0.plus(HOUR * 2);
        let n = store
            .count_failure("user:1:ann", later, later.minus(HOUR))
            .await
            .unwrap();
        assert_eq!(n, 1);
        assert!(store
            .active_lockouts(later.minus(HOUR))
            .await
            .unwrap()
            .is_empty());
    }
);

conformance!(
    locks_only_grow_and_a_success_clears_them,
    |store| async move {
        store
            .count_failure("key:K1", T0, T0.minus(HOUR))
            .await
            .unwrap();
        let long = T0.plus(HOUR);
        let got = store.lock_subject("key:K1", long).await.unwrap();
        assert_eq!(
            got,
            FailureCount {
                failures: 1,
                locked_until: Some(long)
            }
        );
        let got = store
            .lock_subject("key:K1", T0.plus(HOUR / 2))
            .await
            .unwrap();
        assert_eq!(
            got.locked_until,
            Some(long),
            "a shorter lock leaves the longer one"
        );
        assert_eq!(
            store.active_lockouts(T0).await.unwrap(),
            vec![("key:K1".to_string(), long)]
        );
        assert!(
            store.active_lockouts(long).await.unwrap().is_empty(),
            "over at its end"
        );
        store.clear_failures("key:K1").await.unwrap();
        assert!(store.active_lockouts(T0).await.unwrap().is_empty());
        let n = store
            .count_failure("key:K1", T0, T0.minus(HOUR))
            .await
            .unwrap();
        assert_eq!(n, 1, "a success starts the count again");
    }
);

conformance!(
    back_off_doubles_past_the_threshold_up_to_the_cap,
    |store| async move {
        let l = LimitSettings::default();
        let s = Subject::client("app-1");
        let mut locks = Vec::new();
        for _ in 0..(l.lockout_after + 12) {
            locks.push(limits::count_failure(&*store, &l, &s, T0).await.unwrap());
        }
        let secs = |t: Option<Timestamp>| t.map(|t| (t.0 - T0.0) / 1000);
        let first = (l.lockout_after - 1) as usize;
        assert!(locks[..first].iter().all(Option::is_none), "{locks:?}");
        assert_eq!(secs(locks[first]), Some(1));
        assert_eq!(secs(locks[first + 1]), Some(2));
        assert_eq!(secs(locks[first + 4]), Some(16));
        assert_eq!(
            secs(*locks.last().unwrap()),
            Some(900),
            "capped at lockout_max"
        );
    }
);

conformance!(
    purging_forgets_old_counts_but_keeps_live_locks,
    |store| async move {
        store
            .count_failure("basic:old", T0, T0.minus(HOUR))
            .await
            .unwrap();
        store
            .count_failure("basic:locked", T0, T0.minus(HOUR))
            .await
            .unwrap();
        store
            .lock_subject("basic:locked", T0.plus(HOUR * 3))
            .await
            .unwrap();
        let recent = T0.plus(HOUR * 2);
        store
            .count_failure("basic:recent", recent, recent.minus(HOUR))
            .await
            .unwrap();
        let purged = store.purge_failures(T0.plus(HOUR)).await.unwrap();
        assert_eq!(purged, 1);
        let n = store
            .count_failure("basic:recent", recent, recent.minus(HOUR))
            .await
            .unwrap();
        assert_eq!(n, 2, "a recent count is kept");
        let n = store
            .count_failure("basic:locked", recent, T0.minus(HOUR))
            .await
            .unwrap();
        assert_eq!(n, 2, "a live lock keeps its count");
        let n = store
            .count_failure("basic:old", recent, T0.minus(HOUR))
            .await
            .unwrap();
        assert_eq!(n, 1, "the old count was purged");
    }
);

conformance_twins!(
    every_instance_sees_the_same_counts_and_locks,
    |a, b| async move {
        for _ in 0..3 {
            a.count_failure("user:7:bo", T0, T0.minus(HOUR))
                .await
                .unwrap();
        }
        let n = b
            .count_failure("user:7:bo", T0, T0.minus(HOUR))
            .await
            .unwrap();
        assert_eq!(n, 4);
        b.lock_subject("user:7:bo", T0.plus(HOUR)).await.unwrap();
        assert_eq!(
            a.active_lockouts(T0).await.unwrap(),
            vec![("user:7:bo".to_string(), T0.plus(HOUR))]
        );
    }
);
