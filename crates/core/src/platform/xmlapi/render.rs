//! Rendering XML API answers (docs/architecture.md, protected APIs): the success envelope, the fault envelope and
//! the escaping of every text they carry.

use crate::model::{Contact, List};

use super::parse::is_xml_char;

/// Escapes `s` for XML character data and attribute values: `&`, `<`, `>`, both quotes and
/// carriage returns become references, and characters XML 1.0 does not allow (control
/// characters, U+FFFE, U+FFFF) become U+FFFD, so stored data can never break the document.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Appends `<tag>escaped text</tag>`.
pub(super) fn push_element(out: &mut String, tag: &str, text: &str) {
    out.push('<');
    out.push_str(tag);
    out.push('>');
    push_escaped(out, text);
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// The success envelope of docs/architecture.md, protected APIs around `inner`, which must already be XML.
pub(super) fn success(inner: &str) -> String {
    format!("<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS>{inner}</RESULT></Body></Envelope>")
}

/// The fault envelope of docs/architecture.md, protected APIs, exactly as the original product shapes it.
pub(super) fn fault(errorid: u32, message: &str) -> String {
    format!(
        "<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT><Fault><Request/>\
         <FaultCode/><FaultString>{}</FaultString><detail><error><errorid>{errorid}</errorid>\
         <module/><class>SP.API</class><method/></error></detail></Fault></Body></Envelope>",
        escape(message)
    )
}

/// `GetLists` output: one `LIST` per list, with the original product's fixed fields.
pub(super) fn lists(lists: &[List]) -> String {
    let mut out = String::new();
    for l in lists {
        out.push_str("<LIST>");
        push_element(&mut out, "ID", &l.id.to_string());
        push_element(&mut out, "NAME", &l.name);
        out.push_str("<TYPE>0</TYPE>");
        push_element(&mut out, "SIZE", &l.size.to_string());
        out.push_str(
            "<NUM_OPT_OUTS>0</NUM_OPT_OUTS><NUM_UNDELIVERABLE>0</NUM_UNDELIVERABLE>\
             <VISIBILITY>1</VISIBILITY></LIST>",
        );
    }
    out
}

/// `SelectRecipientData` output: the address, the id and every column.
pub(super) fn contact(c: &Contact) -> String {
    let mut out = String::new();
    push_element(&mut out, "EMAIL", &c.email);
    push_element(&mut out, "RecipientId", &c.id.to_string());
    out.push_str("<COLUMNS>");
    for (name, value) in &c.columns {
        out.push_str("<COLUMN>");
        push_element(&mut out, "NAME", name);
        push_element(&mut out, "VALUE", value);
        out.push_str("</COLUMN>");
    }
    out.push_str("</COLUMNS>");
    out
}

/// `<RecipientId>id</RecipientId>`, the answer of the recipient-changing operations.
pub(super) fn recipient_id(id: i64) -> String {
    format!("<RecipientId>{id}</RecipientId>")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::clock::Timestamp;
    use crate::platform::xmlapi::{parse, Fault, FaultKind};

    #[test]
    fn escapes_markup_quotes_and_illegal_characters() {
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&apos;f");
        assert_eq!(
            escape("x\u{1}y\u{FFFF}\r\n\t"),
            "x\u{FFFD}y\u{FFFD}&#13;\n\t"
        );
        assert_eq!(escape("plain é"), "plain é");
    }

    #[test]
    fn fault_has_the_exact_shape() {
        let f = Fault::new(
            51,
            FaultKind::BadRequest,
            "Invalid XML request: <bad> & \"worse\"",
        );
        assert_eq!(
            f.render(),
            "<Envelope><Body><RESULT><SUCCESS>false</SUCCESS></RESULT><Fault><Request/>\
             <FaultCode/><FaultString>Invalid XML request: &lt;bad&gt; &amp; &quot;worse&quot;\
             </FaultString><detail><error><errorid>51</errorid><module/><class>SP.API</class>\
             <method/></error></detail></Fault></Body></Envelope>"
        );
    }

    #[test]
    fn server_fault_hides_its_cause() {
        let f = Fault::server("connection refused to 10.0.0.5");
        let xml = f.render();
        assert!(xml.contains("<FaultString>Server error; try again</FaultString>"));
        assert!(xml.contains("<errorid>50</errorid>"));
        assert!(!xml.contains("10.0.0.5"));
        assert_eq!(f.kind, FaultKind::Server);
    }

    #[test]
    fn success_outputs_escape_data_and_stay_well_formed() {
        let list = List {
            id: 7,
            name: "A&B <list>".into(),
            size: 3,
            created_at: Timestamp(0),
        };
        let xml = success(&lists(&[list]));
        assert_eq!(
            xml,
            "<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><LIST><ID>7</ID>\
             <NAME>A&amp;B &lt;list&gt;</NAME><TYPE>0</TYPE><SIZE>3</SIZE>\
             <NUM_OPT_OUTS>0</NUM_OPT_OUTS><NUM_UNDELIVERABLE>0</NUM_UNDELIVERABLE>\
             <VISIBILITY>1</VISIBILITY></LIST></RESULT></Body></Envelope>"
        );
        let c = Contact {
            id: 9,
            list_id: 7,
            email: "o'neil@x.example".into(),
            columns: BTreeMap::from([("City".to_string(), "<Paris> & \u{7}".to_string())]),
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        };
        let xml = success(&contact(&c));
        // Our own parser accepts it (wrapped as a request) and reads the data back.
        let req = xml
            .replace("<RESULT>", "<Op>")
            .replace("</RESULT>", "</Op>");
        let r = parse(req.as_bytes()).unwrap();
        assert_eq!(r.element.child("EMAIL").unwrap().text, "o'neil@x.example");
        assert_eq!(r.element.child("RecipientId").unwrap().text, "9");
        let col = r.element.child("COLUMNS").unwrap().child("COLUMN").unwrap();
        assert_eq!(col.child("NAME").unwrap().text, "City");
        assert_eq!(col.child("VALUE").unwrap().text, "<Paris> & \u{FFFD}");
        assert_eq!(
            success(&recipient_id(42)),
            "<Envelope><Body><RESULT><SUCCESS>TRUE</SUCCESS><RecipientId>42</RecipientId>\
             </RESULT></Body></Envelope>"
        );
    }
}
