//! ramgate: a reverse-proxy authorization sidecar for the ECI OpenAPI.
//!
//! # Layout
//! (written as the modules land)

pub mod backend;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod decision;
pub mod diagnostics;
pub mod model;
pub mod net;
pub mod policy;
pub mod principals;
pub mod request;
pub mod snapshot;
