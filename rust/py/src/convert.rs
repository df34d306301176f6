//! Python values ⇄ literals on the local-run hot path.
//!
//! The SDK describes each task input and output with a small *kind*: the types whose literal
//! form is fixed (int, float, str, bool, None, and lists / string-keyed dicts of them) are
//! converted here, in Rust, without touching protobuf or JSON; every other type (dataclasses,
//! files, data frames, unions, enums, ...) goes through the SDK's type engine, given as a pair
//! of Python callables that work on proto3-JSON text.

use std::collections::BTreeMap;

use alula_engine::literals;
use alula_idl::flyteidl::core::{literal, primitive, scalar, Binary, Literal, LiteralMap};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// How one value converts.
pub enum Kind {
    Int,
    Float,
    Str,
    Bool,
    NoneType,
    List(Box<Kind>),
    Dict(Box<Kind>),
    /// A binary scalar with this tag (msgpack for dataclasses): `loads(bytes) -> value`,
    /// `dumps(value) -> bytes`; no JSON in between.
    Binary {
        tag: String,
        loads: Py<PyAny>,
        dumps: Py<PyAny>,
    },
    /// Through the type engine: `to_python(json) -> value`, `to_literal(value) -> json`.
    Python {
        to_python: Py<PyAny>,
        to_literal: Py<PyAny>,
    },
}

impl Kind {
    /// Parses the SDK's description: `"int"`, `("list", k)`, `("dict", k)`, `("py", to_py, to_lit)`.
    pub fn parse(spec: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(name) = spec.cast::<PyString>() {
            return match name.to_str()? {
                "int" => Ok(Kind::Int),
                "float" => Ok(Kind::Float),
                "str" => Ok(Kind::Str),
                "bool" => Ok(Kind::Bool),
                "none" => Ok(Kind::NoneType),
                other => Err(PyValueError::new_err(format!(
                    "unknown value kind {other:?}"
                ))),
            };
        }
        let tuple = spec.cast::<PyTuple>()?;
        let tag: String = tuple.get_item(0)?.extract()?;
        match (tag.as_str(), tuple.len()) {
            ("list", 2) => Ok(Kind::List(Box::new(Kind::parse(&tuple.get_item(1)?)?))),
            ("dict", 2) => Ok(Kind::Dict(Box::new(Kind::parse(&tuple.get_item(1)?)?))),
            ("binary", 4) => Ok(Kind::Binary {
                tag: tuple.get_item(1)?.extract()?,
                loads: tuple.get_item(2)?.unbind(),
                dumps: tuple.get_item(3)?.unbind(),
            }),
            ("py", 3) => Ok(Kind::Python {
                to_python: tuple.get_item(1)?.unbind(),
                to_literal: tuple.get_item(2)?.unbind(),
            }),
            _ => Err(PyValueError::new_err(format!("unknown value kind {tag:?}"))),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Str => "str",
            Kind::Bool => "bool",
            Kind::NoneType => "None",
            Kind::List(_) => "list",
            Kind::Dict(_) => "dict",
            Kind::Binary { .. } | Kind::Python { .. } => "value",
        }
    }
}

fn mismatch(kind: &Kind, lit: &Literal) -> PyErr {
    PyTypeError::new_err(format!(
        "expected a literal of kind {}, got {lit:?}",
        kind.name()
    ))
}

/// A literal as the Python value of `kind`.
pub fn to_python<'py>(py: Python<'py>, lit: &Literal, kind: &Kind) -> PyResult<Bound<'py, PyAny>> {
    use primitive::Value as P;
    match kind {
        Kind::Int => match literals::as_primitive(lit) {
            Some(P::Integer(i)) => Ok(PyInt::new(py, *i).into_any()),
            _ => Err(mismatch(kind, lit)),
        },
        Kind::Float => match literals::as_primitive(lit) {
            Some(P::FloatValue(f)) => Ok(PyFloat::new(py, *f).into_any()),
            Some(P::Integer(i)) => Ok(PyFloat::new(py, *i as f64).into_any()),
            _ => Err(mismatch(kind, lit)),
        },
        Kind::Str => match literals::as_primitive(lit) {
            Some(P::StringValue(s)) => Ok(PyString::new(py, s).into_any()),
            _ => Err(mismatch(kind, lit)),
        },
        Kind::Bool => match literals::as_primitive(lit) {
            Some(P::Boolean(b)) => Ok(PyBool::new(py, *b).to_owned().into_any()),
            _ => Err(mismatch(kind, lit)),
        },
        Kind::NoneType => Ok(py.None().into_bound(py)),
        Kind::List(inner) => match &lit.value {
            Some(literal::Value::Collection(c)) => {
                let items = c
                    .literals
                    .iter()
                    .map(|l| to_python(py, l, inner))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(PyList::new(py, items)?.into_any())
            }
            _ => Err(mismatch(kind, lit)),
        },
        Kind::Dict(inner) => match &lit.value {
            Some(literal::Value::Map(m)) => {
                let dict = PyDict::new(py);
                for (k, v) in &m.literals {
                    dict.set_item(k, to_python(py, v, inner)?)?;
                }
                Ok(dict.into_any())
            }
            _ => Err(mismatch(kind, lit)),
        },
        Kind::Binary { tag, loads, .. } => match literals::as_scalar(lit) {
            Some(scalar::Value::Binary(b)) if b.tag == *tag => {
                loads.bind(py).call1((PyBytes::new(py, &b.value),))
            }
            _ => Err(mismatch(kind, lit)),
        },
        Kind::Python { to_python, .. } => {
            let json =
                serde_json::to_string(lit).map_err(|e| PyValueError::new_err(e.to_string()))?;
            to_python.bind(py).call1((json,))
        }
    }
}

