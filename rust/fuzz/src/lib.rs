//! Test support for the fuzz suites (a dev-dependency only; see `README.md` beside this crate).
//!
//! - [`Entropy`]: the random choices of one case, read from bytes that proptest generates and
//!   shrinks (fewer or smaller bytes give smaller messages, so failures minimise well).
//! - [`Schema`]: every message, enum and service of [`alula_idl::FILE_DESCRIPTOR_SET`]; draws
//!   structurally valid protobuf bytes for any message, so a suite that iterates over
//!   [`Schema::message_names`] or [`Schema::services`] covers a new message or RPC by itself.
//!   Strings come from small vocabularies keyed by the field name (`project` is mostly
//!   `flytesnacks`, node ids are `n0`..`n2`), so references between parts of a random message
//!   often line up and the checks behind the decoders are reached, not just the decoders.
//! - [`mutate`]: byte-level flips, insertions and deletions of a valid encoding.
//! - [`bounded`]: runs one case on a watchdog thread; a case that hangs fails the test.
//! - [`cases`] and [`config`]: how many cases a suite runs (`ALULA_FUZZ_CASES`) and its seed
//!   (`ALULA_FUZZ_SEED`), so CI runs a bounded, reproducible number and longer runs go further.

use std::collections::HashMap;
use std::time::Duration;

use prost::encoding::{encode_key, encode_varint, WireType};
use prost::Message;

use alula_idl::google::api::HttpRule;
use alula_idl::wkt::field_descriptor_proto::{Label, Type};
use alula_idl::wkt::{
    DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet,
};

/// The random choices of one case; reads zeros once the bytes run out.
pub struct Entropy<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Entropy<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn u64(&mut self) -> u64 {
        (0..8).fold(0u64, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        let raw = if n <= 256 {
            usize::from(self.byte())
        } else {
            self.u64() as usize
        };
        raw % n
    }

    /// True with probability `per_256 / 256`; false once the bytes run out.
    pub fn chance(&mut self, per_256: u8) -> bool {
        self.byte() >= 255 - per_256 && self.pos <= self.data.len()
    }

    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.below(items.len())]
    }

    pub fn exhausted(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// One RPC of a served service, as the descriptor set declares it.
#[derive(Clone, Debug)]
pub struct Method {
    pub name: String,
    /// Full names without the leading dot.
    pub input: String,
    pub output: String,
    pub http: Option<HttpRule>,
}

#[derive(Clone, Debug)]
pub struct Service {
    /// `flyteidl.service.AdminService`.
    pub full_name: String,
    pub methods: Vec<Method>,
}

// The generated `MethodOptions` drops extensions; routing needs `google.api.http`, so the
// service part of the set is decoded again with just these fields.
#[derive(Clone, PartialEq, Message)]
struct Files {
    #[prost(message, repeated, tag = "1")]
    file: Vec<File>,
}

#[derive(Clone, PartialEq, Message)]
struct File {
    #[prost(string, tag = "2")]
    package: String,
    #[prost(message, repeated, tag = "6")]
    service: Vec<ServiceProto>,
}

#[derive(Clone, PartialEq, Message)]
struct ServiceProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, repeated, tag = "2")]
    method: Vec<MethodProto>,
}

#[derive(Clone, PartialEq, Message)]
struct MethodProto {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    input_type: String,
    #[prost(string, tag = "3")]
    output_type: String,
    #[prost(message, optional, tag = "4")]
    options: Option<MethodOptions>,
}

#[derive(Clone, PartialEq, Message)]
struct MethodOptions {
    #[prost(message, optional, tag = "72295728")]
    http: Option<HttpRule>,
}

/// Every message, enum and service of the embedded descriptor set.
pub struct Schema {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, Vec<i32>>,
    services: Vec<Service>,
}

/// Bounds one drawn message: nesting depth and the number of submessages overall.
const MAX_DEPTH: usize = 7;
const MAX_MESSAGES: usize = 120;

impl Schema {
    /// Loads the embedded set; it is built by `build.rs`, so failing to decode it is a bug.
    #[allow(clippy::unwrap_used, reason = "test support: the embedded set is ours")]
    pub fn load() -> Self {
        let set = FileDescriptorSet::decode(alula_idl::FILE_DESCRIPTOR_SET).unwrap();
        let mut schema = Self {
            messages: HashMap::new(),
            enums: HashMap::new(),
            services: Vec::new(),
        };
        for file in &set.file {
            let prefix = file.package.clone().unwrap_or_default();
            for e in &file.enum_type {
                schema.add_enum(&prefix, e);
            }
            for m in &file.message_type {
                schema.add_message(&prefix, m);
            }
        }
        let files = Files::decode(alula_idl::FILE_DESCRIPTOR_SET).unwrap();
        for file in files.file {
            for service in file.service {
                schema.services.push(Service {
                    full_name: format!("{}.{}", file.package, service.name),
                    methods: service
                        .method
                        .into_iter()
                        .map(|m| Method {
                            name: m.name,
                            input: m.input_type.trim_start_matches('.').to_string(),
                            output: m.output_type.trim_start_matches('.').to_string(),
                            http: m.options.and_then(|o| o.http),
                        })
                        .collect(),
                });
            }
        }
        schema
    }

