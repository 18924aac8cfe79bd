//! The Event API's events ([`grantry_core::store::EventStore`]); each backend stores them on
//! its hot path ([`super::Backend::insert_event`]).

pub(crate) const INSERT_EVENT: &str = "INSERT INTO events \
    (transaction_id, org_id, user_id, event_id, event_key, params, received_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";

pub(crate) const EVENTS_OF_ORG: &str = "SELECT transaction_id, org_id, user_id, event_id, \
    event_key, params, received_at FROM events WHERE org_id = $1 ORDER BY received_at, id";

/// Implements [`grantry_core::store::EventStore`] for a [`super::Backend`].
macro_rules! impl_event_store {
    ($store:ty) => {
        const _: () = {
            use async_trait::async_trait;

            use grantry_core::model::{Event, OrgId};
            use grantry_core::store::{EventStore, Result};

            use $crate::sql::events::*;
            use $crate::sql::rows::EventRow;
            use $crate::sql::{backend_err, Backend};

            #[async_trait]
            impl EventStore for $store {
                async fn record_event(&self, event: &Event) -> Result<()> {
                    self.insert_event(event.clone()).await
                }

                async fn events(&self, org: OrgId) -> Result<Vec<Event>> {
                    let rows = sqlx::query_as::<_, EventRow>(EVENTS_OF_ORG)
                        .bind(org)
                        .fetch_all(self.reader())
                        .await
                        .map_err(backend_err)?;
                    rows.into_iter().map(Event::try_from).collect()
                }
            }
        };
    };
}

pub(crate) use impl_event_store;
