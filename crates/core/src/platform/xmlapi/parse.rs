//! Parsing an XML API request body into a small element tree (docs/architecture.md, protected APIs).
//!
//! Hardened against hostile input: no DTDs, no entity expansion (only the five predefined
//! entities and numeric character references are decoded), bounded depth and element count,
//! UTF-8 only. Everything malformed is error 51.

use quick_xml::escape::unescape_with;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::{Element, Fault, Request};

/// Deepest element nesting accepted (`Envelope` is depth 1).
pub const MAX_DEPTH: usize = 32;
/// Most elements accepted in one request.
pub const MAX_ELEMENTS: usize = 10_000;

/// XML's white space (XML 1.0 §2.3 `S`).
pub(crate) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A character XML 1.0 allows in a document (§2.2 `Char`); Rust strings hold no surrogates.
pub(crate) fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

/// The five entities XML predefines (XML 1.0 §4.6); every other entity is refused.
fn predefined_entity(name: &str) -> Option<&'static str> {
    match name {
        "lt" => Some("<"),
        "gt" => Some(">"),
        "amp" => Some("&"),
        "apos" => Some("'"),
        "quot" => Some("\""),
        _ => None,
    }
}

/// Decodes predefined entities and character references in `raw`, refusing any other entity
/// and any reference to a character XML does not allow.
fn unescape(raw: &str) -> Result<String, Fault> {
    let text = unescape_with(raw, predefined_entity).map_err(|e| {
        use quick_xml::escape::EscapeError;
        match e {
            EscapeError::UnrecognizedEntity(_, name) => Fault::invalid_xml(format!(
                "entity reference &{name}; is not accepted; only the predefined XML entities \
                 and character references are"
            )),
            e => Fault::invalid_xml(format!("not well-formed ({e})")),
        }
    })?;
    xml_chars_only(&text)?;
    Ok(text.into_owned())
}

/// The tag name of a start or empty tag, after checking its attributes are well-formed and
/// refer to no entity.
fn open_tag(e: &BytesStart<'_>) -> Result<String, Fault> {
    for attr in e.attributes() {
        let attr = attr.map_err(|e| Fault::invalid_xml(format!("not well-formed ({e})")))?;
        unescape(utf8(&attr.value)?)?;
    }
    let name = utf8(e.name().as_ref())?.to_string();
    if name.is_empty() {
        return Err(Fault::invalid_xml("an element has no name"));
    }
    Ok(name)
}

/// Parses `<Envelope><Body><Op>...</Op></Body></Envelope>` (docs/architecture.md, protected APIs) into a
/// [`Request`]. Tag names are case-sensitive; white space between elements is ignored; a UTF-8
/// byte order mark and an XML declaration are allowed. Errors are [`Fault`] 51 / HTTP 400.
pub fn parse(body: &[u8]) -> Result<Request, Fault> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = utf8(body)?;
    if text.trim_matches(is_xml_space).is_empty() {
        return Err(Fault::invalid_xml("the request body is empty"));
    }
    xml_chars_only(text)?;
    let root = read_tree(text)?;
    into_request(root)
}

/// Reads the single root element of `text` with all its descendants.
fn read_tree(text: &str) -> Result<Element, Fault> {
    let mut reader = Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = true;
    config.check_comments = true;
    config.expand_empty_elements = false;

    let mut tree = Tree::default();
    loop {
        let event = reader
            .read_event()
            .map_err(|e| Fault::invalid_xml(format!("not well-formed ({e})")))?;
        match event {
            Event::DocType(_) => return Err(Fault::invalid_xml("DTDs are not accepted")),
            Event::Decl(_) => tree.declaration()?,
            Event::PI(_) | Event::Comment(_) => {}
            Event::Start(ref e) => tree.start(e, true)?,
            Event::Empty(ref e) => tree.start(e, false)?,
            Event::End(_) => tree.end()?,
            Event::Text(t) => tree.text(&unescape(utf8(&t)?)?)?,
            Event::CData(c) => tree.cdata(utf8(&c)?)?,
            Event::Eof => return tree.finish(),
        }
    }
}