    fn add_enum(&mut self, prefix: &str, e: &EnumDescriptorProto) {
        let name = format!("{prefix}.{}", e.name.as_deref().unwrap_or_default());
        let values = e.value.iter().filter_map(|v| v.number).collect();
        self.enums.insert(name, values);
    }

    fn add_message(&mut self, prefix: &str, m: &DescriptorProto) {
        let name = format!("{prefix}.{}", m.name.as_deref().unwrap_or_default());
        for e in &m.enum_type {
            self.add_enum(&name, e);
        }
        for nested in &m.nested_type {
            self.add_message(&name, nested);
        }
        self.messages.insert(name, m.clone());
    }

    /// Every message's full name, sorted (map entries included: they are messages too).
    pub fn message_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.messages.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn service(&self, full_name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.full_name == full_name)
    }

    /// Fields of a message by name, for suites that build requests from descriptors.
    pub fn field(&self, message: &str, name: &str) -> Option<&FieldDescriptorProto> {
        self.messages
            .get(message)?
            .field
            .iter()
            .find(|f| f.name.as_deref() == Some(name))
    }

    /// Valid protobuf bytes of the message `full_name` (empty for an unknown name).
    pub fn generate(&self, full_name: &str, entropy: &mut Entropy<'_>) -> Vec<u8> {
        let mut budget = MAX_MESSAGES;
        let mut out = Vec::new();
        self.write_message(full_name, entropy, 0, &mut budget, &mut out);
        out
    }

    fn write_message(
        &self,
        full_name: &str,
        entropy: &mut Entropy<'_>,
        depth: usize,
        budget: &mut usize,
        out: &mut Vec<u8>,
    ) {
        let Some(message) = self.messages.get(full_name) else {
            return;
        };
        for field in &message.field {
            // Most fields are set: a request missing one of its four identifier fields is
            // refused before it reaches anything interesting.
            if entropy.exhausted() || !entropy.chance(220) {
                continue;
            }
            let repeated = field.label == Some(Label::Repeated as i32);
            let count = if repeated { 1 + entropy.below(3) } else { 1 };
            for _ in 0..count {
                self.write_field(field, entropy, depth, budget, out);
            }
        }
    }

    fn write_field(
        &self,
        field: &FieldDescriptorProto,
        entropy: &mut Entropy<'_>,
        depth: usize,
        budget: &mut usize,
        out: &mut Vec<u8>,
    ) {
        let tag = u32::try_from(field.number.unwrap_or(1)).unwrap_or(1);
        let name = field.name.as_deref().unwrap_or_default();
        let type_name = field
            .type_name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('.');
        let kind = field.r#type.and_then(|t| Type::try_from(t).ok());
        match kind {
            Some(Type::Message | Type::Group) => {
                if depth >= MAX_DEPTH || *budget == 0 {
                    return;
                }
                *budget -= 1;
                let mut inner = Vec::new();
                self.write_message(type_name, entropy, depth + 1, budget, &mut inner);
                encode_key(tag, WireType::LengthDelimited, out);
                encode_varint(inner.len() as u64, out);
                out.extend_from_slice(&inner);
            }
            Some(Type::String) => {
                let text = string_for(name, entropy);
                encode_key(tag, WireType::LengthDelimited, out);
                encode_varint(text.len() as u64, out);
                out.extend_from_slice(text.as_bytes());
            }
            Some(Type::Bytes) => {
                let len = entropy.below(12);
                encode_key(tag, WireType::LengthDelimited, out);
                encode_varint(len as u64, out);
                out.extend((0..len).map(|_| entropy.byte()));
            }
            Some(Type::Enum) => {
                let values = self.enums.get(type_name).map_or(&[][..], Vec::as_slice);
                let value = if !values.is_empty() && !entropy.chance(20) {
                    i64::from(*entropy.pick(values))
                } else {
                    number(entropy)
                };
                encode_key(tag, WireType::Varint, out);
                encode_varint(value as u64, out);
            }
            Some(Type::Bool) => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(u64::from(entropy.byte() & 1), out);
            }
            Some(Type::Sint32 | Type::Sint64) => {
                let n = number(entropy);
                encode_key(tag, WireType::Varint, out);
                encode_varint(((n << 1) ^ (n >> 63)) as u64, out);
            }
            Some(Type::Double | Type::Fixed64 | Type::Sfixed64) => {
                let bits = if kind == Some(Type::Double) {
                    entropy.pick(&FLOATS).to_bits()
                } else {
                    number(entropy) as u64
                };
                encode_key(tag, WireType::SixtyFourBit, out);
                out.extend_from_slice(&bits.to_le_bytes());
            }
            Some(Type::Float | Type::Fixed32 | Type::Sfixed32) => {
                let bits = if kind == Some(Type::Float) {
                    (*entropy.pick(&FLOATS) as f32).to_bits()
                } else {
                    number(entropy) as u32
                };
                encode_key(tag, WireType::ThirtyTwoBit, out);
                out.extend_from_slice(&bits.to_le_bytes());
            }
            // int32, int64, uint32, uint64: plain varints (negative int32 as 10 bytes, as
            // protobuf encodes them).
            _ => {
                encode_key(tag, WireType::Varint, out);
                encode_varint(number(entropy) as u64, out);
            }
        }
    }
}

