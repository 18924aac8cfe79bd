//! The XML API operations of docs/architecture.md, protected APIs, acting through the platform's data operations
//! (`crate::platform`), which check the principal's grants and keep to its org.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::gate::Principal;
use crate::permissions::Grant;
use crate::platform::data::{self as platform, DataError};
use crate::store::{ContactKey, DataStore};

use super::parse::is_xml_space;
use super::{
    render, required_grant, Element, Fault, FaultKind, Request, ERR_INVALID_FIELD,
    ERR_INVALID_REQUEST,
};

/// Runs the operation of `req` for `p` (docs/architecture.md, protected APIs) and returns the full success envelope.
/// The operation's grant is checked before its fields, as the platform does; `Login` and
/// `Logout` are not operations of a principal (`super::sessions` answers them).
pub async fn execute(
    store: &dyn DataStore,
    now: Timestamp,
    p: &Principal,
    req: &Request,
) -> Result<String, Fault> {
    let grant = operation_grant(&req.op)?;
    p.require(grant).map_err(|e| Fault::from_bearer(&e))?;
    let el = &req.element;
    let inner = match req.op.as_str() {
        "GetLists" => get_lists(store, p).await?,
        "AddRecipient" => add_recipient(store, now, p, el).await?,
        "SelectRecipientData" => select_recipient_data(store, p, el).await?,
        "UpdateRecipient" => update_recipient(store, now, p, el).await?,
        "RemoveRecipient" => remove_recipient(store, p, el).await?,
        other => return Err(unknown_operation(other)),
    };
    Ok(render::success(&inner))
}

/// The grant `op` needs, or the fault for an operation this server does not run (`Login`
/// and `Logout` are answered by [`super::sessions`] before this).
fn operation_grant(op: &str) -> Result<Grant, Fault> {
    required_grant(op).ok_or_else(|| unknown_operation(op))
}

fn unknown_operation(op: &str) -> Fault {
    Fault::new(
        ERR_INVALID_REQUEST,
        FaultKind::BadRequest,
        format!("Unknown operation {op}"),
    )
}

pub(super) fn missing(what: &str) -> Fault {
    Fault::new(
        ERR_INVALID_FIELD,
        FaultKind::BadRequest,
        format!("Missing required field {what}"),
    )
}

/// The text of the child `name`, trimmed of white space; `None` when absent or blank.
/// A field given twice is ambiguous and refused.
pub(super) fn field<'a>(el: &'a Element, name: &str) -> Result<Option<&'a str>, Fault> {
    let mut found = el.children_named(name);
    let first = found.next();
    if found.next().is_some() {
        return Err(Fault::invalid_field(name, "appears more than once"));
    }
    Ok(first
        .map(|c| c.text.trim_matches(is_xml_space))
        .filter(|t| !t.is_empty()))
}

fn parse_id(name: &str, text: &str) -> Result<i64, Fault> {
    text.parse::<i64>()
        .map_err(|_| Fault::invalid_field(name, "must be an integer"))
}

/// A required integer field such as `LIST_ID`.
fn required_id(el: &Element, name: &str) -> Result<i64, Fault> {
    match field(el, name)? {
        Some(t) => parse_id(name, t),
        None => Err(missing(name)),
    }
}

/// `UPDATE_IF_FOUND`: `true` or `false` in any case; absent means `false`.
fn flag(el: &Element, name: &str) -> Result<bool, Fault> {
    match field(el, name)? {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(_) => Err(Fault::invalid_field(name, "must be true or false")),
    }
}

/// How the operation names its recipient: `RECIPIENT_ID` if given, else the address in
/// `email_field` (`EMAIL`, or `OLD_EMAIL` for `UpdateRecipient`).
fn recipient_key<'a>(el: &'a Element, email_field: &str) -> Result<ContactKey<'a>, Fault> {
    if let Some(id) = field(el, "RECIPIENT_ID")? {
        return Ok(ContactKey::Id(parse_id("RECIPIENT_ID", id)?));
    }
    match field(el, email_field)? {
        Some(email) => Ok(ContactKey::Email(email)),
        None => Err(missing(&format!("RECIPIENT_ID or {email_field}"))),
    }
}

