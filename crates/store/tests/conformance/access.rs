//! Account access: the (application, UI user) relationship holding a refresh token.

use grantry_core::credential::{self, Kind};
use grantry_core::StoreError;

use crate::harness::*;

conformance!(
    account_access_is_found_by_pair_and_by_refresh_token,
    |store| async move {
        let g = granted(&*store).await;
        assert_eq!(g.access.org_id, g.org.id);
        assert_eq!(g.access.app_id, g.app.id);
        assert_eq!(g.access.user_id, g.user.id);
        assert_eq!(g.access.created_by, Some(g.admin.id));
        assert_eq!(g.access.created_at, T0);
        assert_eq!(
            store.account_access(g.app.id, g.user.id).await.unwrap(),
            Some(g.access.clone())
        );
        assert_eq!(
            store
                .refresh_token(&g.refresh_token)
                .await
                .unwrap()
                .map(|r| r.access),
            Some(g.access.clone())
        );
        let stranger = credential::mint(Kind::RefreshToken, "test").digest;
        assert_eq!(
            store
                .refresh_token(&stranger)
                .await
                .unwrap()
                .map(|r| r.access),
            None
        );
        assert_eq!(
            store.account_access(g.app.id, g.admin.id).await.unwrap(),
            None
        );
        assert_eq!(
            count_audit(&*store, g.org.id, "account_access.created").await,
            1
        );
    }
);

conformance!(
    second_live_account_access_for_a_pair_conflicts,
    |store| async move {
        let g = granted(&*store).await;
        let other_token = credential::mint(Kind::RefreshToken, "test").digest;
        let err = store
            .create_account_access(
                g.org.id,
                g.app.id,
                g.user.id,
                None,
                other_token,
                audit(Some(g.org.id), T0, "account_access.created"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict("account access")),
            "{err:?}"
        );
        assert_eq!(
            store
                .refresh_token(&other_token)
                .await
                .unwrap()
                .map(|r| r.access),
            None
        );
        assert_eq!(
            store.account_access(g.app.id, g.user.id).await.unwrap(),
            Some(g.access)
        );
        assert_eq!(
            count_audit(&*store, g.org.id, "account_access.created").await,
            1
        );
    }
);

conformance!(
    revoking_account_access_succeeds_once_and_hides_it,
    |store| async move {
        let g = granted(&*store).await;
        let at = T0.plus(HOUR);
        let revoke = || audit(Some(g.org.id), at, "account_access.revoked");
        assert!(store
            .revoke_account_access(g.access.id, at, revoke())
            .await
            .unwrap());
        assert_eq!(
            store.account_access(g.app.id, g.user.id).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .refresh_token(&g.refresh_token)
                .await
                .unwrap()
                .map(|r| r.access),
            None
        );
        assert!(!store
            .revoke_account_access(g.access.id, at, revoke())
            .await
            .unwrap());
        assert!(!store
            .revoke_account_access(g.access.id + 1000, at, revoke())
            .await
            .unwrap());
        assert_eq!(
            count_audit(&*store, g.org.id, "account_access.revoked").await,
            1
        );
    }
);

conformance!(
    revoked_pair_can_be_given_account_access_again,
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
        let token = credential::mint(Kind::RefreshToken, "test").digest;
        let again = store
            .create_account_access(
                g.org.id,
                g.app.id,
                g.user.id,
                None,
                token,
                audit(Some(g.org.id), at, "account_access.created"),
            )
            .await
            .unwrap();
        assert_ne!(again.id, g.access.id);
        assert_eq!(again.created_by, None);
        assert_eq!(
            store.account_access(g.app.id, g.user.id).await.unwrap(),
            Some(again.clone())
        );
        assert_eq!(
            store.refresh_token(&token).await.unwrap().map(|r| r.access),
            Some(again)
        );
        assert_eq!(
            store
                .refresh_token(&g.refresh_token)
                .await
                .unwrap()
                .map(|r| r.access),
            None,
            "the revoked refresh token came back to life"
        );
    }
);