const FLOATS: [f64; 10] = [
    0.0,
    1.0,
    -1.5,
    0.1,
    1e300,
    -0.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
];

/// Small numbers mostly (counts, indexes, sizes), sometimes the extremes.
fn number(entropy: &mut Entropy<'_>) -> i64 {
    match entropy.below(8) {
        0..=3 => entropy.below(4) as i64,
        4 => -1,
        5 => *entropy.pick(&[i64::MAX, i64::MIN, i64::from(i32::MAX), i64::from(i32::MIN)]),
        6 => entropy.below(1000) as i64,
        _ => entropy.u64() as i64,
    }
}

/// A string for the field `name`: its vocabulary mostly, sometimes any text.
fn string_for(name: &str, entropy: &mut Entropy<'_>) -> String {
    let vocabulary: &[&str] = match name {
        // The seeded records' names, mostly; an empty one is refused up front.
        "project" => &["flytesnacks", "flytesnacks", "flytesnacks", "p", ""],
        "domain" => &["development", "development", "staging", "d", ""],
        "version" => &["v1", "v1", "v2", ""],
        "org" => &[""],
        "name" => &["t0", "t1", "wf", "lp", "n0", "x"],
        "node_id" | "id" | "unique_id" | "upstream_node_ids" | "nodes" => {
            &["n0", "n1", "n2", "start-node", "end-node"]
        }
        "var" | "input" | "output" | "key" | "var_name" | "signal_id" => {
            &["a", "o0", "x", "out", "i"]
        }
        "token" => &["", "0", "1", "x"],
        "filters" => &[
            "eq(phase,RUNNING)",
            "eq(name,x)+gte(created_at,2024-01-01T00:00:00Z)",
        ],
        "uri" | "native_url" | "flyte_url" | "input_uri" | "output_uri" => &[
            "s3://bucket/key",
            "flyte://v1/flytesnacks/development/x/n0/i",
            "/tmp/x",
            "file:///etc/hosts",
        ],
        _ => &["", "a", "x", "flytesnacks", "development", "v1", "n0"],
    };
    if !entropy.chance(40) {
        return (*entropy.pick(vocabulary)).to_string();
    }
    match entropy.below(4) {
        0 => "é\u{0}../%2F\u{fffd}🦀".to_string(),
        1 => "a".repeat(entropy.below(300)),
        _ => {
            let len = entropy.below(16);
            let bytes: Vec<u8> = (0..len).map(|_| entropy.byte()).collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    }
}

/// Flips, inserts, deletes or truncates bytes of `bytes`: a nearly valid encoding reaches the
/// decoder's error paths (bad lengths, wire types, varints) deep inside a message.
pub fn mutate(bytes: &mut Vec<u8>, entropy: &mut Entropy<'_>) {
    for _ in 0..1 + entropy.below(4) {
        let at = entropy.below(bytes.len() + 1);
        match entropy.below(4) {
            0 if at < bytes.len() => bytes[at] ^= 1 << entropy.below(8),
            1 => bytes.insert(at, entropy.byte()),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
}

/// Runs `case` on a thread of its own and fails if it takes longer than `limit`: a hang is a
/// finding like a panic is. A panic inside `case` is re-raised with its own message.
pub fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    case: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let _ = tx.send(case());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} took longer than {limit:?}: a hang")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("{what} ended without a result"),
        },
    }
}

/// How many cases a suite runs: `default` (sized for CI: the suites together take a few
/// minutes of CPU in a debug build) unless `ALULA_FUZZ_CASES` asks for more or fewer.
pub fn cases(default: u32) -> u32 {
    std::env::var("ALULA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The proptest configuration of a suite of `default` cases (see [`cases`]).
///
/// The seed is fixed unless `ALULA_FUZZ_SEED` says otherwise (a number, or `random`), so a CI
/// run is reproducible and never fails on a finding that the change under test did not cause;
/// longer runs outside CI use `random`. A failure prints its minimised input and the seed, and
/// is saved beside the suite (`*.proptest-regressions`, committed) to be replayed first.
pub fn config(default: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
    const SEED: u64 = 0x0061_6c75_6c61; // "alula"
    let rng_seed = match std::env::var("ALULA_FUZZ_SEED").ok().as_deref() {
        Some("random") => RngSeed::Random,
        Some(n) => RngSeed::Fixed(n.parse().unwrap_or(SEED)),
        None => RngSeed::Fixed(SEED),
    };
    Config {
        cases: cases(default),
        rng_seed,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        // Shrinking a slow case (an admin call) must not turn a failure into a long stall.
        max_shrink_time: 60_000,
        ..Config::default()
    }
}

/// A small reproducible generator (SplitMix64) for the model-based tests, which draw whole
/// workflows and schedules from one seed and print it on failure.
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}