/// The document read so far: the open elements, innermost last, and the finished root.
#[derive(Default)]
struct Tree {
    stack: Vec<Element>,
    root: Option<Element>,
    elements: usize,
    declared: bool,
}

impl Tree {
    /// Lenient like the original product: white space or a comment may precede the one
    /// declaration.
    fn declaration(&mut self) -> Result<(), Fault> {
        if self.declared || !self.stack.is_empty() || self.root.is_some() {
            return Err(Fault::invalid_xml("misplaced XML declaration"));
        }
        self.declared = true;
        Ok(())
    }

    /// An element opens (`open`) or is empty and closes at once.
    fn start(&mut self, e: &BytesStart<'_>, open: bool) -> Result<(), Fault> {
        if self.stack.is_empty() && self.root.is_some() {
            return Err(Fault::invalid_xml("more than one root element"));
        }
        self.elements += 1;
        check_limits(self.elements, self.stack.len() + 1)?;
        let el = Element {
            name: open_tag(e)?,
            ..Element::default()
        };
        if open {
            self.stack.push(el);
        } else {
            self.close(el);
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), Fault> {
        let Some(el) = self.stack.pop() else {
            return Err(Fault::invalid_xml("an end tag has no start tag"));
        };
        self.close(el);
        Ok(())
    }

    /// Attaches a finished element to its parent, or makes it the root.
    fn close(&mut self, el: Element) {
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => self.root = Some(el),
        }
    }

    /// Character data, entities decoded; only white space may stand outside the root.
    fn text(&mut self, decoded: &str) -> Result<(), Fault> {
        match self.stack.last_mut() {
            Some(el) => el.text.push_str(decoded),
            None if decoded.trim_matches(is_xml_space).is_empty() => {}
            None => return Err(Fault::invalid_xml("text outside the root element")),
        }
        Ok(())
    }

    fn cdata(&mut self, raw: &str) -> Result<(), Fault> {
        match self.stack.last_mut() {
            Some(el) => el.text.push_str(raw),
            None => return Err(Fault::invalid_xml("CDATA outside the root element")),
        }
        Ok(())
    }

