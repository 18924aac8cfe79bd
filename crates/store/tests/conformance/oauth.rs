//! The web-server flow and the token endpoint's storage, one call at a time: refresh tokens,
//! consent, RFC 7009 revocation, authorization codes, sessions, refresh-token rotation and
//! client-secret rotation.

use std::time::Duration;

use grantry_core::credential::{self, Digest, Kind};
use grantry_core::model::{AccessTokenRecord, AppId, OrgId};
use grantry_core::store::{Redemption, RefreshOutcome, Reissue, Revocation, TokenOwner};
use grantry_core::{GrantSet, Store, Timestamp};

use crate::harness::*;

const MINUTE: Duration = Duration::from_secs(60);

fn scope(s: &str) -> GrantSet {
    GrantSet::parse_scope(s).unwrap()
}

fn refresh_digest() -> Digest {
    credential::mint(Kind::RefreshToken, "test").digest
}

/// Whether the access token with this digest is reported revoked.
async fn revoked(store: &dyn Store, digest: &Digest) -> bool {
    store
        .access_token(digest)
        .await
        .unwrap()
        .expect("the access token exists")
        .revoked
}

/// Whether a refresh token can still issue an access token.
async fn refresh_works(store: &dyn Store, org: OrgId, refresh: i64, at: Timestamp) -> bool {
    let outcome = store
        .refresh_access_token(
            refresh,
            &|_: Option<&AccessTokenRecord>| Reissue::Issue,
            fresh_token(at),
            audit(Some(org), at, "access_token.issued"),
        )
        .await
        .unwrap();
    match outcome {
        RefreshOutcome::Issued(_) => true,
        RefreshOutcome::Revoked => false,
        other => panic!("unexpected outcome {other:?}"),
    }
}

// ----- refresh tokens -----

conformance!(
    refresh_token_reports_the_live_token_with_its_access,
    |store| async move {
        let g = granted(&*store).await;
        let record = store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.id, g.refresh_id);
        assert_eq!(record.access, g.access);
        assert_eq!(
            record.scopes,
            GrantSet::all(),
            "an admin's token grants everything"
        );
        assert_eq!(record.created_at, T0);
        assert_eq!(record.rotated_at, None);
        assert_eq!(record.family_id, record.id);
        assert_eq!(record.client_id, g.app.client_id);
        assert_eq!(record.username, "alice");
        assert_eq!(store.refresh_token(&refresh_digest()).await.unwrap(), None);
    }
);

conformance!(
    refresh_token_is_none_once_its_access_is_revoked,
    |store| async move {
        let g = granted(&*store).await;
        let at = T0.plus(HOUR);
        assert!(store
            .revoke_account_access(
                g.access.id,
                at,
                audit(Some(g.org.id), at, "account_access.revoked")
            )
            .await
            .unwrap());
        assert_eq!(store.refresh_token(&g.refresh_token).await.unwrap(), None);
    }
);

conformance!(
    refresh_token_is_none_once_it_is_revoked,
    |store| async move {
        let g = granted(&*store).await;
        let at = T0.plus(HOUR);
        assert!(
            store
                .revoke_token(
                    TokenOwner::Application(g.app.id),
                    &g.refresh_token,
                    at,
                    audit(Some(g.org.id), at, "token.revoked")
                )
                .await
                .unwrap()
                == Revocation::Revoked
        );
        assert_eq!(store.refresh_token(&g.refresh_token).await.unwrap(), None);
        // The account access itself stays.
        assert_eq!(
            store.account_access(g.app.id, g.user.id).await.unwrap(),
            Some(g.access)
        );
    }
);

// ----- consent -----

conformance!(
    consent_creates_account_access_with_the_consented_scopes,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let app = make_app(&*store, org.id, "crm-sync").await;
        let bob = make_user(&*store, org.id, "bob").await;
        let c = consent(org.id, app.id, bob.id, "lists:read", None);
        let digest = c.refresh_token;
        let at = T0.plus(MINUTE);
        let (access, rid) = store
            .grant_account_access(c, audit(Some(org.id), at, "account_access.granted"))
            .await
            .unwrap();
        assert_eq!(access.org_id, org.id);
        assert_eq!(access.app_id, app.id);
        assert_eq!(access.user_id, bob.id);
        assert_eq!(access.created_by, None);
        assert_eq!(access.scopes, scope("lists:read"));
        assert_eq!(access.created_at, at);
        assert_eq!(
            store.account_access(app.id, bob.id).await.unwrap(),
            Some(access.clone())
        );
        let record = store.refresh_token(&digest).await.unwrap().unwrap();
        assert_eq!(record.id, rid);
        assert_eq!(record.access, access);
        assert_eq!(record.scopes, scope("lists:read"));
        assert_eq!(record.created_at, at);
        assert_eq!(record.rotated_at, None);
        assert_eq!(record.family_id, rid);
        assert_eq!(record.client_id, app.client_id);
        assert_eq!(record.username, "bob");
        assert!(refresh_works(&*store, org.id, rid, at).await);
        assert_eq!(
            count_audit(&*store, org.id, "account_access.granted").await,
            1
        );
    }
);

