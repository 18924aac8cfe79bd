//! The platform's data: lists (REST "databases") and their contacts, per org.

use std::collections::BTreeMap;
use std::time::Duration;

use grantry_core::store::ContactKey;
use grantry_core::StoreError;

use crate::harness::*;

conformance!(
    list_name_taken_in_org_conflicts_but_is_free_in_another_org,
    |store| async move {
        let (a, _) = make_org(&*store, "acme").await;
        let (b, _) = make_org(&*store, "globex").await;
        let list = list_named(&*store, a.id, "Newsletter").await;
        assert_eq!(list.name, "Newsletter");
        assert_eq!(list.size, 0);
        assert_eq!(list.created_at, T0);

        let err = store.create_list(a.id, "Newsletter", T0).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict("database")), "{err:?}");
        assert_eq!(store.lists(a.id).await.unwrap(), vec![list.clone()]);

        let other = list_named(&*store, b.id, "Newsletter").await;
        assert_ne!(other.id, list.id);
        assert_eq!(store.lists(b.id).await.unwrap(), vec![other]);
    }
);

conformance!(lists_report_their_contact_counts, |store| async move {
    let (org, _) = make_org(&*store, "acme").await;
    let first = list_named(&*store, org.id, "first").await;
    let second = list_named(&*store, org.id, "second").await;
    let empty = list_named(&*store, org.id, "empty").await;
    for i in 0..3 {
        add(&*store, org.id, first.id, &format!("p{i}@example.com")).await;
    }
    add(&*store, org.id, second.id, "p0@example.com").await;

    let lists = store.lists(org.id).await.unwrap();
    let summary: Vec<_> = lists
        .iter()
        .map(|l| (l.id, l.name.as_str(), l.size))
        .collect();
    assert_eq!(
        summary,
        vec![
            (first.id, "first", 3),
            (second.id, "second", 1),
            (empty.id, "empty", 0)
        ]
    );
    let one = store.list(org.id, first.id).await.unwrap().unwrap();
    assert_eq!(one.size, 3);
    assert_eq!(one.created_at, T0);
    assert_eq!(store.list(org.id, empty.id + 1000).await.unwrap(), None);
});

conformance!(
    delete_list_removes_it_and_its_contacts,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let doomed = list_named(&*store, org.id, "doomed").await;
        let kept = list_named(&*store, org.id, "kept").await;
        let gone = add(&*store, org.id, doomed.id, "a@example.com").await;
        add(&*store, org.id, doomed.id, "b@example.com").await;
        let stays = add(&*store, org.id, kept.id, "a@example.com").await;

        assert!(store.delete_list(org.id, doomed.id).await.unwrap());
        assert_eq!(store.list(org.id, doomed.id).await.unwrap(), None);
        assert_eq!(
            store.contacts(org.id, doomed.id, 0, 10).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .contact(org.id, doomed.id, ContactKey::Id(gone.id))
                .await
                .unwrap(),
            None
        );
        assert!(!store.delete_list(org.id, doomed.id).await.unwrap());

        let lists = store.lists(org.id).await.unwrap();
        assert_eq!(lists.len(), 1);
        assert_eq!((lists[0].id, lists[0].size), (kept.id, 1));
        assert_eq!(
            store
                .contact(org.id, kept.id, ContactKey::Id(stays.id))
                .await
                .unwrap(),
            Some(stays)
        );
        // The name is free again.
        list_named(&*store, org.id, "doomed").await;
    }
);

conformance!(
    add_contact_to_another_orgs_list_is_not_found,
    |store| async move {
        let (a, _) = make_org(&*store, "acme").await;
        let (b, _) = make_org(&*store, "globex").await;
        let list = list_named(&*store, a.id, "Newsletter").await;
        let err = store
            .add_contact(b.id, list.id, "x@example.com", &BTreeMap::new(), T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("database")), "{err:?}");
        let err = store
            .add_contact(a.id, list.id + 1000, "x@example.com", &BTreeMap::new(), T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound("database")), "{err:?}");
        assert_eq!(store.list(a.id, list.id).await.unwrap().unwrap().size, 0);
    }
);