/// The `<COLUMN><NAME>..</NAME><VALUE>..</VALUE></COLUMN>` pairs of an operation: the
/// `EMAIL` column (any case) apart, the others as the contact's columns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Columns {
    email: Option<String>,
    others: BTreeMap<String, String>,
}

/// Collects the `COLUMN` children of `el`. Names are trimmed, values kept as sent (the
/// e-mail address is trimmed); a missing `VALUE` is the empty string. A column named twice
/// is refused.
fn columns(el: &Element) -> Result<Columns, Fault> {
    let mut out = Columns::default();
    for col in el.children_named("COLUMN") {
        let Some(name) = field(col, "NAME")? else {
            return Err(Fault::invalid_field("COLUMN", "every COLUMN needs a NAME"));
        };
        let mut values = col.children_named("VALUE");
        let value = values.next().map(|v| v.text.as_str()).unwrap_or("");
        if values.next().is_some() {
            return Err(Fault::invalid_field(
                "COLUMN",
                format!("column {name} has more than one VALUE"),
            ));
        }
        if name.eq_ignore_ascii_case("EMAIL") {
            if out.email.is_some() {
                return Err(Fault::invalid_field(
                    "EMAIL",
                    "the EMAIL column appears twice",
                ));
            }
            out.email = Some(value.trim_matches(is_xml_space).to_string());
        } else if out
            .others
            .insert(name.to_string(), value.to_string())
            .is_some()
        {
            return Err(Fault::invalid_field(
                "COLUMN",
                format!("column {name} appears more than once"),
            ));
        }
    }
    Ok(out)
}

/// The id of the recipient `key` names, for a write operation. `platform::contact` needs
/// contacts:read, which a write-only credential lacks, so this checks contacts:write and then
/// looks the contact up inside the principal's org exactly as `platform::contact` does.
async fn contact_id_for_write(
    store: &dyn DataStore,
    p: &Principal,
    list: i64,
    key: ContactKey<'_>,
) -> Result<i64, Fault> {
    if let ContactKey::Id(id) = key {
        return Ok(id);
    }
    p.require(Grant::ContactsWrite)
        .map_err(|e| Fault::from_bearer(&e))?;
    if store
        .list(p.org_id, list)
        .await
        .map_err(DataError::from)?
        .is_none()
    {
        return Err(DataError::NotFound("database").into());
    }
    match store
        .contact(p.org_id, list, key)
        .await
        .map_err(DataError::from)?
    {
        Some(c) => Ok(c.id),
        None => Err(DataError::NotFound("contact").into()),
    }
}

/// `GetLists` (lists:read). `VISIBILITY` and `LIST_TYPE` are accepted and ignored: every
/// list is shared and of one type.
async fn get_lists(store: &dyn DataStore, p: &Principal) -> Result<String, Fault> {
    let lists = platform::lists(store, p).await?;
    Ok(render::lists(&lists))
}

/// `AddRecipient` (contacts:write): adds the `EMAIL` column's address with the other
/// columns; an address already on the list is fault 122 unless `UPDATE_IF_FOUND` is true,
/// which merges the columns into that recipient. `CREATED_FROM` is accepted and not stored.
async fn add_recipient(
    store: &dyn DataStore,
    now: Timestamp,
    p: &Principal,
    el: &Element,
) -> Result<String, Fault> {
    let list = required_id(el, "LIST_ID")?;
    let update_if_found = flag(el, "UPDATE_IF_FOUND")?;
    let cols = columns(el)?;
    let Some(email) = cols.email else {
        return Err(missing("EMAIL (a COLUMN named EMAIL)"));
    };
    match platform::add_contact(store, now, p, list, &email, &cols.others).await {
        Ok(c) => Ok(render::recipient_id(c.id)),
        Err(DataError::Conflict(_)) if update_if_found => {
            let email = platform::validate_email("email", &email)?;
            let key = ContactKey::Email(&email);
            let id = contact_id_for_write(store, p, list, key).await?;
            let c = platform::update_contact(store, now, p, list, id, None, &cols.others).await?;
            Ok(render::recipient_id(c.id))
        }
        Err(e) => Err(e.into()),
    }
}

