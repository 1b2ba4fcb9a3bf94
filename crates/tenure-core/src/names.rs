//! Event names interned to small integers: a customer's counts and a segment's conditions
//! hold a [`NameId`], not a string.

/// An interned event name (see [`NameTable`]).
pub type NameId = u32;

/// Event names interned to small integers, in first-seen (log) order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameTable {
    names: Vec<String>,
    /// foldhash rather than SipHash: every event folded, and every behaviour condition
    /// evaluated for every customer, looks a name up (the map is never iterated, so its
    /// seed changes nothing).
    ids: foldhash::HashMap<String, NameId>,
}

impl NameTable {
    pub fn intern(&mut self, name: &str) -> NameId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as NameId;
        self.names.push(name.to_owned());
        self.ids.insert(name.to_owned(), id);
        id
    }

    pub fn get(&self, name: &str) -> Option<NameId> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: NameId) -> &str {
        self.names.get(id as usize).map_or("", String::as_str)
    }
}
