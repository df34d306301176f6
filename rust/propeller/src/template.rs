//! Flyte's command template variables, filled in a container's command and args:
//! `{{.input}}` (the inputs file), `{{.inputPrefix}}`, `{{.outputPrefix}}`,
//! `{{.rawOutputDataPrefix}}`, `{{.checkpointOutputPrefix}}`, `{{.prevCheckpointPrefix}}`,
//! `{{.perRetryUniqueKey}}`, `{{.taskTemplatePath}}` and `{{.inputs.<name>}}` (a primitive
//! input's value). As in flyteplugins, names are case-insensitive, spaces inside the braces and
//! a leading `$` instead of `.` are accepted, and unknown variables are left as they are.

use alula_idl::flyteidl::core::{literal, primitive, scalar, LiteralMap};

/// What the variables of one attempt stand for.
#[derive(Debug, Clone, Default)]
pub struct TemplateValues<'a> {
    pub input: String,
    pub input_prefix: String,
    pub output_prefix: String,
    pub raw_output_data_prefix: String,
    pub checkpoint_output_prefix: String,
    pub prev_checkpoint_prefix: String,
    pub per_retry_unique_key: String,
    pub task_template_path: String,
    pub inputs: Option<&'a LiteralMap>,
}

/// A primitive literal as its command-line text, the way Flyte renders `{{.inputs.x}}`.
fn render_input(inputs: &LiteralMap, name: &str) -> Option<String> {
    let lit = inputs.literals.get(name)?;
    let Some(literal::Value::Scalar(s)) = &lit.value else {
        return None;
    };
    Some(match s.value.as_ref()? {
        scalar::Value::Primitive(p) => match p.value.as_ref()? {
            primitive::Value::Integer(i) => i.to_string(),
            primitive::Value::FloatValue(f) => f.to_string(),
            primitive::Value::StringValue(s) => s.clone(),
            primitive::Value::Boolean(b) => b.to_string(),
            primitive::Value::Datetime(t) => format!("{}.{:09}", t.seconds, t.nanos),
            primitive::Value::Duration(d) => format!("{}s", d.seconds),
        },
        scalar::Value::Blob(b) => b.uri.clone(),
        _ => return None,
    })
}

impl TemplateValues<'_> {
    fn lookup(&self, var: &str) -> Option<String> {
        let lower = var.to_ascii_lowercase();
        let fixed = match lower.as_str() {
            "input" => &self.input,
            "inputprefix" => &self.input_prefix,
            "outputprefix" => &self.output_prefix,
            "rawoutputdataprefix" => &self.raw_output_data_prefix,
            "checkpointoutputprefix" => &self.checkpoint_output_prefix,
            "prevcheckpointprefix" => &self.prev_checkpoint_prefix,
            "perretryuniquekey" => &self.per_retry_unique_key,
            "tasktemplatepath" => &self.task_template_path,
            _ => {
                let name = lower.strip_prefix("inputs.")?;
                // Input names keep their case; only the prefix is case-insensitive.
                let name = &var[var.len() - name.len()..];
                return render_input(self.inputs?, name);
            }
        };
        Some(fixed.clone())
    }

    /// `text` with every known `{{ .var }}` replaced.
    pub fn fill(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            let inner = after[..end].trim();
            let var = inner.strip_prefix('.').or_else(|| inner.strip_prefix('$'));
            match var.and_then(|v| self.lookup(v.trim())) {
                Some(value) => out.push_str(&value),
                None => out.push_str(&rest[start..start + 2 + end + 2]),
            }
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alula_idl::flyteidl::core::{Literal, Primitive, Scalar};

    fn int(i: i64) -> Literal {
        Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive {
                    value: Some(primitive::Value::Integer(i)),
                })),
            }))),
            ..Default::default()
        }
    }

    #[test]
    fn fills_flytekit_and_flyte_spellings() {
        let mut inputs = LiteralMap::default();
        inputs.literals.insert("Count".into(), int(7));
        let v = TemplateValues {
            input: "/m/inputs.pb".into(),
            output_prefix: "/m/0".into(),
            raw_output_data_prefix: "/raw".into(),
            inputs: Some(&inputs),
            ..Default::default()
        };
        assert_eq!(v.fill("{{.input}}"), "/m/inputs.pb");
        assert_eq!(v.fill("{{ .Input }}"), "/m/inputs.pb");
        assert_eq!(v.fill("{{$OutputPrefix}}/x"), "/m/0/x");
        assert_eq!(v.fill("--raw={{.rawOutputDataPrefix}}"), "--raw=/raw");
        assert_eq!(v.fill("n={{.Inputs.Count}}"), "n=7");
        // Unknown variables and unclosed braces stay as written.
        assert_eq!(
            v.fill("{{.nope}} {{.inputs.missing}}"),
            "{{.nope}} {{.inputs.missing}}"
        );
        assert_eq!(v.fill("a {{.input"), "a {{.input");
    }
}