conformance!(
    second_consent_extends_the_access_and_adds_a_refresh_token,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let app = make_app(&*store, org.id, "crm-sync").await;
        let bob = make_user(&*store, org.id, "bob").await;
        let first = consent(org.id, app.id, bob.id, "lists:read", None);
        let first_digest = first.refresh_token;
        let (access, first_id) = store
            .grant_account_access(first, audit(Some(org.id), T0, "account_access.granted"))
            .await
            .unwrap();

        let at = T0.plus(HOUR);
        let second = consent(org.id, app.id, bob.id, "contacts:read", None);
        let second_digest = second.refresh_token;
        let (extended, second_id) = store
            .grant_account_access(second, audit(Some(org.id), at, "account_access.granted"))
            .await
            .unwrap();
        assert_eq!(extended.id, access.id, "a second live access was created");
        assert_eq!(extended.scopes, scope("lists:read contacts:read"));
        assert_eq!(extended.created_at, T0);
        assert_ne!(second_id, first_id);
        assert_eq!(
            store.account_access(app.id, bob.id).await.unwrap(),
            Some(extended.clone())
        );

        let first = store.refresh_token(&first_digest).await.unwrap().unwrap();
        assert_eq!(first.id, first_id);
        assert_eq!(first.access, extended);
        assert_eq!(first.scopes, scope("lists:read"));
        let second = store.refresh_token(&second_digest).await.unwrap().unwrap();
        assert_eq!(second.id, second_id);
        assert_eq!(second.access, extended);
        assert_eq!(second.scopes, scope("contacts:read"));
        assert_eq!(second.family_id, second_id);

        assert!(refresh_works(&*store, org.id, first_id, at).await);
        assert!(refresh_works(&*store, org.id, second_id, at).await);
        assert_eq!(
            count_audit(&*store, org.id, "account_access.granted").await,
            2
        );
    }
);

conformance!(
    consent_after_revocation_creates_a_new_access,
    |store| async move {
        let g = granted(&*store).await;
        let at = T0.plus(HOUR);
        assert!(store
            .revoke_account_access(
                g.access.id,
                at,
                audit(Some(g.org.id), at, "account_access.revoked")
            )
            .await
            .unwrap());
        let c = consent(g.org.id, g.app.id, g.user.id, "lists:read", None);
        let (again, rid) = store
            .grant_account_access(c, audit(Some(g.org.id), at, "account_access.granted"))
            .await
            .unwrap();
        assert_ne!(again.id, g.access.id);
        assert_eq!(
            again.scopes,
            scope("lists:read"),
            "scopes of the revoked access came back"
        );
        assert!(refresh_works(&*store, g.org.id, rid, at).await);
        assert!(!refresh_works(&*store, g.org.id, g.refresh_id, at).await);
    }
);

// ----- RFC 7009 revocation -----

conformance!(
    revoke_token_revokes_an_access_token_of_its_client,
    |store| async move {
        let g = granted(&*store).await;
        let (digest, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        let at = T0.plus(MINUTE);
        let revoke = || audit(Some(g.org.id), at, "token.revoked");
        let owner = TokenOwner::Application(g.app.id);
        assert_eq!(
            store
                .revoke_token(owner, &digest, at, revoke())
                .await
                .unwrap(),
            Revocation::Revoked
        );
        assert!(revoked(&*store, &digest).await);
        // Already revoked: nothing left to revoke, and nothing recorded.
        assert_eq!(
            store
                .revoke_token(owner, &digest, at, revoke())
                .await
                .unwrap(),
            Revocation::Unknown
        );
        assert_eq!(count_audit(&*store, g.org.id, "token.revoked").await, 1);
        // The refresh token it came from is untouched.
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_some());
    }
);

