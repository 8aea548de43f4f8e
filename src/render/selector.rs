//! Label and annotation selectors of patch targets, in the syntax of Kubernetes
//! (`labels.Parse`, as kustomize reads them): comma-separated requirements, each one of
//! `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (a,b)`,
//! `key notin (a,b)`, `key>1`, `key<1`. An empty selector matches everything.

use std::collections::BTreeSet;

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Exists,
    NotExists,
    Equals(String),
    NotEquals(String),
    In(BTreeSet<String>),
    NotIn(BTreeSet<String>),
    Greater(i64),
    Less(i64),
}

/// A parsed selector: all requirements must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector(Vec<(String, Op)>);

impl Selector {
    /// Parses a selector; the error says what is wrong, for the patch's message.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut reqs = vec![];
        for term in split_terms(s)? {
            let term = term.trim();
            if term.is_empty() {
                return Err(format!("{s:?}: an empty requirement"));
            }
            reqs.push(requirement(term).map_err(|why| format!("{s:?}: {why}"))?);
        }
        Ok(Selector(reqs))
    }

    /// Whether a map of labels (or annotations; missing or not a map: none) matches.
    pub fn matches(&self, map: &Value) -> bool {
        let get = |k: &str| map.get(k).and_then(Value::as_str);
        self.0.iter().all(|(key, op)| {
            let v = get(key);
            match op {
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Equals(x) => v == Some(x.as_str()),
                Op::NotEquals(x) => v != Some(x.as_str()),
                Op::In(set) => v.is_some_and(|v| set.contains(v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
                Op::Greater(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Less(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

/// The requirements of a selector: split at commas outside parentheses.
fn split_terms(s: &str) -> Result<Vec<&str>, String> {
    if s.trim().is_empty() {
        return Ok(vec![]);
    }
    let (mut terms, mut depth, mut start) = (vec![], 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' if depth == 0 => depth = 1,
            '(' => return Err(format!("{s:?}: nested parentheses")),
            ')' if depth == 1 => depth = 0,
            ')' => return Err(format!("{s:?}: a ')' without '('")),
            ',' if depth == 0 => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("{s:?}: a '(' without ')'"));
    }
    terms.push(&s[start..]);
    Ok(terms)
}

fn valid_key(k: &str) -> Result<String, String> {
    let ok = !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(k.to_string())
    } else {
        Err(format!("{k:?} is not a label key"))
    }
}

fn valid_value(v: &str) -> Result<String, String> {
    let v = v.trim();
    let ok = v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(v.to_string())
    } else {
        Err(format!("{v:?} is not a label value"))
    }
}

fn set(rest: &str) -> Result<BTreeSet<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected a set in parentheses, found {:?}", rest.trim()))?;
    inner.split(',').map(valid_value).collect()
}

fn requirement(term: &str) -> Result<(String, Op), String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok((valid_key(key.trim())?, Op::NotExists));
    }
    for (sym, make) in [
        ("!=", Op::NotEquals as fn(String) -> Op),
        ("==", Op::Equals),
        ("=", Op::Equals),
    ] {
        if let Some((k, v)) = term.split_once(sym) {
            return Ok((valid_key(k.trim())?, make(valid_value(v)?)));
        }
    }
    for (sym, greater) in [(">", true), ("<", false)] {
        if let Some((k, v)) = term.split_once(sym) {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| format!("{sym} needs an integer, found {:?}", v.trim()))?;
            let op = if greater { Op::Greater(n) } else { Op::Less(n) };
            return Ok((valid_key(k.trim())?, op));
        }
    }
    let mut words = term.splitn(2, char::is_whitespace);
    let key = valid_key(words.next().unwrap_or_default().trim())?;
    let rest = words.next().unwrap_or_default().trim_start();
    if rest.is_empty() {
        return Ok((key, Op::Exists));
    }
    if let Some(r) = rest.strip_prefix("notin") {
        return Ok((key, Op::NotIn(set(r)?)));
    }
    if let Some(r) = rest.strip_prefix("in") {
        return Ok((key, Op::In(set(r)?)));
    }
    Err(format!("unknown operator in {term:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_based_and_equality_requirements_match_as_kubernetes_does() {
        let labels = json!({"app.kubernetes.io/name": "api", "tier": "back", "n": "5"});
        let yes = [
            "",
            "tier",
            "!missing",
            "tier=back",
            "tier==back",
            "tier!=front",
            "missing!=x",
            "app.kubernetes.io/name in (api, web)",
            "app.kubernetes.io/name in (api)",
            "tier notin (front)",
            "missing notin (a)",
            "n>4",
            "n<6",
            "tier in (back),app.kubernetes.io/name,!x",
        ];
        for s in yes {
            assert!(Selector::parse(s).unwrap().matches(&labels), "{s}");
        }
        let no = [
            "missing",
            "!tier",
            "tier=front",
            "tier!=back",
            "tier in (front)",
            "missing in (a)",
            "tier notin (back,x)",
            "n>5",
            "tier in (back),!tier",
        ];
        for s in no {
            assert!(!Selector::parse(s).unwrap().matches(&labels), "{s}");
        }
        assert!(
            Selector::parse("tier")
                .unwrap()
                .matches(&json!({"tier": ""}))
        );
        assert!(!Selector::parse("tier").unwrap().matches(&Value::Null));
    }

    #[test]
    fn malformed_selectors_are_refused() {
        for s in [
            "tier in (a",
            "tier in a",
            "tier)",
            "a,,b",
            "tier ~ x",
            "n>x",
            "bad key=x",
            "tier in ((a))",
            "k=v v",
        ] {
            assert!(Selector::parse(s).is_err(), "{s}");
        }
    }
}
