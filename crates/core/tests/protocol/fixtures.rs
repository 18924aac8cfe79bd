//! A fixed instant, the records the rules look at, and an in-memory client registry.

use std::time::Duration;

use async_trait::async_trait;

use grantry_core::credential::Digest;
use grantry_core::model::{AccessTokenRecord, AppId, Application, OrgId, TokenFormat};
use grantry_core::store::{
    AppSummary, ClientStore, NewApplication, NewAudit, NewSecret, Result, StoreError,
};
use grantry_core::{GrantSet, Timestamp};

/// 2026-11-18, the instant every rule is decided at unless a test moves it.
pub const T0: Timestamp = Timestamp(1_795_000_000_000);
pub const SECOND: Duration = Duration::from_secs(1);
pub const MINUTE: Duration = Duration::from_secs(60);
pub const HOUR: Duration = Duration::from_secs(3600);

/// An access token issued at `issued_at` that lives the default 4 hours.
pub fn token_issued_at(issued_at: Timestamp) -> AccessTokenRecord {
    AccessTokenRecord {
        id: 1,
        nonce: vec![0; 16],
        scopes: GrantSet::all(),
        issued_at,
        expires_at: issued_at.plus(4 * HOUR),
        kid: None,
    }
}

/// A confidential application with these redirect URIs.
pub fn app(redirect_uris: &[&str]) -> Application {
    Application {
        id: 7,
        org_id: 1,
        client_id: "c-1".into(),
        name: "Partner CRM".into(),
        description: String::new(),
        scopes: GrantSet::all(),
        redirect_uris: redirect_uris.iter().map(|u| u.to_string()).collect(),
        public: false,
        rotate_refresh_tokens: false,
        token_format: TokenFormat::Opaque,
        created_at: T0,
    }
}

/// The one application a registry knows.
pub struct Registry(pub Application);

#[async_trait]
impl ClientStore for Registry {
    async fn create_application(
        &self,
        _: NewApplication,
        _: Option<NewSecret>,
        _: NewAudit,
    ) -> Result<Application> {
        Err(StoreError::Backend("this registry is read-only".into()))
    }

    async fn application_by_client_id(&self, client_id: &str) -> Result<Option<Application>> {
        Ok((self.0.client_id == client_id).then(|| self.0.clone()))
    }

    async fn rotate_client_secret(
        &self,
        _: AppId,
        _: NewSecret,
        _: Timestamp,
        _: Timestamp,
        _: NewAudit,
    ) -> Result<()> {
        Err(StoreError::Backend("this registry is read-only".into()))
    }

    async fn client_secrets(&self, _: AppId, _: Timestamp) -> Result<Vec<Digest>> {
        Ok(Vec::new())
    }

    async fn applications(&self, org: OrgId) -> Result<Vec<AppSummary>> {
        let app = (self.0.org_id == org).then(|| AppSummary {
            app: self.0.clone(),
            last_used_at: None,
        });
        Ok(app.into_iter().collect())
    }

    async fn delete_application(&self, _: AppId, _: NewAudit) -> Result<bool> {
        Err(StoreError::Backend("this registry is read-only".into()))
    }

    async fn update_application(
        &self,
        _: &Application,
        _: &Application,
        _: NewAudit,
    ) -> Result<bool> {
        Err(StoreError::Backend("this registry is read-only".into()))
    }
}

/// A query string's pairs, as the authorization endpoint receives them.
pub fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
    q.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
