//! Flyte's command-line template variables (flyteplugins' `pluginmachinery/utils/template.go`),
//! shared by every plugin that runs a container command (process, Kubernetes pods):
//! `{{.input}}`, `{{.outputPrefix}}`, `{{.Inputs.x}}` ... in a container's command and args.
//! Names are case-insensitive, spaces are allowed inside the braces and the leading `.` may be a
//! `$`, exactly as Flyte's regular expressions accept them.

use std::sync::LazyLock;

use alula_idl::flyteidl::core::{literal, primitive, scalar, Literal, LiteralMap};
use regex::{Captures, Regex};

/// `{{ .name }}` or `{{ .Inputs.var }}`. Input names run to the first space or `}` (Flyte's
/// `[^}\s]+`).
static VAR: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern: tested below
    Regex::new(r"(?i)\{\{\s*[.$]([a-z]+)(?:\.([^}\s]+))?\s*\}\}").unwrap()
});

/// What the variables stand for, as the pod sees it (paths already rewritten for the pod).
#[derive(Debug, Clone, Default)]
pub struct TemplateVars<'a> {
    pub input: String,
    pub input_prefix: String,
    pub output_prefix: String,
    pub raw_output_prefix: String,
    pub checkpoint_prefix: String,
    /// Empty on a first attempt, as in Flyte.
    pub prev_checkpoint_prefix: String,
    pub per_retry_unique_key: String,
    pub inputs: Option<&'a LiteralMap>,
}

impl TemplateVars<'_> {
    /// Fills every variable of `s`. Unknown variables stay as they are (Flyte leaves them for
    /// the task to see); an `{{.Inputs.x}}` naming a missing or non-primitive input is an error,
    /// as in Flyte.
    pub fn render(&self, s: &str) -> Result<String, String> {
        let mut error = None;
        let out = VAR.replace_all(s, |caps: &Captures| {
            let whole = caps[0].to_string();
            let name = caps[1].to_ascii_lowercase();
            let value = match (name.as_str(), caps.get(2)) {
                ("inputs", Some(var)) => match self.input_value(var.as_str()) {
                    Ok(v) => v,
                    Err(e) => {
                        error.get_or_insert(format!("template {whole}: {e}"));
                        return String::new();
                    }
                },
                (_, Some(_)) => return whole,
                ("input", None) => self.input.clone(),
                ("inputprefix", None) => self.input_prefix.clone(),
                ("outputprefix", None) => self.output_prefix.clone(),
                ("rawoutputdataprefix", None) => self.raw_output_prefix.clone(),
                ("checkpointoutputprefix", None) => self.checkpoint_prefix.clone(),
                ("prevcheckpointprefix", None) => self.prev_checkpoint_prefix.clone(),
                ("perretryuniquekey", None) => self.per_retry_unique_key.clone(),
                _ => return whole,
            };
            value
        });
        match error {
            Some(e) => Err(e),
            None => Ok(out.into_owned()),
        }
    }

    fn input_value(&self, name: &str) -> Result<String, String> {
        let literal = self
            .inputs
            .and_then(|m| m.literals.get(name))
            .ok_or_else(|| format!("requested input is not found [{name}]"))?;
        serialize(literal)
    }
}

/// A literal as text on a command line: primitives, blob and schema URIs, and collections of
/// those (`[a,b]`), as Flyte's `serializeLiteral`.
fn serialize(literal: &Literal) -> Result<String, String> {
    match &literal.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Primitive(p)) => serialize_primitive(p.value.as_ref()),
            Some(scalar::Value::Blob(b)) => Ok(b.uri.clone()),
            Some(scalar::Value::Schema(s)) => Ok(s.uri.clone()),
            Some(scalar::Value::StructuredDataset(s)) => Ok(s.uri.clone()),
            Some(scalar::Value::Union(u)) => match &u.value {
                Some(inner) => serialize(inner),
                None => Err("empty union value".into()),
            },
            _ => Err(
                "only primitives, blobs, schemas and collections of them can be used in a command"
                    .into(),
            ),
        },
        Some(literal::Value::Collection(c)) => {
            let items = c
                .literals
                .iter()
                .map(serialize)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(format!("[{}]", items.join(",")))
        }
        _ => Err(
            "only primitives, blobs, schemas and collections of them can be used in a command"
                .into(),
        ),
    }
}