conformance!(
    contact_email_is_unique_per_list_regardless_of_case,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let other = list_named(&*store, org.id, "Other").await;
        let first = add(&*store, org.id, list.id, "Ann@Example.com").await;
        let err = store
            .add_contact(org.id, list.id, "ann@example.COM", &BTreeMap::new(), T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict("contact")), "{err:?}");
        let (items, total) = store
            .contacts(org.id, list.id, 0, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((items, total), (vec![first], 1));

        // Another list may hold the same address.
        add(&*store, org.id, other.id, "ann@example.com").await;
    }
);

conformance!(
    contact_is_found_by_id_and_by_email_ignoring_case,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let cols = columns(&[("FIRST", "Ann"), ("CITY", "Zürich")]);
        let ann = store
            .add_contact(org.id, list.id, "Ann@Example.com", &cols, T0)
            .await
            .unwrap();
        assert_eq!(ann.list_id, list.id);
        assert_eq!(ann.email, "Ann@Example.com");
        assert_eq!(ann.columns, cols);
        assert_eq!((ann.created_at, ann.updated_at), (T0, T0));

        let by_id = store
            .contact(org.id, list.id, ContactKey::Id(ann.id))
            .await
            .unwrap();
        assert_eq!(by_id, Some(ann.clone()));
        for spelling in ["Ann@Example.com", "ann@example.com", "ANN@EXAMPLE.COM"] {
            let by_email = store
                .contact(org.id, list.id, ContactKey::Email(spelling))
                .await
                .unwrap();
            assert_eq!(by_email, Some(ann.clone()), "looked up as {spelling}");
        }
        let missing = store
            .contact(org.id, list.id, ContactKey::Email("bob@example.com"))
            .await
            .unwrap();
        assert_eq!(missing, None);
        let missing = store
            .contact(org.id, list.id, ContactKey::Id(ann.id + 1000))
            .await
            .unwrap();
        assert_eq!(missing, None);
    }
);

conformance!(
    contacts_are_paged_in_id_order_with_the_list_total,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let other = list_named(&*store, org.id, "Other").await;
        let mut added = Vec::new();
        for i in 0..7 {
            added.push(add(&*store, org.id, list.id, &format!("p{i}@example.com")).await);
        }
        add(&*store, org.id, other.id, "elsewhere@example.com").await;

        let page = |offset, limit| {
            let store = store.clone();
            async move {
                store
                    .contacts(org.id, list.id, offset, limit)
                    .await
                    .unwrap()
                    .unwrap()
            }
        };
        assert_eq!(page(0, 3).await, (added[0..3].to_vec(), 7));
        assert_eq!(page(3, 3).await, (added[3..6].to_vec(), 7));
        assert_eq!(page(6, 3).await, (added[6..7].to_vec(), 7));
        assert_eq!(page(9, 3).await, (vec![], 7));
        assert_eq!(page(0, 100).await, (added.clone(), 7));
        assert_eq!(
            store.contacts(org.id, list.id + 1000, 0, 10).await.unwrap(),
            None
        );
    }
);

