//! What every validation of a message returns: one problem with one field, named by its
//! dotted path. A leaf: the parser (`message`) and the meanings of event properties
//! (`semantic`) both produce them.

use serde::Serialize;

/// One problem with one field of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `properties.revenue`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