conformance!(
    revoke_token_leaves_the_tokens_of_other_clients_alone,
    |store| async move {
        // RFC 7009 §2.1: another application of the same org, an application of another org
        // and an API user of the same org may not revoke this application's tokens.
        let g = granted(&*store).await;
        let sibling = make_app(&*store, g.org.id, "Sibling").await;
        let (other_org, _) = make_org(&*store, "globex").await;
        let stranger = make_app(&*store, other_org.id, "Stranger").await;
        let bot = make_user(&*store, g.org.id, "bot").await;
        let (digest, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        let at = T0.plus(MINUTE);
        for owner in [
            TokenOwner::Application(sibling.id),
            TokenOwner::Application(stranger.id),
            TokenOwner::ApiUser(bot.id),
            TokenOwner::ApiUser(g.user.id),
        ] {
            for presented in [digest, g.refresh_token] {
                let r = store
                    .revoke_token(
                        owner,
                        &presented,
                        at,
                        audit(Some(g.org.id), at, "token.revoked"),
                    )
                    .await
                    .unwrap();
                assert_eq!(r, Revocation::NotOwner, "{owner:?}");
            }
        }
        assert!(!revoked(&*store, &digest).await);
        assert!(store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .is_some());
        assert_eq!(count_audit(&*store, other_org.id, "token.revoked").await, 0);
        assert_eq!(count_audit(&*store, g.org.id, "token.revoked").await, 0);
    }
);

conformance!(
    revoking_a_refresh_token_revokes_the_access_tokens_derived_from_it,
    |store| async move {
        let g = granted(&*store).await;
        let (a1, _) = issue_from(&*store, g.org.id, g.refresh_id, T0).await;
        let (a2, _) = issue_from(&*store, g.org.id, g.refresh_id, T0.plus(MINUTE)).await;
        // Another refresh token of the same account access, and a token derived from it.
        let c = consent(g.org.id, g.app.id, g.user.id, "lists:read", None);
        let sibling = c.refresh_token;
        let (_, sibling_id) = store
            .grant_account_access(c, audit(Some(g.org.id), T0, "account_access.granted"))
            .await
            .unwrap();
        let (b1, _) = issue_from(&*store, g.org.id, sibling_id, T0).await;

        let at = T0.plus(HOUR);
        assert!(
            store
                .revoke_token(
                    TokenOwner::Application(g.app.id),
                    &g.refresh_token,
                    at,
                    audit(Some(g.org.id), at, "token.revoked")
                )
                .await
                .unwrap()
                == Revocation::Revoked
        );
        assert_eq!(store.refresh_token(&g.refresh_token).await.unwrap(), None);
        assert!(revoked(&*store, &a1).await);
        assert!(revoked(&*store, &a2).await);
        assert!(!refresh_works(&*store, g.org.id, g.refresh_id, at).await);
        assert_eq!(count_audit(&*store, g.org.id, "token.revoked").await, 1);

        // Tokens of the other refresh token live on.
        assert!(store.refresh_token(&sibling).await.unwrap().is_some());
        assert!(!revoked(&*store, &b1).await);
    }
);

conformance!(
    revoke_token_of_an_unknown_digest_is_unknown_and_unrecorded,
    |store| async move {
        let g = granted(&*store).await;
        for unknown in [
            credential::mint(Kind::AccessToken, "test").digest,
            refresh_digest(),
        ] {
            for owner in [
                TokenOwner::Application(g.app.id),
                TokenOwner::ApiUser(g.user.id),
            ] {
                let r = store
                    .revoke_token(
                        owner,
                        &unknown,
                        T0,
                        audit(Some(g.org.id), T0, "token.revoked"),
                    )
                    .await
                    .unwrap();
                assert_eq!(r, Revocation::Unknown);
            }
        }
        assert_eq!(count_audit(&*store, g.org.id, "token.revoked").await, 0);
    }
);

// ----- authorization codes -----

conformance!(
    fresh_code_round_trips_every_field_then_is_reused,
    |store| async move {
        let g = granted(&*store).await;
        let with_pkce = new_auth_code(g.org.id, g.app.id, g.user.id, T0);
        let mut without = new_auth_code(g.org.id, g.app.id, g.user.id, T0.plus(MINUTE));
        without.redirect_uri = "http://127.0.0.1:8765/cb".to_string();
        without.redirect_uri_given = false;
        without.scopes = scope("lists:read contacts:read");
        without.code_challenge = None;
        without.expires_at = without.created_at.plus(5 * MINUTE);

        for code in [with_pkce, without] {
            store.create_auth_code(code.clone()).await.unwrap();
            let now = code.created_at.plus(MINUTE);
            let redeemed = store
                .redeem_auth_code(&code.digest, code.app_id, now)
                .await
                .unwrap();
            let Redemption::Fresh(fresh) = redeemed else {
                panic!("expected Fresh, got {redeemed:?}");
            };
            assert_eq!(fresh.org_id, code.org_id);
            assert_eq!(fresh.app_id, code.app_id);
            assert_eq!(fresh.user_id, code.user_id);
            assert_eq!(fresh.redirect_uri, code.redirect_uri);
            assert_eq!(fresh.redirect_uri_given, code.redirect_uri_given);
            assert_eq!(fresh.scopes, code.scopes);
            assert_eq!(fresh.code_challenge, code.code_challenge);
            assert_eq!(fresh.created_at, code.created_at);
            assert_eq!(fresh.expires_at, code.expires_at);

            let again = store
                .redeem_auth_code(&code.digest, code.app_id, now)
                .await
                .unwrap();
            assert_eq!(again, Redemption::Reused(fresh));
        }
    }
);

conformance!(unknown_code_is_unknown, |store| async move {
    let g = granted(&*store).await;
    store
        .create_auth_code(new_auth_code(g.org.id, g.app.id, g.user.id, T0))
        .await
        .unwrap();
    let unknown = credential::mint(Kind::AuthorizationCode, "test").digest;
    assert_eq!(
        store
            .redeem_auth_code(&unknown, g.app.id, T0)
            .await
            .unwrap(),
        Redemption::Unknown
    );
});

conformance!(
    another_clients_code_is_refused_unspent_and_revokes_nothing,
    |store| async move {
        // A leaked code presented by another client changes nothing: its rightful client still
        // redeems it, and what that redemption issued is not revoked by the attempt.
        let g = granted(&*store).await;
        let thief = make_app(&*store, g.org.id, "Thief").await;
        let code = new_auth_code(g.org.id, g.app.id, g.user.id, T0);
        store.create_auth_code(code.clone()).await.unwrap();
        assert_eq!(
            store
                .redeem_auth_code(&code.digest, thief.id, T0)
                .await
                .unwrap(),
            Redemption::WrongClient
        );
        let Redemption::Fresh(spent) = store
            .redeem_auth_code(&code.digest, g.app.id, T0)
            .await
            .unwrap()
        else {
            panic!("the rightful client's redemption");
        };
        let c = consent(g.org.id, g.app.id, g.user.id, "lists:read", Some(spent.id));
        let issued = c.refresh_token;
        store
            .grant_account_access(c, audit(Some(g.org.id), T0, "account_access.granted"))
            .await
            .unwrap();
        assert_eq!(
            store
                .redeem_auth_code(&code.digest, thief.id, T0)
                .await
                .unwrap(),
            Redemption::WrongClient
        );
        assert!(
            store.refresh_token(&issued).await.unwrap().is_some(),
            "not revoked"
        );
    }
);

conformance!(
    reused_code_revokes_the_refresh_token_it_issued,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let app = make_app(&*store, org.id, "crm-sync").await;
        let bob = make_user(&*store, org.id, "bob").await;
        // An earlier consent, without a code: not issued by the code.
        let earlier = consent(org.id, app.id, bob.id, "contacts:read", None);
        let earlier_digest = earlier.refresh_token;
        let (_, earlier_id) = store
            .grant_account_access(earlier, audit(Some(org.id), T0, "account_access.granted"))
            .await
            .unwrap();
        let (earlier_token, _) = issue_from(&*store, org.id, earlier_id, T0).await;

        let code = new_auth_code(org.id, app.id, bob.id, T0);
        store.create_auth_code(code.clone()).await.unwrap();
        let at = T0.plus(MINUTE);
        let Redemption::Fresh(spent) = store
            .redeem_auth_code(&code.digest, app.id, at)
            .await
            .unwrap()
        else {
            panic!("expected Fresh");
        };
        let c = consent(org.id, app.id, bob.id, "lists:read", Some(spent.id));
        let issued = c.refresh_token;
        let (_, rid) = store
            .grant_account_access(c, audit(Some(org.id), at, "account_access.granted"))
            .await
            .unwrap();
        let (a1, _) = issue_from(&*store, org.id, rid, at).await;
        let (a2, _) = issue_from(&*store, org.id, rid, at.plus(MINUTE)).await;
        assert!(store.refresh_token(&issued).await.unwrap().is_some());

        let later = at.plus(2 * MINUTE);
        let again = store
            .redeem_auth_code(&code.digest, app.id, later)
            .await
            .unwrap();
        assert_eq!(again, Redemption::Reused(spent));
        assert_eq!(store.refresh_token(&issued).await.unwrap(), None);
        assert!(revoked(&*store, &a1).await);
        assert!(revoked(&*store, &a2).await);
        assert!(!refresh_works(&*store, org.id, rid, later).await);

        // What the code did not issue lives on.
        assert!(store
            .refresh_token(&earlier_digest)
            .await
            .unwrap()
            .is_some());
        assert!(!revoked(&*store, &earlier_token).await);
    }
);

