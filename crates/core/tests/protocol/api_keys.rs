//! API users' keys: a deleted secret key keeps working for `api_keys.delete_grace`, then stops; a
//! disabled API user's keys stop at once.

use grantry_core::apikeys::{refusal, KeyRefusal};
use grantry_core::model::{ApiKey, Role, User, UserKind};
use grantry_core::{GrantSet, Settings};

use crate::fixtures::*;

fn api_user(disabled: bool) -> User {
    User {
        id: 3,
        org_id: 1,
        username: "bot".into(),
        email: "bot@example.com".into(),
        kind: UserKind::Api,
        role: Role::User,
        grants: GrantSet::all(),
        key_id: Some("k-1".into()),
        principal: false,
        disabled,
        must_change_password: false,
        created_at: T0,
    }
}

fn key(slot: Option<u8>, stops_at: Option<grantry_core::Timestamp>) -> ApiKey {
    ApiKey {
        id: 9,
        user_id: 3,
        slot,
        created_at: T0,
        deleted_at: stops_at.map(|_| T0),
        stops_at,
        last_used_at: None,
    }
}

#[test]
fn a_live_key_never_expires() {
    let k = key(Some(1), None);
    for at in [T0, T0.plus(HOUR), T0.plus(10_000 * HOUR)] {
        assert_eq!(refusal(&k, &api_user(false), at), None);
    }
}

#[test]
fn a_deleted_key_works_until_its_grace_ends() {
    let grace = Settings::default().api_keys.delete_grace;
    let stops = T0.plus(grace);
    let k = key(None, Some(stops));
    assert_eq!(refusal(&k, &api_user(false), T0), None);
    assert_eq!(refusal(&k, &api_user(false), stops.minus(SECOND)), None);
    let (why, reason) =
        refusal(&k, &api_user(false), stops).expect("stopped at the end of the grace");
    assert_eq!(why, KeyRefusal::Stopped(stops));
    assert_eq!(reason, "deleted secret key");
    assert!(why.describe().contains("stopped working at"));
}

#[test]
fn a_disabled_users_keys_stop_at_once() {
    let (why, reason) = refusal(&key(Some(1), None), &api_user(true), T0).expect("refused");
    assert_eq!((why, reason), (KeyRefusal::Disabled, "disabled user"));
}
