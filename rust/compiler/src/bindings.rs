//! Binding validation (Flyte's `ValidateBindings`): every input bound once with a value of a
//! castable type, and the data edges the promises imply.

use std::collections::BTreeSet;

use alula_core::types::{
    are_types_castable, display_type, is_optional_type, literal_type_of_scalar, TypeDisplay,
};
use alula_idl::flyteidl::core::{
    binding_data, literal_type::Type, node::Target, primitive, promise_attribute, scalar, Binding,
    BindingData, LiteralType, Node, OutputReference, PromiseAttribute, SimpleType,
};

use crate::errors::{CompileError, ErrorCode};
use crate::graph::EdgeKind;
use crate::workflow::{describe_vars, is_approve_gate, Vars, WorkflowCompiler};

/// Where a binding is being checked, for messages and for the edges it adds.
struct Site<'s> {
    /// The node whose input this is (a renamed id for a branch then-node).
    node_id: &'s str,
    /// The input variable.
    var: &'s str,
    /// Whether types are checked: a branch node's own bindings only declare its inputs.
    check_types: bool,
}

/// What a valid binding delivers: its type (unknown through an untyped struct field) and the
/// nodes it reads from.
struct Resolved {
    ty: Option<LiteralType>,
    upstream: Vec<String>,
}

