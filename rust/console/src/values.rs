//! (being written) Inputs and outputs rendered by type: scalars, lists, maps, dataclasses,
//! files and directories (download links through the data proxy), data frames (a preview).

use alula_idl::flyteidl::core::{LiteralMap, VariableMap};
use maud::{html, Markup};

use crate::Api;

/// Each value of `values` as `<div class="value" data-name="{name}">`, typed by `types` (the
/// interface's variables) where known.
pub async fn literal_map(_api: &Api, values: &LiteralMap, _types: Option<&VariableMap>) -> Markup {
    html! {
        @for name in values.literals.keys() {
            div.value data-name=(name) { (name) }
        }
    }
}