conformance!(
    reused_code_revokes_the_rotated_successors_of_its_refresh_token,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let app = make_app(&*store, org.id, "crm-sync").await;
        let bob = make_user(&*store, org.id, "bob").await;
        let code = new_auth_code(org.id, app.id, bob.id, T0);
        store.create_auth_code(code.clone()).await.unwrap();
        let Redemption::Fresh(spent) = store
            .redeem_auth_code(&code.digest, app.id, T0)
            .await
            .unwrap()
        else {
            panic!("expected Fresh");
        };
        let c = consent(org.id, app.id, bob.id, "lists:read", Some(spent.id));
        let (_, rid) = store
            .grant_account_access(c, audit(Some(org.id), T0, "account_access.granted"))
            .await
            .unwrap();
        let at = T0.plus(MINUTE);
        let successor = refresh_digest();
        let next = rotate(&*store, rid, successor, credential::nonce().to_vec(), at)
            .await
            .expect("the token rotates");
        let (token, _) = issue_from(&*store, org.id, next, at).await;

        let later = at.plus(MINUTE);
        let again = store
            .redeem_auth_code(&code.digest, app.id, later)
            .await
            .unwrap();
        assert_eq!(again, Redemption::Reused(spent));
        assert_eq!(
            store.refresh_token(&successor).await.unwrap(),
            None,
            "a token issued from the reused code (by rotation) is live"
        );
        assert!(revoked(&*store, &token).await);
    }
);

