//! ramgate: a reverse-proxy authorization sidecar for the Alibaba Cloud ECI OpenAPI.
//!
//! # Layout
//!
//! A request is one chain of typed stages (`proxy::handler`), each with its own error type,
//! read top to bottom:
//!
//! 1. **parse** — [`request`]: the body read within its limit, both wire dialects parsed
//!    once into a [`request::CanonicalRequest`] using the action [`catalogue`];
//!    credentials set apart. Anything ambiguous is a 400.
//! 2. **identify** — [`identity`]: exactly one caller, from an AccessKey signature, the
//!    trusted header or a client certificate; else a 401 (signature errors keep Alibaba's
//!    codes). A signed request's nonce is claimed after its signature verifies, in
//!    `cluster`'s nonce store.
//! 3. **quota** — `quota`: the caller's `[[quotas]]` limit per action and rolling minute
//!    (400 `Throttling.User`), between who and what.
//! 4. **look up** — [`metadata`]: the cached resource group and tags of every container
//!    group named; a lookup that fails fails the request (503).
//! 5. **decide** — [`decision::plan`], the one decision entry (the proxy and the CLI
//!    commands all call it): SPEC §3's rules over one [`snapshot::Snapshot`], giving a
//!    [`decision::Plan`] — an allow with the rewrite the proxy must apply and the filter
//!    for a list answer, or a deny with its reason.
//! 6. **enforce** — the mode: enforce refuses a deny (403, or a silent empty list);
//!    dry-run forwards it as sent and logs what it would have done.
//! 7. **forward** — [`upstream`]: exactly the canonical request, nothing else, over the
//!    pooled client (HTTP or HTTPS); with `signing = "acs3"` every call is signed with
//!    ramgate's own Alibaba Cloud credential ([`upstream::credentials`], the default chain,
//!    refreshed in the background) through [`acs3`], the canonical form that signature
//!    verification shares. An answer that is not the ECI API's is refused (502), a late one
//!    is a 504.
//! 8. **filter** — [`filter`]: every item of a list answer checked again on its own.
//!
//! Before the first stage, [`net`] accepts the connection (bind, accept, connection limit,
//! graceful drain, [`net::Shutdown`]). [`response`] is the one place errors become
//! Alibaba-shaped HTTP answers. A request
//! record, created before the first stage, owns the in-flight gauge, the request metrics
//! and the decision-log line, and writes them however the request ends (answered, or
//! dropped mid-flight by a disconnect, an HTTP/2 reset or the drain).
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
//! shared by replicas through Redis), [`proxy`] (the state, the handler chain, `serve`),
//! [`ops`] (metrics, the admin listener, the policy store with reload and the directory
//! watch, the decision log, allocator settings and heap trim — composed by the proxy,
//! importing nothing from it), [`backend`] (the in-memory ECI service, which in cloud mode
//! plays Alibaba Cloud: HTTPS, signed calls only), [`demo`], [`cli`] (`check`, `explain`,
//! `test`, `who-can`: the last three decide through the planner the proxy calls, via
//! `cli::hypothetical`).

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
