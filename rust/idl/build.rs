//! Compiles `proto/` with protox (no system `protoc`), then generates:
//! - prost message types and tonic clients/servers for every package,
//! - pbjson serde impls (the proto3 JSON mapping the REST gateway speaks),
//! - the encoded descriptor set (embedded, for reflection and the parity test),
//! - a name → type registry so tools can decode any message by its full name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use heck::{ToSnakeCase, ToUpperCamelCase};
use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet};

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest.join("../../proto").canonicalize()?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut files = Vec::new();
    collect_protos(&proto_root, &proto_root, &mut files)?;
    files.sort();
    for f in &files {
        println!("cargo:rerun-if-changed={}", proto_root.join(f).display());
    }
    // Encode through protox's own pool: prost_types would drop the custom options
    // (`google.api.http`) that the REST gateway and the parity test read.
    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(false);
    compiler.open_files(&files)?;
    let fds_bytes = compiler.encode_file_descriptor_set();
    let fds = FileDescriptorSet::decode(fds_bytes.as_slice())?;
    std::fs::write(out_dir.join("descriptor_set.bin"), &fds_bytes)?;

    // Set on prost's Config directly: tonic's compile_fds path ignores its own map/WKT options.
    let mut config = prost_build::Config::new();
    // Our own well-known types: pbjson-types' JSON mapping deviates from proto3's
    // (offset instead of `Z` in timestamps, null Values lost); see src/wkt_json.rs.
    config.compile_well_known_types();
    // Sorted maps: deterministic encodings, so digests of identical specs are identical.
    config.btree_map(["."]);
    // A Literal carries its rare offloaded form inline otherwise (240 of its 288 bytes); every
    // value and every literal map slot pays for that.
    config.boxed(".flyteidl.core.Literal.offloaded_metadata");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(fds.clone(), config)?;

    pbjson_build::Builder::new()
        .register_descriptors(&fds_bytes)?
        .btree_map(["."])
        .build(&[".flyteidl", ".datacatalog", ".google.api", ".alula"])?;

    patch_float_fields(&fds, &out_dir)?;
    write_module_tree(&fds, &out_dir)?;
    write_registry(&fds, &out_dir)?;
    Ok(())
}

/// pbjson hands a float field to serde as is, and serde_json writes NaN and infinities as
/// `null`, which reads back as 0 (found by the fuzz suite). The proto3 JSON mapping spells them
/// `"NaN"`, `"Infinity"` and `"-Infinity"`: each float field is routed through
/// `wkt_json::ProtoFloat`. Fails the build when pbjson's output changes shape, rather than
/// silently leaving a field unpatched.
fn patch_float_fields(fds: &FileDescriptorSet, out_dir: &Path) -> Result<(), BoxError> {
    use prost_types::field_descriptor_proto::Type;
    fn floats(msg: &DescriptorProto, out: &mut Vec<(String, String)>) {
        for f in &msg.field {
            if matches!(f.r#type(), Type::Float | Type::Double) {
                out.push((f.json_name().to_string(), f.name().to_string()));
            }
        }
        for nested in &msg.nested_type {
            floats(nested, out);
        }
    }
    let mut by_package: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for file in &fds.file {
        if file.package().starts_with("google.") {
            continue;
        }
        let fields = by_package.entry(file.package().to_string()).or_default();
        for msg in &file.message_type {
            floats(msg, fields);
        }
    }
    for (package, mut fields) in by_package {
        fields.sort();
        fields.dedup();
        if fields.is_empty() {
            continue;
        }
        let path = out_dir.join(format!("{package}.serde.rs"));
        let mut code = std::fs::read_to_string(&path)?;
        for (json, name) in fields {
            let mut found = false;
            // A oneof member, then a plain field.
            for value in ["v".to_string(), format!("&self.{name}")] {
                let from = format!("struct_ser.serialize_field(\"{json}\", {value})?;");
                let to = format!(
                    "struct_ser.serialize_field(\"{json}\", &crate::wkt_json::ProtoFloat({value}))?;"
                );
                found |= code.contains(&from);
                code = code.replace(&from, &to);
            }
            if !found {
                return Err(format!(
                    "{package}: pbjson's serialization of float field {name} not found"
                )
                .into());
            }
        }
        std::fs::write(&path, code)?;
    }
    Ok(())
}