conformance!(
    a_code_reused_before_its_grant_is_stored_issues_nothing,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let app = make_app(&*store, org.id, "crm-sync").await;
        let bob = make_user(&*store, org.id, "bob").await;
        let code = new_auth_code(org.id, app.id, bob.id, T0);
        store.create_auth_code(code.clone()).await.unwrap();
        let Redemption::Fresh(spent) = store
            .redeem_auth_code(&code.digest, app.id, T0)
            .await
            .unwrap()
        else {
            panic!("expected Fresh");
        };
        // The duplicate lands between the first redemption's spend and its grant.
        let again = store
            .redeem_auth_code(&code.digest, app.id, T0)
            .await
            .unwrap();
        assert_eq!(again, Redemption::Reused(spent.clone()));
        let c = consent(org.id, app.id, bob.id, "lists:read", Some(spent.id));
        let issued = c.refresh_token;
        match store
            .grant_account_access(c, audit(Some(org.id), T0, "account_access.granted"))
            .await
        {
            Err(grantry_core::StoreError::NotFound(_)) => {}
            other => panic!("a grant for a reused code: {other:?}"),
        }
        assert_eq!(store.refresh_token(&issued).await.unwrap(), None);
        assert_eq!(store.account_access(app.id, bob.id).await.unwrap(), None);
        assert_eq!(
            count_audit(&*store, org.id, "account_access.granted").await,
            0
        );
    }
);

// ----- passwords and sessions -----

conformance!(password_hash_is_the_ui_users_own, |store| async move {
    let g = granted(&*store).await;
    let expected = ui_user("x", grantry_core::model::Role::User, GrantSet::empty())
        .password_hash
        .unwrap();
    assert_eq!(
        store.password_hash(g.user.id).await.unwrap(),
        Some(expected)
    );
    let feeder = store
        .create_user(
            g.org.id,
            api_user("feeder", GrantSet::all()),
            audit(Some(g.org.id), T0, "user.created"),
        )
        .await
        .unwrap();
    assert_eq!(store.password_hash(feeder.id).await.unwrap(), None);
    assert_eq!(store.password_hash(feeder.id + 1000).await.unwrap(), None);
});