conformance!(
    update_contact_merges_columns_and_changes_email,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let ann = store
            .add_contact(
                org.id,
                list.id,
                "ann@example.com",
                &columns(&[("FIRST", "Ann"), ("CITY", "Bern")]),
                T0,
            )
            .await
            .unwrap();
        let later = T0.plus(Duration::from_secs(60));
        let updated = store
            .update_contact(
                org.id,
                list.id,
                ann.id,
                Some("Ann.B@example.com"),
                &columns(&[("CITY", "Zürich"), ("LAST", "B")]),
                later,
            )
            .await
            .unwrap()
            .expect("the contact exists");
        let merged = columns(&[("FIRST", "Ann"), ("CITY", "Zürich"), ("LAST", "B")]);
        assert_eq!(updated.id, ann.id);
        assert_eq!(updated.email, "Ann.B@example.com");
        assert_eq!(updated.columns, merged);
        assert_eq!(updated.created_at, T0);
        assert_eq!(updated.updated_at, later);

        let stored = store
            .contact(org.id, list.id, ContactKey::Id(ann.id))
            .await
            .unwrap();
        assert_eq!(stored, Some(updated.clone()));
        let by_new = store
            .contact(org.id, list.id, ContactKey::Email("ann.b@EXAMPLE.com"))
            .await
            .unwrap();
        assert_eq!(by_new, Some(updated.clone()));
        let by_old = store
            .contact(org.id, list.id, ContactKey::Email("ann@example.com"))
            .await
            .unwrap();
        assert_eq!(by_old, None);

        // Without an e-mail only the columns change.
        let again = store
            .update_contact(
                org.id,
                list.id,
                ann.id,
                None,
                &columns(&[("FIRST", "Anna")]),
                later,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.email, "Ann.B@example.com");
        assert_eq!(again.columns["FIRST"], "Anna");
        assert_eq!(again.columns["LAST"], "B");

        let missing = store
            .update_contact(
                org.id,
                list.id,
                ann.id + 1000,
                None,
                &BTreeMap::new(),
                later,
            )
            .await
            .unwrap();
        assert_eq!(missing, None);
    }
);