fn collect_protos(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), BoxError> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            let rel = path
                .strip_prefix(root)?
                .to_string_lossy()
                .replace('\\', "/");
            out.push(rel);
        }
    }
    Ok(())
}

/// Every package prost generates a file for.
fn generated_packages(fds: &FileDescriptorSet) -> Vec<String> {
    let mut pkgs: Vec<String> = fds.file.iter().map(|f| f.package().to_string()).collect();
    pkgs.sort();
    pkgs.dedup();
    pkgs
}

#[derive(Default)]
struct ModTree {
    includes: Vec<String>,
    children: BTreeMap<String, ModTree>,
}

/// One nested `pub mod` per package segment holding the prost, tonic and serde output.
fn write_module_tree(fds: &FileDescriptorSet, out_dir: &Path) -> Result<(), BoxError> {
    let mut root = ModTree::default();
    for pkg in generated_packages(fds) {
        let mut node = &mut root;
        for seg in pkg.split('.') {
            node = node.children.entry(seg.to_string()).or_default();
        }
        node.includes.push(format!("{pkg}.rs"));
        // google.protobuf has hand-written JSON mapping (src/wkt.rs).
        if !pkg.starts_with("google.protobuf") {
            node.includes.push(format!("{pkg}.serde.rs"));
        }
    }
    let mut code = String::new();
    render(&root, &mut code, 0);
    std::fs::write(out_dir.join("modules.rs"), code)?;
    Ok(())
}

fn render(node: &ModTree, code: &mut String, depth: usize) {
    let pad = "    ".repeat(depth);
    for inc in &node.includes {
        let _ = writeln!(
            code,
            "{pad}include!(concat!(env!(\"OUT_DIR\"), \"/{inc}\"));"
        );
    }
    for (name, child) in &node.children {
        let _ = writeln!(code, "{pad}pub mod {name} {{");
        render(child, code, depth + 1);
        let _ = writeln!(code, "{pad}}}");
    }
}

const RUST_KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
    "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro", "override",
    "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

fn module_ident(name: &str) -> String {
    let snake = name.to_snake_case();
    if RUST_KEYWORDS.contains(&snake.as_str()) {
        format!("r#{snake}")
    } else {
        snake
    }
}

fn type_ident(name: &str) -> String {
    let camel = name.to_upper_camel_case();
    if camel == "Self" {
        "Self_".to_string()
    } else {
        camel
    }
}

/// `registry.rs`: `match` from a full message name to its Rust type, driven by a visitor.
fn write_registry(fds: &FileDescriptorSet, out_dir: &Path) -> Result<(), BoxError> {
    let mut arms = Vec::new();
    for file in &fds.file {
        let pkg = file.package();
        if pkg.starts_with("google.") {
            continue;
        }
        let module = format!("crate::{}", pkg.replace('.', "::"));
        for msg in &file.message_type {
            registry_arms(msg, pkg, &module, &mut arms);
        }
    }
    arms.sort();
    let mut code = String::from(
        "/// Calls `visitor.visit::<T>()` with the Rust type of the message named `full_name`.\n\
         pub fn visit_message<V: MessageVisitor>(full_name: &str, visitor: V) -> Option<V::Output> {\n    match full_name {\n",
    );
    for (name, path) in &arms {
        let _ = writeln!(code, "        {name:?} => Some(visitor.visit::<{path}>()),");
    }
    code.push_str("        _ => None,\n    }\n}\n\n/// Every message full name the registry knows.\npub const MESSAGE_NAMES: &[&str] = &[\n");
    for (name, _) in &arms {
        let _ = writeln!(code, "    {name:?},");
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("registry.rs"), code)?;
    Ok(())
}

fn registry_arms(
    msg: &DescriptorProto,
    prefix: &str,
    module: &str,
    arms: &mut Vec<(String, String)>,
) {
    if msg.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let full = format!("{prefix}.{}", msg.name());
    arms.push((
        full.clone(),
        format!("{module}::{}", type_ident(msg.name())),
    ));
    let nested_module = format!("{module}::{}", module_ident(msg.name()));
    for nested in &msg.nested_type {
        registry_arms(nested, &full, &nested_module, arms);
    }
}
