//! Retention: a sweep purges expired state, and nothing that is still usable.

use std::time::Duration;

use grantry_core::credential::{self, Kind};
use grantry_core::store::{Redemption, SweepReport};

use crate::harness::*;

conformance!(
    a_sweep_purges_exactly_the_expired_state,
    |store| async move {
        let g = granted(&*store).await;
        let org = g.org.id;
        let min = |m: u64| Duration::from_secs(60 * m);

        // Access tokens: one expired (T0 + 4h); the live one comes last, below.
        let (expired_token, _) = issue_from(&*store, org, g.refresh_id, T0).await;

        // Authorization codes: expired unspent, expired but spent (kept for reuse detection),
        // and live.
        let unspent = new_auth_code(org, g.app.id, g.user.id, T0);
        let spent = new_auth_code(org, g.app.id, g.user.id, T0);
        let live_code = new_auth_code(org, g.app.id, g.user.id, T0.plus(10 * HOUR).minus(min(1)));
        let (unspent_d, spent_d, live_d) = (unspent.digest, spent.digest, live_code.digest);
        for c in [unspent, spent, live_code] {
            store.create_auth_code(c).await.unwrap();
        }
        assert!(matches!(
            store
                .redeem_auth_code(&spent_d, g.app.id, T0)
                .await
                .unwrap(),
            Redemption::Fresh(_)
        ));

        // Sessions: one expired at T0 + 1h, one live until T0 + 11h.
        let old_session = credential::mint(Kind::Session, "test").digest;
        let live_session = credential::mint(Kind::Session, "test").digest;
        store
            .create_session(old_session, g.user.id, T0, T0.plus(HOUR))
            .await
            .unwrap();
        store
            .create_session(live_session, g.user.id, T0, T0.plus(11 * HOUR))
            .await
            .unwrap();

        // Client secrets: the first one's overlap ends at T0 + 1h; the new one never ends.
        let new_secret = credential::mint(Kind::ClientSecret, "test").digest;
        store
            .rotate_client_secret(
                g.app.id,
                new_secret.into(),
                T0,
                T0.plus(HOUR),
                audit(Some(org), T0, "client_secret.rotated"),
            )
            .await
            .unwrap();
        assert_eq!(store.client_secrets(g.app.id, T0).await.unwrap().len(), 2);

        // Written last, in the order of their times (the sweeper purges in the order written,
        // up to the first row still kept): a token live until T0 + 12h, and an audit event
        // after the limit, which stays.
        let (live_token, _) = issue_from(&*store, org, g.refresh_id, T0.plus(8 * HOUR)).await;
        store
            .record_audit(audit(Some(org), T0.plus(2 * HOUR), "kept"))
            .await
            .unwrap();

        let before = store.audit_events(org, None).await.unwrap();
        let old_events = before.iter().filter(|e| e.at < T0.plus(HOUR)).count() as u64;
        let mut kept: Vec<_> = before
            .into_iter()
            .filter(|e| e.at >= T0.plus(HOUR))
            .map(|e| e.action)
            .collect();
        assert_eq!(kept, ["kept", "access_token.issued"]);

        let now = T0.plus(10 * HOUR);
        let report = store.sweep(now, T0.plus(HOUR)).await.unwrap();
        assert_eq!(
            report,
            Some(SweepReport {
                audit_events: old_events,
                auth_codes: 1,
                sessions: 1,
                access_tokens: 1,
                client_secrets: 1,
                oauth1_request_tokens: 0,
                oauth1_nonces: 0,
                xml_sessions: 0,
                idempotency_keys: 0,
            })
        );

        let actions: Vec<_> = store
            .audit_events(org, None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions, kept);
        kept.clear();
        assert!(store.access_token(&expired_token).await.unwrap().is_none());
        assert!(store.access_token(&live_token).await.unwrap().is_some());
        assert!(store
            .session_user(&old_session, T0)
            .await
            .unwrap()
            .is_none());
        assert!(store
            .session_user(&live_session, now)
            .await
            .unwrap()
            .is_some());
        assert_eq!(
            store.client_secrets(g.app.id, T0).await.unwrap(),
            [new_secret]
        );
        // The refresh token and its account access are never purged.
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_some());

        // A second sweep at the same time finds nothing.
        let again = store.sweep(now, T0.plus(HOUR)).await.unwrap();
        assert_eq!(again, Some(SweepReport::default()));

        // The codes, checked last since redeeming spends them: the expired unspent one is
        // gone, the spent one is still recognised as reused, the live one still redeems.
        assert!(matches!(
            store
                .redeem_auth_code(&unspent_d, g.app.id, now)
                .await
                .unwrap(),
            Redemption::Unknown
        ));
        assert!(matches!(
            store
                .redeem_auth_code(&spent_d, g.app.id, now)
                .await
                .unwrap(),
            Redemption::Reused(_)
        ));
        assert!(matches!(
            store
                .redeem_auth_code(&live_d, g.app.id, now)
                .await
                .unwrap(),
            Redemption::Fresh(_)
        ));

        // A day after they expired, spent codes go too; so does everything else now expired.
        let later = T0.plus(36 * HOUR);
        let report = store.sweep(later, T0.plus(HOUR)).await.unwrap();
        assert_eq!(
            report,
            Some(SweepReport {
                audit_events: 0,
                auth_codes: 2,
                sessions: 1,
                access_tokens: 1,
                client_secrets: 0,
                oauth1_request_tokens: 0,
                oauth1_nonces: 0,
                xml_sessions: 0,
                idempotency_keys: 0,
            })
        );
        assert!(matches!(
            store
                .redeem_auth_code(&spent_d, g.app.id, later)
                .await
                .unwrap(),
            Redemption::Unknown
        ));
        assert!(store.access_token(&live_token).await.unwrap().is_none());
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_some());
    }
);

