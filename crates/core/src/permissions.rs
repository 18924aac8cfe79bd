//! API grants (docs/architecture.md, protected APIs): one name per protected API family, also used as OAuth scopes.

use std::fmt;

/// One protected API family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grant {
    ListsRead,
    ListsWrite,
    ContactsRead,
    ContactsWrite,
    EventsWrite,
    /// Read the org's configuration through the admin API (`/admin/v1`).
    AdminRead,
    /// Change the org's configuration through the admin API: everything an org admin does
    /// in the console.
    AdminWrite,
}

impl Grant {
    pub const ALL: [Grant; 7] = [
        Grant::ListsRead,
        Grant::ListsWrite,
        Grant::ContactsRead,
        Grant::ContactsWrite,
        Grant::EventsWrite,
        Grant::AdminRead,
        Grant::AdminWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Grant::ListsRead => "lists:read",
            Grant::ListsWrite => "lists:write",
            Grant::ContactsRead => "contacts:read",
            Grant::ContactsWrite => "contacts:write",
            Grant::EventsWrite => "events:write",
            Grant::AdminRead => "admin:read",
            Grant::AdminWrite => "admin:write",
        }
    }

    /// Plain words for consent pages and CLI help.
    pub fn describe(self) -> &'static str {
        match self {
            Grant::ListsRead => "see your databases and lists",
            Grant::ListsWrite => "create and delete databases and lists",
            Grant::ContactsRead => "read the contacts in your databases",
            Grant::ContactsWrite => "add, change and remove contacts",
            Grant::EventsWrite => "send events",
            Grant::AdminRead => "see your organization's applications, users, keys and audit log",
            Grant::AdminWrite => "manage your organization's applications, users and keys",
        }
    }

    /// The API family it belongs to, as the console groups grants.
    pub fn family(self) -> &'static str {
        match self {
            Grant::ListsRead | Grant::ListsWrite => "Lists",
            Grant::ContactsRead | Grant::ContactsWrite => "Contacts",
            Grant::EventsWrite => "Events",
            Grant::AdminRead | Grant::AdminWrite => "Admin",
        }
    }

    pub fn parse(s: &str) -> Option<Grant> {
        Grant::ALL.into_iter().find(|g| g.name() == s)
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// The bits of every grant, and of the admin API's: constants, as stored sets are decoded
/// and principals' grants computed on every request.
const ALL_BITS: u32 = (1 << Grant::ALL.len()) - 1;
const ADMIN_BITS: u32 = Grant::AdminRead.bit() | Grant::AdminWrite.bit();

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of grants, stored as a bit mask.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GrantSet(u32);

impl GrantSet {
    pub fn empty() -> Self {
        GrantSet(0)
    }

    pub fn all() -> Self {
        GrantSet(ALL_BITS)
    }

    /// Every grant of the protected data APIs, none of the admin API's: what an application
    /// registered without a scope list may ask for.
    pub fn apis() -> Self {
        GrantSet(ALL_BITS & !ADMIN_BITS)
    }

    /// The grants of the admin API in this set: held by org admins and by the API users given
    /// them, never by a UI user who is not an org admin (docs/architecture.md, the admin API).
    pub fn admin_part(self) -> GrantSet {
        GrantSet(self.0 & ADMIN_BITS)
    }

    /// This set without the grants of `other`.
    pub fn without(self, other: GrantSet) -> GrantSet {
        GrantSet(self.0 & !other.0)
    }

    pub fn contains(self, g: Grant) -> bool {
        self.0 & g.bit() != 0
    }

    pub fn insert(&mut self, g: Grant) {
        self.0 |= g.bit();
    }

    pub fn remove(&mut self, g: Grant) {
        self.0 &= !g.bit();
    }

    pub fn intersect(self, other: GrantSet) -> GrantSet {
        GrantSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn bits(self) -> i64 {
        self.0 as i64
    }

    /// Unknown bits (from a newer version) are dropped.
    pub fn from_bits(bits: i64) -> Self {
        GrantSet(bits as u32 & ALL_BITS)
    }

    pub fn iter(self) -> impl Iterator<Item = Grant> {
        Grant::ALL.into_iter().filter(move |g| self.contains(*g))
    }

    /// Space-separated, as in an OAuth `scope` (RFC 6749 §3.3).
    pub fn to_scope(self) -> String {
        self.iter().map(Grant::name).collect::<Vec<_>>().join(" ")
    }

    /// Parses a space-separated scope; `Err` names the first unknown grant.
    pub fn parse_scope(s: &str) -> Result<GrantSet, String> {
        s.split(' ')
            .filter(|p| !p.is_empty())
            .map(|p| Grant::parse(p).ok_or_else(|| p.to_string()))
            .collect()
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Grant::name).collect()
    }
}

impl FromIterator<Grant> for GrantSet {
    fn from_iter<I: IntoIterator<Item = Grant>>(iter: I) -> Self {
        let mut s = GrantSet::empty();
        for g in iter {
            s.insert(g);
        }
        s
    }
}

impl fmt::Debug for GrantSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantSet({})", self.to_scope())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_round_trip_and_unknown_names() {
        let s = GrantSet::parse_scope("contacts:read  lists:read").unwrap();
        assert_eq!(s.to_scope(), "lists:read contacts:read");
        assert_eq!(GrantSet::from_bits(s.bits()), s);
        assert_eq!(
            GrantSet::parse_scope("lists:read bogus"),
            Err("bogus".into())
        );
        assert!(GrantSet::all().contains(Grant::EventsWrite));
    }

    #[test]
    fn the_default_of_applications_leaves_out_the_admin_api() {
        let apis = GrantSet::apis();
        assert!(apis.contains(Grant::EventsWrite));
        assert!(!apis.contains(Grant::AdminRead) && !apis.contains(Grant::AdminWrite));
        assert_eq!(
            GrantSet::all().without(apis).names(),
            ["admin:read", "admin:write"]
        );
        assert_eq!(GrantSet::all().admin_part(), GrantSet::all().without(apis));
        // Stored sets from before the admin grants keep their meaning.
        assert_eq!(GrantSet::from_bits(31), apis);
    }
}
