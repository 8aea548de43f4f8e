//! Bounds on what one Release may render to, so that a single Release cannot exhaust the
//! controller's memory (issue: "one Release can OOM the controller").
//!
//! Sizes are measured as compact JSON (no allocation: the bytes are counted, not written)
//! and checked at each step that can grow them: the Release's spec (it is recorded in the
//! folder as `.tumbler/release.yaml`), the source's objects, each patch before it is applied
//! (its size times the objects it targets) and each JSON6902 `copy` before it runs. The
//! files themselves are written into a buffer that refuses to pass the limit, so the final
//! figure is the real one.
//!
//! Patches are the only YAML text the render parses; they are read with a budget on alias
//! replays and nesting, and into values whose total size is counted as they are built, so a
//! "billion laughs" document stops long before it costs memory.

use std::cell::Cell;
use std::fmt;
use std::io;

use serde::Serialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{MAX_DEPTH, MAX_OBJECTS, MAX_RENDERED_BYTES, RenderError};

/// Alias replays one YAML patch may make (a replay is one parser event copied by a `*ref`).
const MAX_ALIAS_EVENTS: usize = 100_000;
/// `*ref`s one YAML patch may hold.
const MAX_ALIASES: usize = 10_000;
/// Collections nested inside each other in one YAML patch. Lower than [`MAX_DEPTH`]: the YAML
/// parser recurses once per level with large frames (about 24 KiB a level in a debug build),
/// and a stack overflow would abort the controller; a patch rarely needs 20 levels.
pub(crate) const MAX_YAML_DEPTH: usize = 64;

/// The limit on the files, for messages.
pub(crate) fn bytes_limit() -> String {
    format!(
        "{MAX_RENDERED_BYTES} bytes ({} MiB) for all files of an app folder",
        MAX_RENDERED_BYTES / (1024 * 1024)
    )
}

pub(crate) fn too_large(what: String) -> RenderError {
    RenderError::TooLarge {
        what,
        limit: bytes_limit(),
    }
}

pub(crate) fn too_many_objects(count: usize) -> RenderError {
    RenderError::TooLarge {
        what: format!("the Release's {count} objects"),
        limit: format!("{MAX_OBJECTS} objects per Release"),
    }
}

/// Size of `v` as compact JSON, or `None` as soon as it passes `limit`.
pub(crate) fn json_len<T: Serialize + ?Sized>(v: &T, limit: usize) -> Option<usize> {
    struct Count {
        n: usize,
        limit: usize,
    }
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.n = self.n.saturating_add(buf.len());
            if self.n > self.limit {
                return Err(io::Error::other("over the limit"));
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count { n: 0, limit };
    // Values and the API types only fail to serialise when the writer refuses.
    serde_json::to_writer(&mut count, v).ok()?;
    Some(count.n)
}

/// Whether `v` nests more than `max` arrays and objects inside each other. Recurses at most
/// `max + 1` levels whatever the depth of `v`.
pub(crate) fn deeper_than(v: &Value, max: usize) -> bool {
    match v {
        Value::Array(a) => max == 0 || a.iter().any(|i| deeper_than(i, max - 1)),
        Value::Object(m) => max == 0 || m.values().any(|i| deeper_than(i, max - 1)),
        _ => false,
    }
}

/// What the app folder is estimated to weigh: the Release record plus each object.
pub(crate) struct Weights {
    objects: Vec<usize>,
    total: usize,
}

impl Weights {
    /// Measures the objects; refuses more than [`MAX_OBJECTS`] or more than
    /// [`MAX_RENDERED_BYTES`] in all.
    pub fn new(record: usize, objects: &[Value]) -> Result<Self, RenderError> {
        if objects.len() > MAX_OBJECTS {
            return Err(too_many_objects(objects.len()));
        }
        let mut w = Weights {
            objects: Vec::with_capacity(objects.len()),
            total: record,
        };
        for obj in objects {
            let size = json_len(obj, w.left()).ok_or_else(|| {
                too_large(format!(
                    "the Release's objects (with the Release record, more than {MAX_RENDERED_BYTES} bytes)"
                ))
            })?;
            w.objects.push(size);
            w.total += size;
        }
        Ok(w)
    }

    /// Bytes left under the limit.
    pub fn left(&self) -> usize {
        MAX_RENDERED_BYTES.saturating_sub(self.total)
    }

    /// Refuses, with `what` and the estimate, if `extra` more bytes would pass the limit.
    pub fn check(&self, extra: usize, what: impl FnOnce() -> String) -> Result<(), RenderError> {
        if extra > self.left() {
            return Err(too_large(format!(
                "{} (about {} bytes with the rest of the app folder)",
                what(),
                self.total.saturating_add(extra)
            )));
        }
        Ok(())
    }

    /// Measures object `i` again after it changed.
    pub fn remeasure(
        &mut self,
        i: usize,
        obj: &Value,
        what: impl FnOnce() -> String,
    ) -> Result<(), RenderError> {
        let others = self.total - self.objects[i];
        let limit = MAX_RENDERED_BYTES.saturating_sub(others);
        let size = json_len(obj, limit).ok_or_else(|| {
            too_large(format!(
                "{} (more than {MAX_RENDERED_BYTES} bytes with the rest of the app folder)",
                what()
            ))
        })?;
        self.objects[i] = size;
        self.total = others + size;
        Ok(())
    }
}

/// Why a YAML text was not read.
#[derive(Debug)]
pub(crate) enum YamlRefusal {
    /// Its values, aliases expanded, pass [`MAX_RENDERED_BYTES`].
    TooLarge,
    /// Not valid YAML, or over the parser's budget; a complete sentence for the user.
    Invalid(String),
}

/// Reads a YAML document written by a user into a JSON value, within limits: at most
/// [`MAX_YAML_DEPTH`] nested collections, at most `MAX_ALIASES` aliases replaying at most
/// `MAX_ALIAS_EVENTS` events, and at most [`MAX_RENDERED_BYTES`] of values once aliases are
/// expanded (counted while the value is built, so the expansion never happens in memory).
pub(crate) fn parse_yaml(text: &str) -> Result<Value, YamlRefusal> {
    if text.len() > MAX_RENDERED_BYTES {
        return Err(YamlRefusal::TooLarge);
    }
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            // One more than ours, so that our own check (which also sees what aliases
            // replay) gives the message.
            max_depth: MAX_YAML_DEPTH + 1,
            max_aliases: MAX_ALIASES,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: MAX_ALIAS_EVENTS,
        },
    };
    let meter = Meter {
        left: Cell::new(MAX_RENDERED_BYTES),
        over: Cell::new(false),
        deep: Cell::new(false),
    };
    let node = Node {
        meter: &meter,
        depth: 0,
    };
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        node.deserialize(de)
    });
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if meter.over.get() => Err(YamlRefusal::TooLarge),
        Err(_) if meter.deep.get() => Err(YamlRefusal::Invalid(format!(
            "nested deeper than {MAX_YAML_DEPTH} levels"
        ))),
        Err(e) => Err(YamlRefusal::Invalid(explain(&e))),
    }
}