/// `SelectRecipientData` (contacts:read): one recipient by `RECIPIENT_ID` or `EMAIL`.
async fn select_recipient_data(
    store: &dyn DataStore,
    p: &Principal,
    el: &Element,
) -> Result<String, Fault> {
    let list = required_id(el, "LIST_ID")?;
    let key = recipient_key(el, "EMAIL")?;
    let c = platform::contact(store, p, list, key).await?;
    Ok(render::contact(&c))
}

/// `UpdateRecipient` (contacts:write): the recipient named by `RECIPIENT_ID` or `OLD_EMAIL`
/// gets the given columns merged in; an `EMAIL` column changes its address.
async fn update_recipient(
    store: &dyn DataStore,
    now: Timestamp,
    p: &Principal,
    el: &Element,
) -> Result<String, Fault> {
    let list = required_id(el, "LIST_ID")?;
    let key = recipient_key(el, "OLD_EMAIL")?;
    let cols = columns(el)?;
    let id = contact_id_for_write(store, p, list, key).await?;
    let email = cols.email.as_deref();
    let c = platform::update_contact(store, now, p, list, id, email, &cols.others).await?;
    Ok(render::recipient_id(c.id))
}

/// `RemoveRecipient` (contacts:write): removes the recipient named by `RECIPIENT_ID` or
/// `EMAIL`; the answer is just `SUCCESS`.
async fn remove_recipient(
    store: &dyn DataStore,
    p: &Principal,
    el: &Element,
) -> Result<String, Fault> {
    let list = required_id(el, "LIST_ID")?;
    let key = recipient_key(el, "EMAIL")?;
    let id = contact_id_for_write(store, p, list, key).await?;
    platform::delete_contact(store, p, list, id).await?;
    Ok(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::xmlapi::parse;

    fn op(xml: &str) -> Element {
        let body = format!("<Envelope><Body><Op>{xml}</Op></Body></Envelope>");
        parse(body.as_bytes()).expect("test request parses").element
    }

    /// The HTTP handler awaits `execute` on a multi-threaded runtime: its future must be Send.
    #[test]
    fn execute_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        fn check(store: &dyn DataStore, p: &Principal, req: &Request) {
            let fut = execute(store, Timestamp(0), p, req);
            assert_send(&fut);
        }
        let _ = check;
    }

    #[test]
    fn unknown_operations_refused() {
        for op in ["Login", "Logout", "getLists"] {
            let f = operation_grant(op).unwrap_err();
            assert_eq!(
                (f.errorid, f.kind, f.message),
                (51, FaultKind::BadRequest, format!("Unknown operation {op}"))
            );
        }
        assert_eq!(operation_grant("GetLists").unwrap(), Grant::ListsRead);
    }

    #[test]
    fn columns_split_email_from_the_rest() {
        let el = op("<LIST_ID>1</LIST_ID>\
            <COLUMN><NAME>Email</NAME><VALUE> a@b.example </VALUE></COLUMN>\
            <COLUMN><NAME> City </NAME><VALUE>Rome &amp; more</VALUE></COLUMN>\
            <COLUMN><NAME>Empty</NAME></COLUMN>");
        let cols = columns(&el).unwrap();
        assert_eq!(cols.email.as_deref(), Some("a@b.example"));
        assert_eq!(
            cols.others,
            BTreeMap::from([
                ("City".to_string(), "Rome & more".to_string()),
                ("Empty".to_string(), String::new()),
            ])
        );
        assert_eq!(columns(&op("")).unwrap(), Columns::default());
    }

    #[test]
    fn bad_columns_refused() {
        for xml in [
            "<COLUMN><VALUE>x</VALUE></COLUMN>",
            "<COLUMN><NAME>A</NAME><VALUE>1</VALUE><VALUE>2</VALUE></COLUMN>",
            "<COLUMN><NAME>A</NAME></COLUMN><COLUMN><NAME>A</NAME></COLUMN>",
            "<COLUMN><NAME>EMAIL</NAME></COLUMN><COLUMN><NAME>email</NAME></COLUMN>",
        ] {
            let f = columns(&op(xml)).unwrap_err();
            assert_eq!(
                (f.errorid, f.kind),
                (126, FaultKind::BadRequest),
                "{xml}: {f:?}"
            );
        }
    }

    #[test]
    fn fields_are_checked() {
        assert_eq!(
            required_id(&op("<LIST_ID> 42 </LIST_ID>"), "LIST_ID").unwrap(),
            42
        );
        let f = required_id(&op(""), "LIST_ID").unwrap_err();
        assert_eq!((f.errorid, f.kind), (126, FaultKind::BadRequest));
        assert_eq!(f.message, "Missing required field LIST_ID");
        let f = required_id(&op("<LIST_ID>  </LIST_ID>"), "LIST_ID").unwrap_err();
        assert_eq!(f.message, "Missing required field LIST_ID");
        let f = required_id(&op("<LIST_ID>x1</LIST_ID>"), "LIST_ID").unwrap_err();
        assert_eq!(f.message, "Invalid field LIST_ID: must be an integer");
        let f = required_id(&op("<LIST_ID>1</LIST_ID><LIST_ID>2</LIST_ID>"), "LIST_ID");
        assert!(f.unwrap_err().message.contains("more than once"));
        let f = required_id(&op("<list_id>1</list_id>"), "LIST_ID").unwrap_err();
        assert_eq!(f.message, "Missing required field LIST_ID");

        assert!(!flag(&op(""), "UPDATE_IF_FOUND").unwrap());
        assert!(flag(
            &op("<UPDATE_IF_FOUND>TRUE</UPDATE_IF_FOUND>"),
            "UPDATE_IF_FOUND"
        )
        .unwrap());
        assert!(!flag(
            &op("<UPDATE_IF_FOUND>False</UPDATE_IF_FOUND>"),
            "UPDATE_IF_FOUND"
        )
        .unwrap());
        let f = flag(
            &op("<UPDATE_IF_FOUND>yes</UPDATE_IF_FOUND>"),
            "UPDATE_IF_FOUND",
        );
        assert_eq!(f.unwrap_err().errorid, 126);
    }

    #[test]
    fn recipient_key_prefers_the_id() {
        let el = op("<RECIPIENT_ID>7</RECIPIENT_ID><EMAIL>a@b.example</EMAIL>");
        assert!(matches!(recipient_key(&el, "EMAIL"), Ok(ContactKey::Id(7))));
        let el = op("<EMAIL> a@b.example </EMAIL>");
        assert!(matches!(
            recipient_key(&el, "EMAIL"),
            Ok(ContactKey::Email("a@b.example"))
        ));
        let el = op("<OLD_EMAIL>a@b.example</OLD_EMAIL>");
        assert!(matches!(
            recipient_key(&el, "OLD_EMAIL"),
            Ok(ContactKey::Email(_))
        ));
        let f = recipient_key(&op("<EMAIL/>"), "EMAIL").unwrap_err();
        assert_eq!(f.message, "Missing required field RECIPIENT_ID or EMAIL");
        let f = recipient_key(&op("<RECIPIENT_ID>abc</RECIPIENT_ID>"), "EMAIL").unwrap_err();
        assert_eq!(f.message, "Invalid field RECIPIENT_ID: must be an integer");
    }
}