    fn finish(self) -> Result<Element, Fault> {
        if let Some(open) = self.stack.last() {
            return Err(Fault::invalid_xml(format!(
                "the document ends before </{}>",
                open.name
            )));
        }
        self.root
            .ok_or_else(|| Fault::invalid_xml("there is no root element"))
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, Fault> {
    std::str::from_utf8(bytes).map_err(|_| Fault::invalid_xml("the body is not valid UTF-8"))
}

/// Refuses a character XML 1.0 does not allow, wherever it came from.
fn xml_chars_only(text: &str) -> Result<(), Fault> {
    match text.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(Fault::invalid_xml(format!(
            "character U+{:04X} is not allowed in XML",
            c as u32
        ))),
        None => Ok(()),
    }
}

fn check_limits(elements: usize, depth: usize) -> Result<(), Fault> {
    if elements > MAX_ELEMENTS {
        return Err(Fault::invalid_xml(format!(
            "more than {MAX_ELEMENTS} elements"
        )));
    }
    if depth > MAX_DEPTH {
        return Err(Fault::invalid_xml(format!(
            "elements are nested deeper than {MAX_DEPTH}"
        )));
    }
    Ok(())
}

/// Checks that `text` holds nothing but white space; `place` names where it was found.
fn only_space(el: &Element, place: &str) -> Result<(), Fault> {
    if el.text.trim_matches(is_xml_space).is_empty() {
        Ok(())
    } else {
        Err(Fault::invalid_xml(format!("unexpected text in {place}")))
    }
}

/// Checks the envelope's shape and takes out the single operation element.
fn into_request(root: Element) -> Result<Request, Fault> {
    if root.name != "Envelope" {
        return Err(Fault::invalid_xml(format!(
            "the root element must be Envelope, not {}",
            root.name
        )));
    }
    only_space(&root, "Envelope")?;
    let mut envelope = root.children.into_iter();
    let body = match (envelope.next(), envelope.next()) {
        (Some(b), None) if b.name == "Body" => b,
        (None, _) => return Err(Fault::invalid_xml("Envelope has no Body")),
        _ => {
            return Err(Fault::invalid_xml(
                "Envelope must contain exactly one element, Body",
            ))
        }
    };
    only_space(&body, "Body")?;
    let mut ops = body.children.into_iter();
    match (ops.next(), ops.next()) {
        (Some(element), None) => Ok(Request {
            op: element.name.clone(),
            element,
        }),
        (None, _) => Err(Fault::invalid_xml("Body contains no operation")),
        (Some(_), Some(_)) => Err(Fault::invalid_xml(
            "Body must contain exactly one operation",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::xmlapi::FaultKind;

    fn fault(body: &str) -> Fault {
        match parse(body.as_bytes()) {
            Ok(r) => panic!("parsed {r:?}"),
            Err(f) => f,
        }
    }

    fn assert_51(body: &str, contains: &str) {
        let f = fault(body);
        assert_eq!(
            (f.errorid, f.kind),
            (51, FaultKind::BadRequest),
            "{body}: {f:?}"
        );
        assert!(f.message.starts_with("Invalid XML request: "), "{f:?}");
        assert!(f.message.contains(contains), "{body}: {f:?}");
    }

    #[test]
    fn good_envelope() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Envelope>\n  <Body>\n    \
            <AddRecipient>\n      <LIST_ID>12</LIST_ID>\n      <COLUMN><NAME>EMAIL</NAME>\
            <VALUE>a@b.example</VALUE></COLUMN>\n      <COLUMN><NAME>First</NAME><VALUE/>\
            </COLUMN>\n      <!-- note -->\n    </AddRecipient>\n  </Body>\n</Envelope>\n";
        let r = parse(body.as_bytes()).unwrap();
        assert_eq!(r.op, "AddRecipient");
        assert_eq!(r.element.name, "AddRecipient");
        assert_eq!(r.element.children.len(), 3);
        assert_eq!(r.element.child("LIST_ID").unwrap().text, "12");
        let cols: Vec<_> = r.element.children_named("COLUMN").collect();
        assert_eq!(cols.len(), 2);
        assert_eq!(cols[0].child("VALUE").unwrap().text, "a@b.example");
        assert_eq!(cols[1].child("VALUE").unwrap().text, "");
        let r = parse(b"\n <?xml version=\"1.0\"?><Envelope><Body><GetLists/></Body></Envelope>");
        assert_eq!(r.unwrap().op, "GetLists");
        let r = parse(b"\xEF\xBB\xBF<Envelope><Body><GetLists/></Body></Envelope>").unwrap();
        assert_eq!(r.op, "GetLists");
        assert!(r.element.children.is_empty());
    }

    #[test]
    fn tags_are_case_sensitive() {
        assert_51(
            "<envelope><Body><GetLists/></Body></envelope>",
            "root element",
        );
        assert_51("<Envelope><BODY><GetLists/></BODY></Envelope>", "Body");
        let r = parse(b"<Envelope><Body><getlists/></Body></Envelope>").unwrap();
        assert_eq!(r.op, "getlists");
        let r = parse(b"<Envelope><Body><X><list_id>1</list_id></X></Body></Envelope>").unwrap();
        assert!(r.element.child("LIST_ID").is_none());
    }

    #[test]
    fn doctype_refused() {
        assert_51(
            "<?xml version=\"1.0\"?><!DOCTYPE Envelope [<!ENTITY x \"y\">]>\
             <Envelope><Body><GetLists/></Body></Envelope>",
            "DTDs are not accepted",
        );
        assert_51(
            "<!DOCTYPE Envelope SYSTEM \"file:///etc/passwd\"><Envelope/>",
            "DTDs are not accepted",
        );
    }

    #[test]
    fn custom_entities_refused() {
        assert_51(
            "<Envelope><Body><X><V>&xxe;</V></X></Body></Envelope>",
            "&xxe; is not accepted",
        );
        assert_51(
            "<Envelope><Body><X a=\"&ext;\"/></Body></Envelope>",
            "&ext; is not accepted",
        );
        assert_51(
            "<Envelope><Body><X>&#0;</X></Body></Envelope>",
            "not well-formed",
        );
        assert_51("<Envelope><Body><X>&#1;</X></Body></Envelope>", "U+0001");
    }

    #[test]
    fn predefined_entities_and_char_refs_decoded() {
        let r = parse(
            b"<Envelope><Body><X><VALUE>Tom &amp; Jerry &lt;&gt;&apos;&quot; &#233;&#x41;\
              <![CDATA[&amp;<raw>]]></VALUE></X></Body></Envelope>",
        )
        .unwrap();
        assert_eq!(
            r.element.child("VALUE").unwrap().text,
            "Tom & Jerry <>'\" \u{e9}A&amp;<raw>"
        );
    }

    #[test]
    fn malformed_refused() {
        assert_51("", "empty");
        assert_51("  \n ", "empty");
        assert_51(
            "<Envelope><Body><GetLists></Body></Envelope>",
            "not well-formed",
        );
        assert_51(
            "<Envelope><Body><GetLists/></Body>",
            "ends before </Envelope>",
        );
        assert_51(
            "<Envelope><Body><GetLists/></Body></Envelope><Envelope/>",
            "root",
        );
        assert_51("hello<Envelope/>", "outside the root");
        assert_51(
            "<Envelope><Body><GetLists/></Body></Envelope>trailing",
            "outside",
        );
        assert_51(
            "<Envelope><Body><X>a & b</X></Body></Envelope>",
            "Invalid XML",
        );
        assert_51(
            "<Envelope><Body><X a=\"1\" a=\"2\"/></Body></Envelope>",
            "well-formed",
        );
        assert_51("<Envelope/>", "no Body");
        assert_51("<Envelope><Body/></Envelope>", "no operation");
        assert_51(
            "<Envelope><Body>text<GetLists/></Body></Envelope>",
            "text in Body",
        );
        assert_51(
            "<Envelope><Header/><Body><GetLists/></Body></Envelope>",
            "Body",
        );
        assert_51("<Envelope><Body><X>\u{1}</X></Body></Envelope>", "U+0001");
        assert_51(
            "<?xml version=\"1.0\"?><?xml version=\"1.0\"?><a/>",
            "declaration",
        );
        assert_51(
            "<Envelope><?xml version=\"1.0\"?><Body/></Envelope>",
            "declaration",
        );
        let f = parse(b"<Envelope><Body><X>\xff</X></Body></Envelope>").unwrap_err();
        assert!(f.message.contains("UTF-8"), "{f:?}");
    }

    #[test]
    fn two_operations_refused() {
        assert_51(
            "<Envelope><Body><GetLists/><GetLists/></Body></Envelope>",
            "exactly one operation",
        );
    }

    #[test]
    fn deep_nesting_and_element_count_bounded() {
        let nest = |n: usize| {
            let inner = n - 3;
            format!(
                "<Envelope><Body><Op>{}{}</Op></Body></Envelope>",
                "<a>".repeat(inner),
                "</a>".repeat(inner)
            )
        };
        assert!(parse(nest(MAX_DEPTH).as_bytes()).is_ok());
        assert_51(&nest(MAX_DEPTH + 1), "deeper than 32");
        assert_51(&nest(100_000), "deeper than 32");
        let many = |n: usize| {
            format!(
                "<Envelope><Body><Op>{}</Op></Body></Envelope>",
                "<a/>".repeat(n - 3)
            )
        };
        assert!(parse(many(MAX_ELEMENTS).as_bytes()).is_ok());
        assert_51(&many(MAX_ELEMENTS + 1), "more than 10000 elements");
    }
}