fn explain(e: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    let mut root = e;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = root {
        root = error;
    }
    match root {
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. }
        | E::Budget {
            breach:
                B::Aliases { .. }
                | B::AliasAnchorRatio { .. }
                | B::RecordedAnchorEvents { .. }
                | B::RecordedAnchorBytes { .. },
            ..
        } => format!(
            "its YAML anchors and aliases expand too much ({root}); write the repeated parts out"
        ),
        E::Budget {
            breach: B::Depth { .. },
            ..
        } => format!("nested deeper than {MAX_YAML_DEPTH} levels"),
        _ => format!("not valid YAML: {e}"),
    }
}

/// What is left of the size budget while a YAML value is built.
struct Meter {
    left: Cell<usize>,
    over: Cell<bool>,
    deep: Cell<bool>,
}

impl Meter {
    /// Takes `n` bytes (a value's bytes and a little for its node) from the budget.
    fn take<E: de::Error>(&self, n: usize) -> Result<(), E> {
        match self.left.get().checked_sub(n.saturating_add(4)) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => {
                self.over.set(true);
                Err(E::custom(format_args!(
                    "the document expands past {MAX_RENDERED_BYTES} bytes"
                )))
            }
        }
    }

    fn enter<E: de::Error>(&self, depth: usize) -> Result<(), E> {
        if depth >= MAX_YAML_DEPTH {
            self.deep.set(true);
            return Err(E::custom(format_args!(
                "nested deeper than {MAX_YAML_DEPTH} levels"
            )));
        }
        self.take(0)
    }
}

/// One YAML node read into a JSON value, charged to the meter; `depth` collections enclose it.
struct Node<'m> {
    meter: &'m Meter,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.meter.take(4)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.meter.take(8)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.meter.take(8)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        self.meter.take(16)?;
        let n = i64::try_from(v)
            .map(Number::from)
            .or_else(|_| u64::try_from(v).map(Number::from))
            .map_err(|_| E::custom(format_args!("the number {v} is out of range")))?;
        Ok(Value::Number(n))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        self.meter.take(16)?;
        let n = u64::try_from(v)
            .map_err(|_| E::custom(format_args!("the number {v} is out of range")))?;
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.meter.take(8)?;
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.meter.take(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.meter.take(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.meter.take(4)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.meter.enter(self.depth)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Node {
            meter: self.meter,
            depth: self.depth + 1,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.meter.enter(self.depth)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key(self.meter))? {
            let value = map.next_value_seed(Node {
                meter: self.meter,
                depth: self.depth + 1,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key, read as a string (as `serde_json::Value` does) and charged to the meter.
struct Key<'m>(&'m Meter);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.0.take(v.len())?;
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        self.0.take(v.len())?;
        Ok(v)
    }
}

/// Checks a Release before anything is built from it: at most [`MAX_OBJECTS`] raw manifests,
/// none of them and no Helm values nested too deep, and a spec (the folder records it in
/// `.tumbler/release.yaml`) within [`MAX_RENDERED_BYTES`]. Returns the spec's size.
pub(crate) fn check_release(spec: &crate::api::ReleaseSpec) -> Result<usize, RenderError> {
    if let Some(manifests) = &spec.manifests {
        if manifests.len() > MAX_OBJECTS {
            return Err(too_many_objects(manifests.len()));
        }
        if let Some(i) = manifests.iter().position(|m| deeper_than(m, MAX_DEPTH)) {
            return Err(RenderError::InvalidManifest {
                at: format!("spec.manifests[{i}]"),
                why: format!("nests arrays and objects more than {MAX_DEPTH} levels deep"),
            });
        }
    }
    // The HelmRelease holds the values at spec.values, two levels down.
    let values_depth = MAX_DEPTH - 2;
    if let Some(values) = spec.helm.as_ref().and_then(|h| h.values.as_ref())
        && deeper_than(values, values_depth)
    {
        return Err(RenderError::InvalidValues {
            why: format!(
                "nested more than {values_depth} levels deep (the HelmRelease holds them at spec.values, and a rendered object may nest at most {MAX_DEPTH} levels)"
            ),
        });
    }
    json_len(spec, MAX_RENDERED_BYTES).ok_or_else(|| {
        too_large(format!(
            "the Release's spec (more than {MAX_RENDERED_BYTES} bytes; the app folder records it in .tumbler/release.yaml)"
        ))
    })
}
