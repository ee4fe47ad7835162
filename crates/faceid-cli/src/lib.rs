//! The `faceid` command's library: everything the binary does, callable from tests.
//! The engine makes every decision; this crate reads files, prints and measures.
#![deny(missing_docs)]

pub mod bench;
pub mod commands;
pub mod eval;
pub mod pad;
pub mod provision;
pub mod sync;
pub mod zones;
