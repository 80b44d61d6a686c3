//! ramgate: a reverse-proxy authorization sidecar for the ECI OpenAPI.
//!
//! # Layout
//! (written as the modules land)

pub mod backend;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod decision;
pub mod demo;
pub mod diagnostics;
pub mod filter;
pub mod identity;
pub mod metadata;
pub mod model;
pub mod net;
pub mod ops;
pub mod policy;
pub mod principals;
pub mod proxy;
pub mod request;
pub mod response;
pub mod snapshot;
pub mod upstream;
