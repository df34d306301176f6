//! Compiler tests on hand-built templates: one test per error code, positive shapes, and the
//! properties of the output (sorting, connections, determinism).

mod errors;
mod positive;
mod support;