fn serialize_primitive(p: Option<&primitive::Value>) -> Result<String, String> {
    Ok(match p {
        Some(primitive::Value::Integer(i)) => i.to_string(),
        // Go's `%v`: shortest round-trip text (`1` for 1.0, `0.5`).
        Some(primitive::Value::FloatValue(f)) => f.to_string(),
        Some(primitive::Value::StringValue(s)) => s.clone(),
        Some(primitive::Value::Boolean(b)) => b.to_string(),
        // RFC 3339 in UTC, fractional seconds only when present (Go's RFC3339Nano).
        Some(primitive::Value::Datetime(t)) => {
            let time = u32::try_from(t.nanos)
                .ok()
                .and_then(|n| chrono::DateTime::from_timestamp(t.seconds, n))
                .ok_or_else(|| format!("bad datetime: {}s {}ns", t.seconds, t.nanos))?;
            let mut text = time.format("%Y-%m-%dT%H:%M:%S").to_string();
            if t.nanos != 0 {
                let fraction = format!("{:09}", t.nanos);
                text.push('.');
                text.push_str(fraction.trim_end_matches('0'));
            }
            text.push('Z');
            text
        }
        // Flyte prints the protobuf's debug text here (`seconds:10`), which no task parses;
        // seconds with a unit is what a command line can use.
        Some(primitive::Value::Duration(d)) => {
            if d.nanos == 0 {
                format!("{}s", d.seconds)
            } else {
                let frac = format!("{:09}", d.nanos.unsigned_abs());
                format!("{}.{}s", d.seconds, frac.trim_end_matches('0'))
            }
        }
        None => return Err("empty primitive".into()),
    })
}

#[cfg(test)]
mod tests {
    use alula_idl::flyteidl::core::{LiteralCollection, Primitive, Scalar};

    use super::*;

    fn prim(v: primitive::Value) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive { value: Some(v) })),
            }))),
            ..Default::default()
        }
    }

    fn vars(inputs: &LiteralMap) -> TemplateVars<'_> {
        TemplateVars {
            input: "/s/in/inputs.pb".into(),
            input_prefix: "/s/in".into(),
            output_prefix: "/s/out".into(),
            raw_output_prefix: "/s/raw".into(),
            checkpoint_prefix: "/s/ck".into(),
            prev_checkpoint_prefix: String::new(),
            per_retry_unique_key: "pod-0".into(),
            inputs: Some(inputs),
        }
    }

    #[test]
    fn fills_paths_in_any_case_and_spacing() {
        let inputs = LiteralMap::default();
        let v = vars(&inputs);
        assert_eq!(v.render("{{.input}}").unwrap(), "/s/in/inputs.pb");
        assert_eq!(v.render("{{ .Input }}").unwrap(), "/s/in/inputs.pb");
        assert_eq!(v.render("{{$inputPrefix}}").unwrap(), "/s/in");
        assert_eq!(
            v.render("--out={{.OUTPUTPREFIX}} --raw {{ .rawOutputDataPrefix}}")
                .unwrap(),
            "--out=/s/out --raw /s/raw"
        );
        assert_eq!(v.render("{{.checkpointOutputPrefix}}").unwrap(), "/s/ck");
        assert_eq!(v.render("x{{.prevCheckpointPrefix}}y").unwrap(), "xy");
        assert_eq!(v.render("{{.perRetryUniqueKey}}").unwrap(), "pod-0");
        // Not ours: left for the task.
        assert_eq!(
            v.render("{{.unknown}} {{input}}").unwrap(),
            "{{.unknown}} {{input}}"
        );
        // An unclosed variable is text.
        assert_eq!(v.render("a {{.input").unwrap(), "a {{.input");
    }

    #[test]
    fn fills_primitive_inputs() {
        let mut inputs = LiteralMap::default();
        inputs
            .literals
            .insert("n".into(), prim(primitive::Value::Integer(42)));
        inputs
            .literals
            .insert("f".into(), prim(primitive::Value::FloatValue(1.0)));
        inputs
            .literals
            .insert("s".into(), prim(primitive::Value::StringValue("hi".into())));
        inputs
            .literals
            .insert("b".into(), prim(primitive::Value::Boolean(true)));
        inputs.literals.insert(
            "t".into(),
            prim(primitive::Value::Datetime(alula_idl::wkt::Timestamp {
                seconds: 0,
                nanos: 500_000_000,
            })),
        );
        inputs.literals.insert(
            "d".into(),
            prim(primitive::Value::Duration(alula_idl::wkt::Duration {
                seconds: 3,
                nanos: 250_000_000,
            })),
        );
        inputs.literals.insert(
            "l".into(),
            Literal {
                value: Some(literal::Value::Collection(LiteralCollection {
                    literals: vec![
                        prim(primitive::Value::Integer(1)),
                        prim(primitive::Value::Integer(2)),
                    ],
                })),
                ..Default::default()
            },
        );
        let v = vars(&inputs);
        assert_eq!(
            v.render("{{.Inputs.n}} {{ .inputs.f }} {{$Inputs.s}} {{.inputs.b}}")
                .unwrap(),
            "42 1 hi true"
        );
        assert_eq!(v.render("{{.inputs.t}}").unwrap(), "1970-01-01T00:00:00.5Z");
        assert_eq!(v.render("{{.inputs.d}}").unwrap(), "3.25s");
        assert_eq!(v.render("{{.inputs.l}}").unwrap(), "[1,2]");
        let err = v.render("{{.inputs.missing}}").unwrap_err();
        assert!(
            err.contains("requested input is not found [missing]"),
            "{err}"
        );
    }
}