/// A Python value as a literal of `kind`; a wrong type is a TypeError naming both types.
pub fn to_literal(value: &Bound<'_, PyAny>, kind: &Kind) -> PyResult<Literal> {
    use primitive::Value as P;
    let wrong = || {
        let got = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyTypeError::new_err(format!(
            "expected {}, got {got} ({})",
            kind.name(),
            short_repr(value)
        ))
    };
    Ok(match kind {
        Kind::Int => {
            if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
                return Err(wrong());
            }
            literals::primitive(P::Integer(value.extract().map_err(|_| wrong())?))
        }
        Kind::Float => {
            if value.is_instance_of::<PyBool>()
                || !(value.is_instance_of::<PyFloat>() || value.is_instance_of::<PyInt>())
            {
                return Err(wrong());
            }
            literals::primitive(P::FloatValue(value.extract().map_err(|_| wrong())?))
        }
        Kind::Str => literals::primitive(P::StringValue(
            value
                .cast::<PyString>()
                .map_err(|_| wrong())?
                .to_str()?
                .to_string(),
        )),
        Kind::Bool => literals::primitive(P::Boolean(
            value.cast::<PyBool>().map_err(|_| wrong())?.is_true(),
        )),
        Kind::NoneType => {
            if !value.is_none() {
                return Err(wrong());
            }
            literals::none()
        }
        Kind::List(inner) => {
            let list = value.cast::<PyList>().map_err(|_| wrong())?;
            literals::collection(
                list.iter()
                    .map(|v| to_literal(&v, inner))
                    .collect::<PyResult<_>>()?,
            )
        }
        Kind::Dict(inner) => {
            let dict = value.cast::<PyDict>().map_err(|_| wrong())?;
            let mut out = BTreeMap::new();
            for (k, v) in dict.iter() {
                let key: String = k
                    .extract()
                    .map_err(|_| PyTypeError::new_err("dict keys must be str"))?;
                out.insert(key, to_literal(&v, inner)?);
            }
            literals::map(out)
        }
        Kind::Binary { tag, dumps, .. } => {
            let bytes: Vec<u8> = dumps.bind(value.py()).call1((value,))?.extract()?;
            literals::scalar(scalar::Value::Binary(Binary {
                value: bytes,
                tag: tag.clone(),
            }))
        }
        Kind::Python { to_literal, .. } => {
            let json: String = to_literal.bind(value.py()).call1((value,))?.extract()?;
            serde_json::from_str(&json)
                .map_err(|e| PyValueError::new_err(format!("invalid literal JSON: {e}")))?
        }
    })
}

fn short_repr(value: &Bound<'_, PyAny>) -> String {
    let text = value.repr().map(|r| r.to_string()).unwrap_or_default();
    if text.len() > 60 {
        format!("{}...", &text[..57])
    } else {
        text
    }
}

/// `[(name, kind)]` as the SDK passes it.
pub fn parse_kinds(specs: &Bound<'_, PyAny>) -> PyResult<Vec<(String, Kind)>> {
    specs
        .try_iter()?
        .map(|pair| {
            let pair = pair?;
            Ok((
                pair.get_item(0)?.extract()?,
                Kind::parse(&pair.get_item(1)?)?,
            ))
        })
        .collect()
}

/// `values[name]` for every `(name, kind)` as a literal map; a value of the wrong type is a
/// TypeError naming the input.
pub fn values_to_map(values: &Bound<'_, PyDict>, kinds: &[(String, Kind)]) -> PyResult<LiteralMap> {
    let py = values.py();
    let mut map = LiteralMap::default();
    for (name, kind) in kinds {
        let Some(value) = values.get_item(name)? else {
            continue;
        };
        let lit = to_literal(&value, kind)
            .map_err(|e| PyErr::from_type(e.get_type(py), format!("{name}: {}", e.value(py))))?;
        map.literals.insert(name.clone(), lit);
    }
    Ok(map)
}

/// `{name: value}` for every `(name, kind)` present in `map`.
pub fn map_to_values<'py>(
    py: Python<'py>,
    map: &LiteralMap,
    kinds: &[(String, Kind)],
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    for (name, kind) in kinds {
        if let Some(lit) = map.literals.get(name) {
            out.set_item(name, to_python(py, lit, kind)?)?;
        }
    }
    Ok(out)
}

/// Encodes `values[name]` for every `(name, kind)` as a `flyteidl.core.LiteralMap`.
#[pyfunction]
pub fn encode_values<'py>(
    py: Python<'py>,
    values: &Bound<'py, PyDict>,
    kinds: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    use prost::Message;
    let map = values_to_map(values, &parse_kinds(kinds)?)?;
    Ok(PyBytes::new(py, &map.encode_to_vec()))
}

/// Decodes a `flyteidl.core.LiteralMap` into `{name: value}` for every `(name, kind)` present.
#[pyfunction]
pub fn decode_values<'py>(
    py: Python<'py>,
    data: &[u8],
    kinds: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    use prost::Message;
    let map = LiteralMap::decode(data)
        .map_err(|e| PyValueError::new_err(format!("not a LiteralMap: {e}")))?;
    map_to_values(py, &map, &parse_kinds(kinds)?)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(encode_values, m)?)?;
    m.add_function(wrap_pyfunction!(decode_values, m)?)
}
