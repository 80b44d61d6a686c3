//! The offline commands: `ramgate check` and `ramgate explain`. Each returns the process
//! exit code; printing is theirs, parsing the command line is `main.rs`'s.

pub mod check;
pub mod explain;
