//! Access tokens and the re-issue window of docs/architecture.md, token rules, one call at a time.

use std::sync::Mutex;

use grantry_core::credential::{self, Kind};
use grantry_core::model::AccessTokenRecord;
use grantry_core::oauth::grants::refresh_token::reissue_rule;
use grantry_core::store::{RefreshOutcome, Reissue};

use crate::harness::*;

conformance!(
    first_refresh_issues_the_fresh_token_and_records_it,
    |store| async move {
        let g = granted(&*store).await;
        let fresh = fresh_token(T0);
        let outcome = store
            .refresh_access_token(
                g.refresh_id,
                &issue_if_none,
                fresh.clone(),
                audit(Some(g.org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        let RefreshOutcome::Issued(record) = outcome else {
            panic!("expected Issued, got {outcome:?}");
        };
        assert_eq!(record.nonce, fresh.nonce);
        assert_eq!(record.scopes, fresh.scopes);
        assert_eq!(record.issued_at, fresh.issued_at);
        assert_eq!(record.expires_at, fresh.expires_at);
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            1
        );

        let bearer = store.access_token(&fresh.digest).await.unwrap().unwrap();
        assert_eq!(bearer.token_id, record.id);
        assert_eq!(bearer.user, g.user);
        assert_eq!(bearer.app, Some(g.app.clone()));
        assert_eq!(bearer.scopes, fresh.scopes);
        assert_eq!(bearer.issued_at, T0);
        assert_eq!(bearer.expires_at, T0.plus(4 * HOUR));
        assert!(!bearer.revoked);
        assert!(!bearer.first_used);

        let unknown = credential::mint(Kind::AccessToken, "test").digest;
        assert!(store.access_token(&unknown).await.unwrap().is_none());
    }
);

conformance!(
    decide_sees_no_token_first_then_the_newest_token,
    |store| async move {
        let g = granted(&*store).await;
        let seen: Mutex<Vec<Option<AccessTokenRecord>>> = Mutex::new(Vec::new());
        let record_and_issue = |newest: Option<&AccessTokenRecord>| {
            seen.lock().unwrap().push(newest.cloned());
            Reissue::Issue
        };
        let mut issued = Vec::new();
        for hours in [0, 3, 6] {
            let at = T0.plus(hours * HOUR);
            let outcome = store
                .refresh_access_token(
                    g.refresh_id,
                    &record_and_issue,
                    fresh_token(at),
                    audit(Some(g.org.id), at, "access_token.issued"),
                )
                .await
                .unwrap();
            match outcome {
                RefreshOutcome::Issued(r) => issued.push(r),
                other => panic!("expected Issued, got {other:?}"),
            }
        }
        // `decide` may be asked twice per call (a lock-free read first, then under the lock);
        // both times it sees the same newest token.
        let mut seen = seen.into_inner().unwrap();
        seen.dedup();
        assert_eq!(
            seen,
            vec![None, Some(issued[0].clone()), Some(issued[1].clone())]
        );
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            3
        );
    }
);

conformance!(
    reuse_returns_the_newest_token_and_issues_nothing,
    |store| async move {
        let g = granted(&*store).await;
        let first = issue(&*store, &g, T0).await;
        let at = T0.plus(HOUR);
        let fresh = fresh_token(at);
        let outcome = store
            .refresh_access_token(
                g.refresh_id,
                &issue_if_none,
                fresh.clone(),
                audit(Some(g.org.id), at, "access_token.issued"),
            )
            .await
            .unwrap();
        let RefreshOutcome::Reused(reused) = outcome else {
            panic!("expected Reused, got {outcome:?}");
        };
        assert_eq!(reused.id, first.id);
        assert_eq!(reused.nonce, first.nonce);
        assert_eq!(reused, first);
        assert!(store.access_token(&fresh.digest).await.unwrap().is_none());
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            1
        );
    }
);

conformance!(
    reject_returns_retry_at_and_issues_nothing,
    |store| async move {
        // The re-issue rule itself, under `reject`, decides on what the store shows it: the
        // retry time comes from the stored token's own issue time.
        let mut settings = grantry_core::Settings::default();
        settings.tokens.reissue_policy = grantry_core::settings::ReissuePolicy::Reject;
        let g = granted(&*store).await;
        let first = issue(&*store, &g, T0.plus(HOUR)).await;
        let at = T0.plus(2 * HOUR);
        let fresh = fresh_token(at);
        let outcome = store
            .refresh_access_token(
                g.refresh_id,
                &|newest: Option<&AccessTokenRecord>| reissue_rule(newest, None, at, &settings),
                fresh.clone(),
                audit(Some(g.org.id), at, "access_token.issued"),
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            RefreshOutcome::Rejected {
                retry_at: first.issued_at.plus(3 * HOUR)
            }
        );
        assert_eq!(first.issued_at, T0.plus(HOUR));
        assert!(store.access_token(&fresh.digest).await.unwrap().is_none());
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            1
        );
    }
);

