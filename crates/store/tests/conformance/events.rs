//! The Event API's events: stored durably, per org, oldest first.

use grantry_core::model::Event;
use grantry_core::GrantSet;

use crate::harness::*;

fn event(org: i64, user: i64, n: u32, hours: u32) -> Event {
    let mut params = serde_json::Map::new();
    params.insert("n".into(), n.into());
    params.insert(
        "source".into(),
        serde_json::json!({"name": "crm", "tags": ["a", "b"]}),
    );
    Event {
        transaction_id: format!("tx-{org}-{n}"),
        org_id: org,
        user_id: user,
        event_id: format!("event-{n}"),
        event_key: "ABC-123".to_string(),
        params,
        received_at: T0.plus(HOUR * hours),
    }
}

conformance!(events_are_stored_per_org_oldest_first, |store| async move {
    let (a, _) = make_org(&*store, "acme").await;
    let (b, _) = make_org(&*store, "globex").await;
    let feeder = store
        .create_user(
            a.id,
            api_user("feeder", GrantSet::all()),
            audit(Some(a.id), T0, "user.created"),
        )
        .await
        .unwrap();
    let other = store
        .create_user(
            b.id,
            api_user("feeder", GrantSet::all()),
            audit(Some(b.id), T0, "user.created"),
        )
        .await
        .unwrap();
    let late = event(a.id, feeder.id, 1, 2);
    let early = event(a.id, feeder.id, 2, 1);
    let same_time = event(a.id, feeder.id, 3, 1);
    let elsewhere = event(b.id, other.id, 4, 1);
    for e in [&late, &early, &elsewhere, &same_time] {
        store.record_event(e).await.unwrap();
    }
    assert_eq!(store.events(a.id).await.unwrap(), [early, same_time, late]);
    assert_eq!(store.events(b.id).await.unwrap(), [elsewhere]);
});
