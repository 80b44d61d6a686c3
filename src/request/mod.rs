//! Request parsing: both wire dialects into one canonical parameter set.
pub mod encoding;