conformance!(
    a_sweep_purges_in_the_order_written_up_to_the_first_row_still_kept,
    |store| async move {
        let g = granted(&*store).await;
        let org = g.org.id;
        // A token live until T0 + 12h, then one issued after it that expires at T0 + 4h.
        let (long, _) = issue_from(&*store, org, g.refresh_id, T0.plus(8 * HOUR)).await;
        let (short, _) = issue_from(&*store, org, g.refresh_id, T0).await;
        // An event kept until the limit passes T0 + 2h, then an older one recorded after it.
        store
            .record_audit(audit(Some(org), T0.plus(2 * HOUR), "later"))
            .await
            .unwrap();
        store
            .record_audit(audit(Some(org), T0, "earlier"))
            .await
            .unwrap();
        let actions = |store: std::sync::Arc<dyn grantry_core::store::Store>| async move {
            let mut a: Vec<_> = store
                .audit_events(org, None)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect();
            a.sort();
            a
        };

        // At T0 + 10h the short token has expired, but the long one before it has not.
        let report = store
            .sweep(T0.plus(10 * HOUR), T0.plus(HOUR))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.access_tokens, 0);
        assert!(store.access_token(&short).await.unwrap().is_some());
        // Only the events recorded before "later" went (organization.created and the rest
        // of the set-up at T0).
        assert_eq!(
            actions(store.clone()).await,
            [
                "access_token.issued",
                "access_token.issued",
                "earlier",
                "later"
            ]
        );

        // Once the rows before them have gone, they go too.
        let report = store
            .sweep(T0.plus(13 * HOUR), T0.plus(9 * HOUR))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.access_tokens, 2);
        assert_eq!(report.audit_events, 4);
        assert!(store.access_token(&long).await.unwrap().is_none());
        assert!(store.access_token(&short).await.unwrap().is_none());
        assert!(actions(store.clone()).await.is_empty());
    }
);

