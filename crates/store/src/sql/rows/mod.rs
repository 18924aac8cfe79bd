//! The rows the shared statements read, as `sqlx::FromRow` structs (generic over the driver's
//! row type, so one definition serves both backends), and their conversion into the core
//! records. The SQLite hot paths (`crate::sqlite_hot`) fill some of the same structs from
//! rusqlite rows, so both drivers convert through one place.
//!
//! Column lists that several statements share are macros expanding to string literals, so
//! statements are `concat!`ed at compile time. Joined tables' columns are aliased with a
//! prefix (`u_` users, `p_` applications, `k_` API keys) so one row can hold several tables.

mod accounts;
mod grants;
mod records;

pub(crate) use accounts::{AppRow, AppSummaryRow, KeyRow, KeyUserRow, OrgRow, SecretRow, UserRow};
pub(crate) use grants::{
    AccessRow, BearerRow, CodeRow, OwnerRow, RefreshRow, RotatedRow, SummaryRow, TokenRow,
};
pub(crate) use records::{AuditRow, ContactRow, EventRow, ListRow, SigningKeyRow};

/// A user's columns, as read into [`UserRow`] (`u` is `users`).
macro_rules! user_cols {
    () => {
        "u.id AS u_id, u.org_id AS u_org_id, u.username AS u_username, \
         u.email AS u_email, u.kind AS u_kind, u.role AS u_role, u.grants AS u_grants, \
         u.key_id AS u_key_id, u.principal AS u_principal, u.disabled_at AS u_disabled_at, \
         u.must_change_password AS u_must_change_password, u.created_at AS u_created_at"
    };
}

/// An application's columns, as read into [`AppRow`] (`p` is `applications`).
macro_rules! app_cols {
    () => {
        "p.id AS p_id, p.org_id AS p_org_id, p.client_id AS p_client_id, \
         p.name AS p_name, p.description AS p_description, p.scopes AS p_scopes, \
         p.redirect_uris AS p_redirect_uris, p.public AS p_public, \
         p.rotate_refresh_tokens AS p_rotate, p.token_format AS p_token_format, \
         p.created_at AS p_created_at"
    };
}

/// An API key's columns, as read into [`KeyRow`] (`k` is `api_keys`).
macro_rules! key_cols {
    () => {
        "k.id AS k_id, k.user_id AS k_user_id, k.slot AS k_slot, \
         k.created_at AS k_created_at, k.deleted_at AS k_deleted_at, k.stops_at AS k_stops_at, \
         k.last_used_at AS k_last_used_at"
    };
}

/// An account access's columns, as read into [`AccessRow`].
macro_rules! access_cols {
    () => {
        "id, org_id, app_id, user_id, created_by, scopes, created_at"
    };
}

/// An authorization code's columns, as read into [`CodeRow`].
macro_rules! code_cols {
    () => {
        "id, org_id, app_id, user_id, redirect_uri, redirect_uri_given, \
         scopes, code_challenge, created_at, expires_at, refresh_id"
    };
}

/// A contact's columns, as read into [`ContactRow`].
macro_rules! contact_cols {
    () => {
        "id, list_id, email, columns, created_at, updated_at"
    };
}

/// When account access `a` was last used: the newest `last_used_at` of its refresh tokens
/// (rotated ones too), one seek of `refresh_tokens_by_access (access_id, last_used_at)`
/// (migration 0013) however many tokens rotation has left.
macro_rules! access_last_use {
    () => {
        "(SELECT r.last_used_at FROM refresh_tokens r WHERE r.access_id = a.id \
         AND r.last_used_at IS NOT NULL ORDER BY r.last_used_at DESC LIMIT 1)"
    };
}

pub(crate) use {
    access_cols, access_last_use, app_cols, code_cols, contact_cols, key_cols, user_cols,
};