conformance!(
    reissue_after_the_window_keeps_the_earlier_token_valid,
    |store| async move {
        let g = granted(&*store).await;
        let first_fresh = fresh_token(T0);
        let first_digest = first_fresh.digest;
        store
            .refresh_access_token(
                g.refresh_id,
                &issue_if_none,
                first_fresh,
                audit(Some(g.org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        let second = issue(&*store, &g, T0.plus(3 * HOUR)).await;
        let old = store.access_token(&first_digest).await.unwrap().unwrap();
        assert!(!old.revoked);
        assert_ne!(old.token_id, second.id);

        // The newest token is the one later refreshes reuse.
        let outcome = store
            .refresh_access_token(
                g.refresh_id,
                &issue_if_none,
                fresh_token(T0.plus(4 * HOUR)),
                audit(Some(g.org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap();
        assert_eq!(outcome, RefreshOutcome::Reused(second));
    }
);

conformance!(
    revoked_account_access_revokes_its_access_tokens,
    |store| async move {
        let g = granted(&*store).await;
        let early = fresh_token(T0);
        let late = fresh_token(T0.plus(3 * HOUR));
        for fresh in [early.clone(), late.clone()] {
            let at = fresh.issued_at;
            let outcome = store
                .refresh_access_token(
                    g.refresh_id,
                    &|_: Option<&AccessTokenRecord>| Reissue::Issue,
                    fresh,
                    audit(Some(g.org.id), at, "access_token.issued"),
                )
                .await
                .unwrap();
            assert!(matches!(outcome, RefreshOutcome::Issued(_)), "{outcome:?}");
        }
        let at = T0.plus(3 * HOUR + HOUR / 2);
        assert!(store
            .revoke_account_access(
                g.access.id,
                at,
                audit(Some(g.org.id), at, "account_access.revoked")
            )
            .await
            .unwrap());
        for digest in [early.digest, late.digest] {
            let bearer = store.access_token(&digest).await.unwrap().unwrap();
            assert!(
                bearer.revoked,
                "an access token survived its account access"
            );
            assert_eq!(bearer.user, g.user);
        }
    }
);

conformance!(
    refresh_of_revoked_account_access_reports_revoked,
    |store| async move {
        let g = granted(&*store).await;
        issue(&*store, &g, T0).await;
        let at = T0.plus(HOUR);
        store
            .revoke_account_access(
                g.access.id,
                at,
                audit(Some(g.org.id), at, "account_access.revoked"),
            )
            .await
            .unwrap();
        let fresh = fresh_token(at.plus(HOUR * 3));
        let outcome = store
            .refresh_access_token(
                g.refresh_id,
                &|_: Option<&AccessTokenRecord>| Reissue::Issue,
                fresh.clone(),
                audit(Some(g.org.id), at, "access_token.issued"),
            )
            .await
            .unwrap();
        assert_eq!(outcome, RefreshOutcome::Revoked);
        assert!(store.access_token(&fresh.digest).await.unwrap().is_none());
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            1
        );
    }
);

conformance!(
    first_use_of_an_access_token_is_recorded_once,
    |store| async move {
        let g = granted(&*store).await;
        let fresh = fresh_token(T0);
        let digest = fresh.digest;
        let RefreshOutcome::Issued(token) = store
            .refresh_access_token(
                g.refresh_id,
                &issue_if_none,
                fresh,
                audit(Some(g.org.id), T0, "access_token.issued"),
            )
            .await
            .unwrap()
        else {
            panic!("expected Issued");
        };
        let used = |minutes: u32| {
            let at = T0.plus(std::time::Duration::from_secs(60 * minutes as u64));
            audit(Some(g.org.id), at, "access_token.first_used")
        };
        store
            .mark_access_token_used(&digest, token.id, used(1))
            .await
            .unwrap();
        assert!(
            store
                .access_token(&digest)
                .await
                .unwrap()
                .unwrap()
                .first_used
        );
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.first_used").await,
            1
        );

        store
            .mark_access_token_used(&digest, token.id, used(2))
            .await
            .unwrap();
        assert!(
            store
                .access_token(&digest)
                .await
                .unwrap()
                .unwrap()
                .first_used
        );
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.first_used").await,
            1
        );
    }
);