conformance!(
    after_a_sweep_the_refresh_token_still_reissues_and_rotated_tokens_still_detect_reuse,
    |store| async move {
        let g = granted(&*store).await;
        let org = g.org.id;
        issue_from(&*store, org, g.refresh_id, T0).await;
        // Rotate the refresh token at T0; its successor's first token expires at T0 + 4h.
        let successor = credential::mint(Kind::RefreshToken, "test").digest;
        let nonce = credential::nonce().to_vec();
        let id = rotate(&*store, g.refresh_id, successor, nonce.clone(), T0)
            .await
            .unwrap();

        let now = T0.plus(5 * HOUR);
        let report = store.sweep(now, T0.minus(HOUR)).await.unwrap().unwrap();
        assert_eq!(report.access_tokens, 2);

        // The rotated-away token is still known as rotated, with its successor.
        let old = store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .unwrap();
        assert!(old.rotated_at.is_some());
        assert_eq!(
            store.refresh_successor(g.refresh_id).await.unwrap(),
            Some((id, nonce))
        );
        // The successor has no live token left, so the re-issue rule issues a new one.
        let decide = |newest: Option<&grantry_core::model::AccessTokenRecord>| {
            assert!(newest.is_none(), "an expired token was purged: {newest:?}");
            grantry_core::store::Reissue::Issue
        };
        let outcome = store
            .refresh_access_token(
                id,
                &decide,
                fresh_token(now),
                audit(Some(org), now, "access_token.issued"),
            )
            .await
            .unwrap();
        assert!(matches!(
            outcome,
            grantry_core::store::RefreshOutcome::Issued(_)
        ));
    }
);

conformance_twins!(
    concurrent_sweeps_of_a_backlog_purge_each_row_once,
    |a, b| async move {
        let (org, _) = make_org(&*a, "acme").await;
        // A backlog larger than two batches.
        let writes: Vec<_> = (0..2500)
            .map(|i| {
                let store = a.clone();
                tokio::spawn(async move {
                    let at = T0.plus(Duration::from_millis(i));
                    store
                        .record_audit(audit(Some(org.id), at, "old"))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for w in writes {
            w.await.unwrap();
        }
        a.record_audit(audit(Some(org.id), T0.plus(2 * HOUR), "kept"))
            .await
            .unwrap();

        let now = T0.plus(3 * HOUR);
        let limit = T0.plus(HOUR);
        let (ra, rb) = tokio::join!(a.sweep(now, limit), b.sweep(now, limit));
        let purged: u64 = [ra.unwrap(), rb.unwrap()]
            .into_iter()
            .flatten()
            .map(|r| r.audit_events)
            .sum();
        // Whether the second sweep ran or was skipped, each row was purged exactly once.
        assert_eq!(purged, 2501, "2500 old events and organization.created");
        let left: Vec<_> = a
            .audit_events(org.id, None)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(left, ["kept"]);
    }
);

/// PostgreSQL: while another instance holds the sweeper's lock, a sweep skips its round and
/// deletes nothing; once the lock is free it runs. (SQLite's single writer needs no lock.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_sweep_skips_the_round_another_instance_is_sweeping() {
    use sqlx::{Connection, PgConnection};

    with_postgres_url(|store, url| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let mut other = PgConnection::connect(&url).await.unwrap();
        let mut tx = other.begin().await.unwrap();
        // The lock the sweeper takes: the contract between instances sharing the database.
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(1735549797, 0)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        assert!(held);

        let limit = T0.plus(HOUR);
        assert_eq!(store.sweep(limit, limit).await.unwrap(), None);
        assert_eq!(store.audit_events(org.id, None).await.unwrap().len(), 1);

        tx.rollback().await.unwrap();
        let report = store.sweep(limit, limit).await.unwrap().unwrap();
        assert_eq!(report.audit_events, 1);
        assert!(store.audit_events(org.id, None).await.unwrap().is_empty());
        let _ = other.close().await;
    })
    .await;
}