conformance!(
    update_contact_to_a_taken_email_conflicts_and_changes_nothing,
    |store| async move {
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let ann = add(&*store, org.id, list.id, "ann@example.com").await;
        let bob = add(&*store, org.id, list.id, "bob@example.com").await;
        let err = store
            .update_contact(
                org.id,
                list.id,
                bob.id,
                Some("ANN@example.com"),
                &columns(&[("FIRST", "changed")]),
                T0.plus(Duration::from_secs(60)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict("contact")), "{err:?}");
        let contact = |id| {
            let store = store.clone();
            async move {
                store
                    .contact(org.id, list.id, ContactKey::Id(id))
                    .await
                    .unwrap()
            }
        };
        assert_eq!(contact(bob.id).await, Some(bob.clone()));
        assert_eq!(contact(ann.id).await, Some(ann));

        // A change of case of one's own address is no conflict.
        let renamed = store
            .update_contact(
                org.id,
                list.id,
                bob.id,
                Some("Bob@Example.com"),
                &BTreeMap::new(),
                T0,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(renamed.email, "Bob@Example.com");
    }
);

conformance!(delete_contact_removes_it_once, |store| async move {
    let (org, _) = make_org(&*store, "acme").await;
    let list = list_named(&*store, org.id, "Newsletter").await;
    let ann = add(&*store, org.id, list.id, "ann@example.com").await;
    let bob = add(&*store, org.id, list.id, "bob@example.com").await;
    assert!(store.delete_contact(org.id, list.id, ann.id).await.unwrap());
    assert!(!store.delete_contact(org.id, list.id, ann.id).await.unwrap());
    assert_eq!(
        store
            .contact(org.id, list.id, ContactKey::Id(ann.id))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.contacts(org.id, list.id, 0, 10).await.unwrap(),
        Some((vec![bob], 1))
    );
    assert_eq!(store.list(org.id, list.id).await.unwrap().unwrap().size, 1);
    // The address may be added again.
    add(&*store, org.id, list.id, "ann@example.com").await;
});

conformance!(
    an_org_cannot_see_or_change_another_orgs_lists_and_contacts,
    |store| async move {
        let (a, _) = make_org(&*store, "acme").await;
        let (b, _) = make_org(&*store, "globex").await;
        let list = list_named(&*store, a.id, "Newsletter").await;
        let ann = add(&*store, a.id, list.id, "ann@example.com").await;

        assert!(store.lists(b.id).await.unwrap().is_empty());
        assert_eq!(store.list(b.id, list.id).await.unwrap(), None);
        assert_eq!(store.contacts(b.id, list.id, 0, 10).await.unwrap(), None);
        assert_eq!(
            store
                .contact(b.id, list.id, ContactKey::Id(ann.id))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .contact(b.id, list.id, ContactKey::Email("ann@example.com"))
                .await
                .unwrap(),
            None
        );
        let changed = store
            .update_contact(
                b.id,
                list.id,
                ann.id,
                Some("evil@example.com"),
                &columns(&[("FIRST", "x")]),
                T0,
            )
            .await
            .unwrap();
        assert_eq!(changed, None);
        assert!(!store.delete_contact(b.id, list.id, ann.id).await.unwrap());
        assert!(!store.delete_list(b.id, list.id).await.unwrap());

        // Org A's data is untouched.
        assert_eq!(store.lists(a.id).await.unwrap().len(), 1);
        assert_eq!(
            store
                .contact(a.id, list.id, ContactKey::Id(ann.id))
                .await
                .unwrap(),
            Some(ann.clone())
        );
        assert_eq!(
            store.contacts(a.id, list.id, 0, 10).await.unwrap(),
            Some((vec![ann], 1))
        );
    }
);

conformance!(
    updates_cannot_grow_a_contact_past_its_column_limits,
    |store| async move {
        use grantry_core::platform::data::{MAX_CONTACT_BYTES, MAX_CONTACT_COLUMNS};
        let (org, _) = make_org(&*store, "acme").await;
        let list = list_named(&*store, org.id, "Newsletter").await;
        let batch = |from: usize, n: usize| -> BTreeMap<String, String> {
            (from..from + n)
                .map(|i| (format!("C{i}"), "v".into()))
                .collect()
        };
        let ann = store
            .add_contact(org.id, list.id, "ann@example.com", &batch(0, 150), T0)
            .await
            .unwrap();
        // Each update alone is small; merged, the contact would pass the column count.
        let err = store
            .update_contact(org.id, list.id, ann.id, None, &batch(150, 60), T0)
            .await
            .unwrap_err();
        match err {
            StoreError::Limit(m) => assert!(
                m.contains(&format!("at most {MAX_CONTACT_COLUMNS} columns")),
                "{m}"
            ),
            e => panic!("{e:?}"),
        }
        // Up to the limit exactly is fine; columns that already exist do not count twice.
        let at_limit = store
            .update_contact(org.id, list.id, ann.id, None, &batch(100, 100), T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(at_limit.columns.len(), MAX_CONTACT_COLUMNS);

        // Total bytes: long values in a few columns.
        let bob = store
            .add_contact(org.id, list.id, "bob@example.com", &BTreeMap::new(), T0)
            .await
            .unwrap();
        let long = |from: usize| -> BTreeMap<String, String> {
            (from..from + 10)
                .map(|i| (format!("L{i}"), "x".repeat(4000)))
                .collect()
        };
        let mut n = 0;
        let err = loop {
            match store
                .update_contact(org.id, list.id, bob.id, None, &long(n), T0)
                .await
            {
                Ok(_) => n += 10,
                Err(e) => break e,
            }
            assert!(n < 100, "the byte limit was never reached");
        };
        assert!(
            matches!(&err, StoreError::Limit(m) if m.contains("KiB")),
            "{err:?}"
        );
        let stored = store
            .contact(org.id, list.id, ContactKey::Id(bob.id))
            .await
            .unwrap()
            .unwrap();
        let bytes: usize = stored.columns.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes <= MAX_CONTACT_BYTES, "{bytes}");
        assert_eq!(
            stored.columns.len(),
            n,
            "the refused update changed nothing"
        );
    }
);