impl WorkflowCompiler<'_> {
    /// Validates a top-level (or failure) node's bindings against its interface.
    pub(crate) fn validate_node_bindings(&mut self, n: &Node, kind: EdgeKind) {
        if matches!(n.target, Some(Target::BranchNode(_))) {
            self.validate_bindings(&n.id, &n.id, &n.inputs, None, kind);
            self.validate_branch_contents(&n.id, n, kind);
            return;
        }
        // An approve gate's interface is made of its bindings: there is nothing to check them
        // against, but their sources must exist.
        if is_approve_gate(n) {
            self.validate_bindings(&n.id, &n.id, &n.inputs, None, kind);
            return;
        }
        // A node without an interface already has an error of its own.
        let Some(params) = self.interfaces.get(&n.id).map(|i| i.inputs.clone()) else {
            return;
        };
        self.validate_bindings(&n.id, &n.id, &n.inputs, Some(&params), kind);
    }

    /// Checks `bindings` of node `node_id` against `params` (`None`: declare, don't check) and
    /// adds an edge from each promise's node to `edge_target`.
    pub(crate) fn validate_bindings(
        &mut self,
        node_id: &str,
        edge_target: &str,
        bindings: &[Binding],
        params: Option<&Vars>,
        kind: EdgeKind,
    ) {
        let mut provided: BTreeSet<&str> = BTreeSet::new();
        for b in bindings {
            let expected = match params {
                Some(p) => match p.get(&b.var) {
                    Some(t) => Some(t),
                    None => {
                        self.error(
                            ErrorCode::VariableNameNotFound,
                            node_id,
                            format!(
                                "node [{node_id}] has no input named [{}]; its inputs are {}",
                                b.var,
                                describe_vars(p)
                            ),
                        );
                        continue;
                    }
                },
                None => None,
            };
            let Some(data) = &b.binding else {
                self.error(
                    ErrorCode::ValueRequired,
                    node_id,
                    format!(
                        "the binding of input [{}] on node [{node_id}] has no value",
                        b.var
                    ),
                );
                continue;
            };
            if !provided.insert(b.var.as_str()) {
                self.error(
                    ErrorCode::ParameterBoundMoreThanOnce,
                    node_id,
                    format!(
                        "input [{}] of node [{node_id}] is bound more than once",
                        b.var
                    ),
                );
            }
            let site = Site {
                node_id,
                var: &b.var,
                check_types: params.is_some(),
            };
            let mut errors = Vec::new();
            if let Some(resolved) = self.validate_binding(&site, data, expected, &mut errors) {
                for up in resolved.upstream {
                    self.graph.add(&up, edge_target, kind);
                }
            }
            self.errors.append(&mut errors);
        }
        let Some(params) = params else { return };
        for (name, t) in params {
            if !provided.contains(name.as_str()) && !is_optional_type(t) {
                self.error(
                    ErrorCode::ParameterNotBound,
                    node_id,
                    format!(
                        "input [{name}] of node [{node_id}] (type [{}]) is required but not bound",
                        TypeDisplay(t)
                    ),
                );
            }
        }
    }

    /// Validates one binding against `expected`; `None` (with errors pushed) when invalid.
    fn validate_binding(
        &self,
        site: &Site<'_>,
        data: &BindingData,
        expected: Option<&LiteralType>,
        errors: &mut Vec<CompileError>,
    ) -> Option<Resolved> {
        let value = data.value.as_ref();
        let is_container = matches!(
            value,
            Some(binding_data::Value::Collection(_) | binding_data::Value::Map(_))
        );
        // A list or map binding cannot be typed as a whole, so pick the union variant it fits.
        if let (true, Some(Type::UnionType(u))) =
            (is_container, expected.and_then(|t| t.r#type.as_ref()))
        {
            return self.validate_union_container(site, data, expected?, &u.variants, errors);
        }
        let at = site.node_id;
        let err = |code, description: String| CompileError::new(code, at, description);
        match value {
            None => {
                errors.push(err(
                    ErrorCode::UnrecognizedValue,
                    format!(
                        "the binding of input [{}] on node [{at}] has no value",
                        site.var
                    ),
                ));
                None
            }
            Some(binding_data::Value::Collection(c)) => {
                let elem = match expected.map(|t| &t.r#type) {
                    Some(Some(Type::CollectionType(elem))) => Some(&**elem),
                    None => None,
                    Some(_) => {
                        errors.push(mismatching_bindings(site, expected?, "a list"));
                        return None;
                    }
                };
                self.validate_elements(site, c.bindings.iter(), elem, errors)
                    .map(|(ty, upstream)| Resolved {
                        ty: ty.map(|t| LiteralType {
                            r#type: Some(Type::CollectionType(Box::new(t))),
                            ..Default::default()
                        }),
                        upstream,
                    })
            }
            Some(binding_data::Value::Map(m)) => {
                let value_type = match expected.map(|t| &t.r#type) {
                    Some(Some(Type::MapValueType(v))) => Some(&**v),
                    None => None,
                    Some(_) => {
                        errors.push(mismatching_bindings(site, expected?, "a map"));
                        return None;
                    }
                };
                self.validate_elements(site, m.bindings.values(), value_type, errors)
                    .map(|(ty, upstream)| Resolved {
                        ty: ty.map(|t| LiteralType {
                            r#type: Some(Type::MapValueType(Box::new(t))),
                            ..Default::default()
                        }),
                        upstream,
                    })
            }
            Some(binding_data::Value::Promise(p)) => {
                self.validate_promise(site, p, expected, errors)
            }
            Some(binding_data::Value::Scalar(s)) => {
                let Some(ty) = literal_type_of_scalar(s) else {
                    errors.push(err(
                        ErrorCode::UnrecognizedValue,
                        format!("the literal bound to input [{}] on node [{at}] has no recognisable type", site.var),
                    ));
                    return None;
                };
                let before = errors.len();
                if let (true, Some(want)) = (site.check_types, expected) {
                    if !are_types_castable(&ty, want) {
                        errors.push(err(
                            ErrorCode::MismatchingTypes,
                            format!(
                                "Variable [{}] (type [{}]) doesn't match expected type [{}].",
                                site.var,
                                TypeDisplay(&ty),
                                TypeDisplay(want)
                            ),
                        ));
                    }
                    if let Some(Type::EnumType(e)) = &want.r#type {
                        let given = match &s.value {
                            Some(scalar::Value::Primitive(p)) => match &p.value {
                                Some(primitive::Value::StringValue(v)) => v.as_str(),
                                _ => "",
                            },
                            _ => "",
                        };
                        if !e.values.iter().any(|v| v == given) {
                            errors.push(err(
                                ErrorCode::IllegalEnumValue,
                                format!(
                                    "input [{}] on node [{at}] is bound to [{given}], which is not one of the enum's values [{}]",
                                    site.var,
                                    e.values.join(", ")
                                ),
                            ));
                        }
                    }
                }
                (errors.len() == before).then_some(Resolved {
                    ty: Some(ty),
                    upstream: Vec::new(),
                })
            }
            Some(binding_data::Value::OffloadedMetadata(o)) => {
                let ty = o.inferred_type.clone();
                if let (true, Some(want), Some(t)) = (site.check_types, expected, &ty) {
                    if !are_types_castable(t, want) {
                        errors.push(err(
                            ErrorCode::MismatchingTypes,
                            format!(
                                "Variable [{}] (type [{}]) doesn't match expected type [{}].",
                                site.var,
                                TypeDisplay(t),
                                TypeDisplay(want)
                            ),
                        ));
                        return None;
                    }
                }
                Some(Resolved {
                    ty,
                    upstream: Vec::new(),
                })
            }
        }
    }

    /// Elements of a list (or values of a map) each checked against `elem`. The element type
    /// reported is that of the last valid element, as in Flyte.
    fn validate_elements<'b>(
        &self,
        site: &Site<'_>,
        elements: impl Iterator<Item = &'b BindingData>,
        elem: Option<&LiteralType>,
        errors: &mut Vec<CompileError>,
    ) -> Option<(Option<LiteralType>, Vec<String>)> {
        let before = errors.len();
        let mut elem_type = None;
        let mut upstream = Vec::new();
        for e in elements {
            if let Some(r) = self.validate_binding(site, e, elem, errors) {
                upstream.extend(r.upstream);
                elem_type = r.ty.or(elem_type);
            }
        }
        (errors.len() == before).then_some((elem_type.or_else(|| elem.cloned()), upstream))
    }

    fn validate_union_container(
        &self,
        site: &Site<'_>,
        data: &BindingData,
        expected: &LiteralType,
        variants: &[LiteralType],
        errors: &mut Vec<CompileError>,
    ) -> Option<Resolved> {
        let mut matched: Option<(&LiteralType, Resolved)> = None;
        for v in variants {
            let mut scratch = Vec::new();
            let Some(r) = self.validate_binding(site, data, Some(v), &mut scratch) else {
                continue;
            };
            if let Some((first, _)) = &matched {
                errors.push(CompileError::new(
                    ErrorCode::AmbiguousBindingUnionValue,
                    site.node_id,
                    format!(
                        "the binding of input [{}] on node [{}] matches more than one variant of [{}]: [{}] and [{}]",
                        site.var,
                        site.node_id,
                        TypeDisplay(expected),
                        TypeDisplay(first),
                        TypeDisplay(v)
                    ),
                ));
                return None;
            }
            matched = Some((v, r));
        }
        match matched {
            Some((_, r)) => Some(r),
            None => {
                errors.push(CompileError::new(
                    ErrorCode::IncompatibleBindingUnionValue,
                    site.node_id,
                    format!(
                        "the binding of input [{}] on node [{}] matches no variant of [{}]",
                        site.var,
                        site.node_id,
                        TypeDisplay(expected)
                    ),
                ));
                None
            }
        }
    }

    fn validate_promise(
        &self,
        site: &Site<'_>,
        p: &OutputReference,
        expected: Option<&LiteralType>,
        errors: &mut Vec<CompileError>,
    ) -> Option<Resolved> {
        let at = site.node_id;
        let outputs = match self.interfaces.get(&p.node_id) {
            Some(i) if self.referable.contains(&p.node_id) => &i.outputs,
            // Known node whose interface failed: that node carries the error.
            None if self.referable.contains(&p.node_id) => return None,
            _ => {
                errors.push(CompileError::new(
                    ErrorCode::NodeReferenceNotFound,
                    at,
                    format!(
                        "input [{}] on node [{at}] reads from node [{}], which is not a node of this workflow",
                        site.var, p.node_id
                    ),
                ));
                return None;
            }
        };
        let Some(source) = outputs.get(&p.var) else {
            errors.push(CompileError::new(
                ErrorCode::VariableNameNotFound,
                at,
                format!(
                    "input [{}] on node [{at}] reads output [{}] of node [{}], which has outputs {}",
                    site.var,
                    p.var,
                    p.node_id,
                    describe_vars(outputs)
                ),
            ));
            return None;
        };
        let ty = match resolve_attr_path(source, &p.attr_path) {
            Ok(t) => t,
            Err(attr) => {
                errors.push(CompileError::new(
                    ErrorCode::FieldNotFound,
                    at,
                    format!(
                        "input [{}] on node [{at}] reads [{attr}] of output [{}.{}], which has type [{}] and no such field",
                        site.var,
                        p.node_id,
                        p.var,
                        TypeDisplay(source)
                    ),
                ));
                return None;
            }
        };
        if let (true, Some(want), Some(t)) = (site.check_types, expected, &ty) {
            if !are_types_castable(t, want) {
                errors.push(CompileError::new(
                    ErrorCode::MismatchingTypes,
                    at,
                    format!(
                        "The output variable '{}.{}' has type [{}], but it's assigned to the input variable '{}' which has type type [{}].",
                        p.node_id,
                        p.var,
                        display_type(t),
                        site.var,
                        display_type(want)
                    ),
                ));
                return None;
            }
        }
        Some(Resolved {
            ty,
            upstream: vec![p.node_id.clone()],
        })
    }
}

