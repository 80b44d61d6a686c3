//! ramgate: a reverse-proxy authorization sidecar for the ECI OpenAPI.
//!
//! # Layout
//! (written as the modules land)

pub mod backend;
pub mod catalogue;
pub mod model;
pub mod net;
pub mod request;
pub mod diagnostics;
pub mod policy;
pub mod decision;
pub mod principals;
pub mod snapshot;