conformance!(
    session_finds_its_user_until_it_expires,
    |store| async move {
        let g = granted(&*store).await;
        let digest = credential::mint(Kind::Session, "test").digest;
        let expires_at = T0.plus(HOUR);
        store
            .create_session(digest, g.user.id, T0, expires_at)
            .await
            .unwrap();
        for now in [T0, T0.plus(MINUTE), Timestamp(expires_at.0 - 1)] {
            assert_eq!(
                store.session_user(&digest, now).await.unwrap(),
                Some(g.user.clone()),
                "at {now:?}"
            );
        }
        for now in [expires_at, expires_at.plus(MINUTE)] {
            assert_eq!(
                store.session_user(&digest, now).await.unwrap(),
                None,
                "at {now:?}"
            );
        }
        let unknown = credential::mint(Kind::Session, "test").digest;
        assert_eq!(store.session_user(&unknown, T0).await.unwrap(), None);
    }
);

conformance!(
    session_of_a_disabled_user_finds_nobody,
    |store| async move {
        let g = granted(&*store).await;
        let digest = credential::mint(Kind::Session, "test").digest;
        store
            .create_session(digest, g.user.id, T0, T0.plus(HOUR))
            .await
            .unwrap();
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
        assert_eq!(store.session_user(&digest, at).await.unwrap(), None);
        store
            .set_user_disabled(
                g.user.id,
                false,
                at,
                audit(Some(g.org.id), at, "user.enabled"),
            )
            .await
            .unwrap();
        assert_eq!(store.session_user(&digest, at).await.unwrap(), Some(g.user));
    }
);

// ----- refresh-token rotation -----

conformance!(
    rotation_marks_the_old_token_and_adds_its_successor,
    |store| async move {
        let g = granted(&*store).await;
        let at = T0.plus(HOUR);
        let digest = refresh_digest();
        let nonce = credential::nonce().to_vec();
        let new_id = rotate(&*store, g.refresh_id, digest, nonce.clone(), at)
            .await
            .expect("a live token rotates");
        assert_ne!(new_id, g.refresh_id);

        let old = store
            .refresh_token(&g.refresh_token)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.rotated_at, Some(at));
        assert_eq!(old.family_id, g.refresh_id);
        let new = store.refresh_token(&digest).await.unwrap().unwrap();
        assert_eq!(new.id, new_id);
        assert_eq!(new.family_id, old.family_id);
        assert_eq!(new.access, old.access);
        assert_eq!(new.scopes, old.scopes);
        assert_eq!(new.created_at, at);
        assert_eq!(new.rotated_at, None);
        assert_eq!(new.client_id, g.app.client_id);
        assert_eq!(new.username, g.user.username);

        assert_eq!(
            store.refresh_successor(g.refresh_id).await.unwrap(),
            Some((new_id, nonce))
        );
        assert_eq!(store.refresh_successor(new_id).await.unwrap(), None);

        // Rotated once: a second rotation of the same token adds nothing.
        let loser = refresh_digest();
        assert_eq!(
            rotate(
                &*store,
                g.refresh_id,
                loser,
                credential::nonce().to_vec(),
                at
            )
            .await,
            None
        );
        assert_eq!(store.refresh_token(&loser).await.unwrap(), None);
        assert!(refresh_works(&*store, g.org.id, new_id, at).await);
    }
);

conformance!(
    successors_of_successors_stay_in_the_family,
    |store| async move {
        let g = granted(&*store).await;
        let mut parent = g.refresh_id;
        for step in 1..=3 {
            let at = T0.plus(step * HOUR);
            let digest = refresh_digest();
            let next = rotate(&*store, parent, digest, credential::nonce().to_vec(), at)
                .await
                .expect("the newest token rotates");
            let record = store.refresh_token(&digest).await.unwrap().unwrap();
            assert_eq!(record.family_id, g.refresh_id, "step {step}");
            assert_eq!(record.access, g.access);
            assert_eq!(
                store
                    .refresh_successor(parent)
                    .await
                    .unwrap()
                    .map(|(id, _)| id),
                Some(next)
            );
            parent = next;
        }
    }
);

