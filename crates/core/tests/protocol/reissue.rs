//! docs/architecture.md, token rules: a new access token only once the newest has been valid for
//! `tokens.reissue_after` (3 h); before that the same token (`reuse`) or a refusal until the
//! window ends (`reject`).

use grantry_core::oauth::grants::refresh_token::reissue_rule;
use grantry_core::settings::ReissuePolicy;
use grantry_core::store::Reissue;
use grantry_core::{GrantSet, Settings};

use crate::fixtures::*;

fn settings(policy: ReissuePolicy) -> Settings {
    let mut s = Settings::default();
    s.tokens.reissue_policy = policy;
    s
}

#[test]
fn the_first_token_of_a_refresh_token_is_issued_under_both_policies() {
    for policy in [ReissuePolicy::Reuse, ReissuePolicy::Reject] {
        assert_eq!(
            reissue_rule(None, None, T0, &settings(policy)),
            Reissue::Issue
        );
    }
}

#[test]
fn reissue_within_three_hours_returns_same_token() {
    let s = settings(ReissuePolicy::Reuse);
    let t = token_issued_at(T0);
    for at in [
        T0,
        T0.plus(SECOND),
        T0.plus(HOUR),
        T0.plus(3 * HOUR).minus(SECOND),
    ] {
        assert_eq!(
            reissue_rule(Some(&t), None, at, &s),
            Reissue::Reuse,
            "at {at:?}"
        );
    }
}

#[test]
fn reissue_within_three_hours_is_refused_until_the_window_ends_under_reject() {
    let s = settings(ReissuePolicy::Reject);
    let t = token_issued_at(T0);
    let window_ends = T0.plus(3 * HOUR);
    for at in [T0, T0.plus(2 * HOUR), window_ends.minus(SECOND)] {
        assert_eq!(
            reissue_rule(Some(&t), None, at, &s),
            Reissue::Reject {
                retry_at: window_ends
            },
            "at {at:?}"
        );
    }
}

#[test]
fn a_new_token_is_issued_from_three_hours_on_under_both_policies() {
    let t = token_issued_at(T0);
    for policy in [ReissuePolicy::Reuse, ReissuePolicy::Reject] {
        let s = settings(policy);
        for at in [
            T0.plus(3 * HOUR),
            T0.plus(3 * HOUR + SECOND),
            T0.plus(5 * HOUR),
        ] {
            assert_eq!(
                reissue_rule(Some(&t), None, at, &s),
                Reissue::Issue,
                "{policy:?} at {at:?}"
            );
        }
    }
}

#[test]
fn an_expired_newest_token_is_replaced_even_inside_a_longer_window() {
    let mut s = settings(ReissuePolicy::Reuse);
    s.tokens.reissue_after = 10 * HOUR;
    let t = token_issued_at(T0);
    assert_eq!(
        reissue_rule(Some(&t), None, t.expires_at.minus(SECOND), &s),
        Reissue::Reuse
    );
    assert_eq!(
        reissue_rule(Some(&t), None, t.expires_at, &s),
        Reissue::Issue
    );
}

#[test]
fn the_window_follows_the_configured_reissue_after() {
    let mut s = settings(ReissuePolicy::Reuse);
    s.tokens.reissue_after = 30 * MINUTE;
    let t = token_issued_at(T0);
    assert_eq!(
        reissue_rule(Some(&t), None, T0.plus(29 * MINUTE), &s),
        Reissue::Reuse
    );
    assert_eq!(
        reissue_rule(Some(&t), None, T0.plus(30 * MINUTE), &s),
        Reissue::Issue
    );
}

#[test]
fn a_different_scope_inside_the_window_waits_for_the_window_under_both_policies() {
    let t = token_issued_at(T0);
    let narrower = GrantSet::parse_scope("lists:read").unwrap();
    let window_ends = T0.plus(3 * HOUR);
    for policy in [ReissuePolicy::Reuse, ReissuePolicy::Reject] {
        let s = settings(policy);
        assert_eq!(
            reissue_rule(Some(&t), Some(narrower), T0.plus(HOUR), &s),
            Reissue::Reject {
                retry_at: window_ends
            },
            "{policy:?}"
        );
        assert_eq!(
            reissue_rule(Some(&t), Some(narrower), window_ends, &s),
            Reissue::Issue
        );
    }
    // The same scope named explicitly is the same token again.
    let s = settings(ReissuePolicy::Reuse);
    assert_eq!(
        reissue_rule(Some(&t), Some(t.scopes), T0.plus(HOUR), &s),
        Reissue::Reuse
    );
}