fn mismatching_bindings(site: &Site<'_>, expected: &LiteralType, received: &str) -> CompileError {
    CompileError::new(
        ErrorCode::MismatchingBindings,
        site.node_id,
        format!(
            "Input [{}] on node [{}] expects bindings of type [{}].  Received [{received}]",
            site.var,
            site.node_id,
            TypeDisplay(expected)
        ),
    )
}

/// The type reached by following `attr_path` (list indices, map keys, dataclass fields) into
/// `t`. `Ok(None)` when the path enters a struct whose field types are not recorded, so the
/// type cannot be checked; `Err` names the first attribute that does not exist.
pub(crate) fn resolve_attr_path(
    t: &LiteralType,
    path: &[PromiseAttribute],
) -> Result<Option<LiteralType>, String> {
    let mut current = t;
    for attr in path {
        let (key, index) = match &attr.value {
            Some(promise_attribute::Value::StringValue(s)) => (Some(s.as_str()), None),
            Some(promise_attribute::Value::IntValue(i)) => (None, Some(*i)),
            None => (None, None),
        };
        let shown = key.map_or_else(|| format!("{}", index.unwrap_or_default()), str::to_string);
        current = match (&current.r#type, key, index) {
            (Some(Type::CollectionType(elem)), _, Some(_)) => elem,
            (Some(Type::MapValueType(value)), Some(_), _) => value,
            (Some(Type::Simple(s)), Some(field), _) if *s == SimpleType::Struct as i32 => {
                match current.structure.as_ref().map(|st| &st.dataclass_type) {
                    Some(fields) if !fields.is_empty() => match fields.get(field) {
                        Some(f) => f,
                        None => return Err(shown),
                    },
                    // A generic struct (or an old flytekit without field types): unknown.
                    _ => return Ok(None),
                }
            }
            _ => return Err(shown),
        };
    }
    Ok(Some(current.clone()))
}