conformance!(revoked_token_does_not_rotate, |store| async move {
    let g = granted(&*store).await;
    let at = T0.plus(MINUTE);
    assert!(
        store
            .revoke_token(
                TokenOwner::Application(g.app.id),
                &g.refresh_token,
                at,
                audit(Some(g.org.id), at, "token.revoked")
            )
            .await
            .unwrap()
            == Revocation::Revoked
    );
    let digest = refresh_digest();
    assert_eq!(
        rotate(
            &*store,
            g.refresh_id,
            digest,
            credential::nonce().to_vec(),
            at
        )
        .await,
        None
    );
    assert_eq!(store.refresh_token(&digest).await.unwrap(), None);
    assert_eq!(store.refresh_successor(g.refresh_id).await.unwrap(), None);
});

conformance!(
    revoking_a_family_revokes_every_token_and_its_access_tokens,
    |store| async move {
        let g = granted(&*store).await;
        // Another family of the same account access, which must survive.
        let c = consent(g.org.id, g.app.id, g.user.id, "lists:read", None);
        let other = c.refresh_token;
        let (_, other_id) = store
            .grant_account_access(c, audit(Some(g.org.id), T0, "account_access.granted"))
            .await
            .unwrap();
        let (other_token, _) = issue_from(&*store, g.org.id, other_id, T0).await;

        let mut family = vec![(g.refresh_token, g.refresh_id)];
        let mut access_tokens = Vec::new();
        for step in 1..=2 {
            let at = T0.plus(step * HOUR);
            let (_, parent) = *family.last().unwrap();
            access_tokens.push(issue_from(&*store, g.org.id, parent, at).await.0);
            let digest = refresh_digest();
            let next = rotate(&*store, parent, digest, credential::nonce().to_vec(), at)
                .await
                .unwrap();
            family.push((digest, next));
        }
        let (_, newest) = *family.last().unwrap();
        access_tokens.push(
            issue_from(&*store, g.org.id, newest, T0.plus(3 * HOUR))
                .await
                .0,
        );

        let at = T0.plus(4 * HOUR);
        store
            .revoke_refresh_family(
                g.refresh_id,
                at,
                audit(Some(g.org.id), at, "refresh_family.revoked"),
            )
            .await
            .unwrap();
        for (digest, id) in &family {
            assert_eq!(
                store.refresh_token(digest).await.unwrap(),
                None,
                "refresh token {id} is live"
            );
            assert!(!refresh_works(&*store, g.org.id, *id, at).await);
        }
        for digest in &access_tokens {
            assert!(revoked(&*store, digest).await);
        }
        assert_eq!(store.refresh_successor(g.refresh_id).await.unwrap(), None);
        assert_eq!(
            count_audit(&*store, g.org.id, "refresh_family.revoked").await,
            1
        );

        assert!(store.refresh_token(&other).await.unwrap().is_some());
        assert!(!revoked(&*store, &other_token).await);
    }
);

// ----- client secrets -----

/// A confidential application with a client secret whose digest is returned.
async fn app_with_secret(store: &dyn Store) -> (OrgId, AppId, Digest) {
    let (org, _) = make_org(store, "acme").await;
    let secret = credential::mint(Kind::ClientSecret, "test").digest;
    let app = store
        .create_application(
            new_app(org.id, "crm-sync", GrantSet::all(), false),
            Some(secret.into()),
            audit(Some(org.id), T0, "application.created"),
        )
        .await
        .unwrap();
    (org.id, app.id, secret)
}

conformance!(
    rotated_client_secret_overlaps_until_the_old_one_expires,
    |store| async move {
        let (org, app, old) = app_with_secret(&*store).await;
        assert_eq!(store.client_secrets(app, T0).await.unwrap(), vec![old]);
        let at = T0.plus(HOUR);
        let old_expires_at = at.plus(HOUR);
        let new = credential::mint(Kind::ClientSecret, "test").digest;
        store
            .rotate_client_secret(
                app,
                new.into(),
                at,
                old_expires_at,
                audit(Some(org), at, "client_secret.rotated"),
            )
            .await
            .unwrap();
        for now in [at, Timestamp(old_expires_at.0 - 1)] {
            let secrets = store.client_secrets(app, now).await.unwrap();
            assert_eq!(secrets.len(), 2, "at {now:?}");
            assert!(secrets.contains(&old) && secrets.contains(&new));
        }
        for now in [old_expires_at, old_expires_at.plus(HOUR)] {
            assert_eq!(
                store.client_secrets(app, now).await.unwrap(),
                vec![new],
                "at {now:?}"
            );
        }
        assert_eq!(count_audit(&*store, org, "client_secret.rotated").await, 1);
    }
);

