//! Refresh-token rotation (RFC 9700 §4.14.2): a rotated token presented again inside
//! `tokens.rotation_grace` gets the same answer (a lost response); from then on it is a reuse.

use grantry_core::oauth::grants::refresh_token::within_rotation_grace;
use grantry_core::Settings;

use crate::fixtures::*;

#[test]
fn a_rotated_token_is_answered_again_only_inside_the_grace() {
    let s = Settings::default();
    let grace = s.tokens.rotation_grace;
    assert!(within_rotation_grace(T0, T0, &s));
    assert!(within_rotation_grace(T0, T0.plus(grace).minus(SECOND), &s));
    assert!(!within_rotation_grace(T0, T0.plus(grace), &s));
    assert!(!within_rotation_grace(T0, T0.plus(HOUR), &s));
}

#[test]
fn the_grace_follows_the_setting() {
    let mut s = Settings::default();
    s.tokens.rotation_grace = MINUTE;
    assert!(within_rotation_grace(T0, T0.plus(59 * SECOND), &s));
    assert!(!within_rotation_grace(T0, T0.plus(MINUTE), &s));
    s.tokens.rotation_grace = std::time::Duration::ZERO;
    assert!(!within_rotation_grace(T0, T0, &s));
}
