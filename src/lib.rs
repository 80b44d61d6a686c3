//! ramgate: a reverse-proxy authorization sidecar for the Alibaba Cloud ECI OpenAPI.
//!
//! # Layout
//!
//! A request flows through the modules in this order (see [`proxy::handle`]):
//!
//! * [`net`] — listeners: bind, accept, connection limit, graceful drain, [`net::Shutdown`].
//! * [`request`] — both wire dialects parsed once into a [`request::CanonicalRequest`],
//!   using the action [`catalogue`]; credentials set apart.
//! * [`identity`] — who is calling: trusted header, AccessKey signature, client certificate
//!   (a signed request's nonce claimed in `cluster`'s nonce store).
//! * `quota` — the caller's `[[quotas]]` limit per action and rolling minute (400
//!   `Throttling.User`).
//! * [`metadata`] — the cached lookup of container groups' resource group and tags.
//! * [`decision`] — the pure engine: SPEC §3's rules over a [`snapshot::Snapshot`], giving a
//!   [`decision::Plan`] (forward, deny, silent empty) with its reason.
//! * [`upstream`] — the pooled client (HTTP or HTTPS) that forwards exactly the canonical
//!   request; with `signing = "acs3"` it signs every call with ramgate's own Alibaba Cloud
//!   credential ([`upstream::credentials`], the default chain, refreshed in the background)
//!   through [`acs3`], the canonical form that signature verification shares.
//! * [`filter`] — list answers checked item by item before they are returned.
//! * [`response`] — the one place typed errors become Alibaba-shaped HTTP answers.
//!
//! Data, separate from where it is enforced:
//!
//! * [`policy`] — RAM policy documents: parsed with positions, compiled into matchers.
//! * [`principals`] — `principals.toml`: account, resource groups, users, roles.
//! * [`snapshot`] — one validated policy directory, swapped in whole on reload.
//! * [`config`] — `ramgate.toml`; [`diagnostics`] — file:line:column problems with hints.
//! * [`model`] — tags and container-group facts shared by engine, cache and backend.
//!
//! Around it: `cluster` (`[cluster]`: nonces, cache invalidations and quota counters
//! shared by replicas through Redis), [`proxy`] (the service and `serve`), [`ops`] (metrics, admin listener, reload
//! and the directory watch, decision log, allocator settings and heap trim), [`backend`]
//! (the in-memory ECI service, which in cloud mode plays Alibaba Cloud: HTTPS, signed calls
//! only), [`demo`], [`cli`] (`check`, `explain`, `test`, `who-can`: the last three decide
//! through the planner the proxy calls, via `cli::hypothetical`).

pub mod acs3;
pub mod backend;
pub mod catalogue;
pub mod cli;
pub(crate) mod cluster;
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
pub(crate) mod quota;
pub mod request;
pub mod response;
pub mod snapshot;
pub mod upstream;
