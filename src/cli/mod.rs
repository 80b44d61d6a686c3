//! The offline commands: `ramgate check`, `explain`, `test` and `who-can`. Each returns the
//! process exit code; printing is theirs, parsing the command line is `main.rs`'s. The last
//! three decide through [`hypothetical`], the one adapter from a request's facts to the
//! planner the proxy calls.

pub mod check;
pub mod explain;
pub mod hypothetical;
pub mod lint;
pub mod test;
pub mod who_can;
