//! Free-form JSON in a Release (raw manifests, Helm values), read with a bound on nesting.
//!
//! The controller reads every Release in one list; serde_json refuses documents nested
//! deeper than 128 levels, so one Release with a deeper manifest would make the whole list
//! unreadable and stop every Release from being reconciled. The API server accepts such
//! objects (its own limit is 10,000). Here, anything nested deeper than [`MAX_DEPTH`] levels
//! below the field is skipped without recursion and replaced by a marker object, which
//! keeps the object readable; rendering then refuses the Release with a reason.

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Levels of nesting kept in a free-form field.
pub const MAX_DEPTH: usize = 100;

/// The key of the marker object that replaces what was nested too deep.
pub const CUT_MARKER: &str = "tumbler.dev/nested-too-deep";

/// Whether a value holds a part that was cut for being nested too deep.
pub fn was_cut(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key(CUT_MARKER) || m.values().any(was_cut),
        Value::Array(a) => a.iter().any(was_cut),
        _ => false,
    }
}

/// `deserialize_with` for `Option<Vec<Value>>`.
pub fn opt_vec<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Value>>, D::Error> {
    match (Bounded { depth: 0 }).deserialize(d)? {
        Value::Null => Ok(None),
        Value::Array(items) => Ok(Some(items)),
        other => Err(serde::de::Error::custom(format!(
            "expected a list of objects, found {}",
            kind(&other)
        ))),
    }
}

/// `deserialize_with` for `Option<Value>`.
pub fn opt_value<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    match (Bounded { depth: 0 }).deserialize(d)? {
        Value::Null => Ok(None),
        v => Ok(Some(v)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads a value `depth` levels below the field.
struct Bounded {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH + 1 {
            // serde_json skips a value iteratively: no recursion, no limit.
            IgnoredAny::deserialize(d)?;
            let mut marker = Map::new();
            marker.insert(CUT_MARKER.into(), Value::from(MAX_DEPTH as u64));
            return Ok(Value::Object(marker));
        }
        d.deserialize_any(self)
    }
}

use serde::Deserialize;

impl<'de> Visitor<'de> for Bounded {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Bounded {
            depth: self.depth + 1,
        })? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Bounded {
                depth: self.depth + 1,
            })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    fn depth(v: &Value) -> usize {
        match v {
            Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
            Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    #[test]
    fn a_release_nested_far_deeper_than_serde_json_allows_still_reads() {
        // As the API server sends it, inside a list of Releases.
        let deep = nested(10_000);
        let list = format!(
            r#"{{"items":[{{"apiVersion":"tumbler.dev/v1alpha1","kind":"Release","metadata":{{"name":"deep","namespace":"team"}},"spec":{{"environment":"staging","app":"api","version":"1","manifests":[{{"kind":"ConfigMap","data":{deep}}}]}}}},{{"apiVersion":"tumbler.dev/v1alpha1","kind":"Release","metadata":{{"name":"fine","namespace":"team"}},"spec":{{"environment":"staging","app":"web","version":"1","helm":{{"chart":{{"repository":"https://charts.example","name":"web","version":"1.0.0"}},"values":{{"a":{deep}}}}}}}}}]}}"#
        );
        #[derive(serde::Deserialize)]
        struct List {
            items: Vec<crate::api::Release>,
        }
        let list: List = serde_json::from_str(&list).expect("the list reads");
        let manifests = list.items[0].spec.manifests.as_ref().unwrap();
        assert!(was_cut(&manifests[0]));
        assert!(depth(&manifests[0]) <= MAX_DEPTH + 3);
        let values = list.items[1]
            .spec
            .helm
            .as_ref()
            .unwrap()
            .values
            .as_ref()
            .unwrap();
        assert!(was_cut(values));
    }

    #[test]
    fn values_within_the_bound_are_kept_whole() {
        let text = format!(r#"[{{"a": {}}}]"#, nested(90));
        let v = opt_vec(&mut serde_json::Deserializer::from_str(&text))
            .unwrap()
            .unwrap();
        assert!(!was_cut(&v[0]));
        assert_eq!(
            v[0],
            serde_json::from_str::<Value>(&format!(r#"{{"a": {}}}"#, nested(90))).unwrap()
        );
        assert_eq!(
            opt_value(&mut serde_json::Deserializer::from_str("null")).unwrap(),
            None
        );
    }
}
