//! (being written) Inputs and outputs rendered by type.