conformance!(rotation_never_extends_an_older_secret, |store| async move {
    let (org, app, first) = app_with_secret(&*store).await;
    let second = credential::mint(Kind::ClientSecret, "test").digest;
    let third = credential::mint(Kind::ClientSecret, "test").digest;
    let t1 = T0.plus(HOUR);
    store
        .rotate_client_secret(
            app,
            second.into(),
            t1,
            t1.plus(HOUR),
            audit(Some(org), t1, "client_secret.rotated"),
        )
        .await
        .unwrap();
    let t2 = t1.plus(MINUTE);
    store
        .rotate_client_secret(
            app,
            third.into(),
            t2,
            t2.plus(24 * HOUR),
            audit(Some(org), t2, "client_secret.rotated"),
        )
        .await
        .unwrap();
    assert_eq!(store.client_secrets(app, t2).await.unwrap().len(), 3);
    let later = t1.plus(HOUR);
    let secrets = store.client_secrets(app, later).await.unwrap();
    assert!(
        !secrets.contains(&first),
        "the second rotation extended the first secret"
    );
    assert_eq!(secrets.len(), 2);
    assert!(secrets.contains(&second) && secrets.contains(&third));
    assert_eq!(
        store.client_secrets(app, t2.plus(24 * HOUR)).await.unwrap(),
        vec![third]
    );
});

conformance!(
    revoking_any_token_of_a_rotation_family_revokes_the_whole_grant,
    |store| async move {
        let g = granted(&*store).await;
        let at = T0.plus(HOUR);
        let successor = refresh_digest();
        let new_id = rotate(
            &*store,
            g.refresh_id,
            successor,
            credential::nonce().to_vec(),
            at,
        )
        .await
        .unwrap();
        let (token, _) = issue_from(&*store, g.org.id, new_id, at).await;
        // Revoking the old (rotated) token ends its successor and the successor's tokens.
        assert!(
            store
                .revoke_token(
                    TokenOwner::Application(g.app.id),
                    &g.refresh_token,
                    at,
                    audit(Some(g.org.id), at, "token.revoked")
                )
                .await
                .unwrap()
                == Revocation::Revoked
        );
        assert_eq!(store.refresh_token(&successor).await.unwrap(), None);
        assert!(store.access_token(&token).await.unwrap().unwrap().revoked);
    }
);

conformance!(
    rotation_stores_the_successor_and_its_first_access_token_together,
    |store| async move {
        let g = granted(&*store).await;
        let at = T0.plus(HOUR);
        let successor = refresh_digest();
        let first = fresh_token(at);
        let rotation = grantry_core::store::Rotation {
            old: g.refresh_id,
            digest: successor,
            nonce: credential::nonce().to_vec(),
            at,
            access_token: first.clone(),
            audit: audit(Some(g.org.id), at, "access_token.issued"),
        };
        let (id, stored) = store.rotate_refresh_token(rotation).await.unwrap().unwrap();
        assert_eq!(stored.scopes, first.scopes);
        assert_eq!(stored.expires_at, first.expires_at);
        let bearer = store.access_token(&first.digest).await.unwrap().unwrap();
        assert_eq!(bearer.token_id, stored.id);
        assert!(!bearer.revoked);
        assert_eq!(bearer.app.map(|a| a.id), Some(g.app.id));
        // The successor's newest token is that one: a retry inside the window gets it back.
        let outcome = store
            .refresh_access_token(
                id,
                &|newest: Option<&AccessTokenRecord>| match newest {
                    Some(_) => Reissue::Reuse,
                    None => Reissue::Issue,
                },
                fresh_token(at),
                audit(Some(g.org.id), at, "access_token.issued"),
            )
            .await
            .unwrap();
        assert_eq!(outcome, RefreshOutcome::Reused(stored));
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            1
        );
        // Rotating the old token again finds it rotated, and stores nothing.
        let again = grantry_core::store::Rotation {
            old: g.refresh_id,
            digest: refresh_digest(),
            nonce: credential::nonce().to_vec(),
            at,
            access_token: fresh_token(at),
            audit: audit(Some(g.org.id), at, "access_token.issued"),
        };
        assert_eq!(store.rotate_refresh_token(again).await.unwrap(), None);
        assert_eq!(
            count_audit(&*store, g.org.id, "access_token.issued").await,
            1
        );
    }
);
