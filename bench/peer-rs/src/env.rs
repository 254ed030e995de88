//! The Env delivery of bench/peer/main.go: desired env entries of a policy for one workload, the settings hash,
//! the in-sync check and the server-side apply body. Kept byte-for-byte with the Go peer.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The names `desired_env` renders; the Deployment cache keeps only env entries with these names, since
/// `in_sync` reads nothing else.
pub const ENV_NAMES: [&str; 7] = [
    "POOL_MAX_SIZE",
    "POOL_MIN_IDLE",
    "POOL_ACQUIRE_TIMEOUT_MS",
    "POOL_IDLE_TIMEOUT_MS",
    "POOL_MAX_LIFETIME_MS",
    "POOL_LEAK_DETECTION_THRESHOLD_MS",
    "PGAPPNAME",
];

const SECOND: i64 = 1_000_000_000;

/// desiredEnv of main.go: poolguard's Generic profile, names and units (milliseconds) of the defaults.
/// `pool` is the policy's `spec.pool` (any JSON value, or None when absent).
pub fn desired_env(pool: Option<&Value>, ns: &str, workload: &str) -> [(&'static str, String); 7] {
    let field = |key: &str| pool.and_then(|p| p.as_object()).and_then(|p| p.get(key));
    // unstructured.NestedInt64: found only when the value is an integer (a JSON number without fraction that fits
    // an int64); anything else takes the default.
    let num = |def: i64, key: &str| {
        field(key)
            .and_then(Value::as_i64)
            .unwrap_or(def)
            .to_string()
    };
    // unstructured.NestedString + time.ParseDuration: a string that parses, else the default; then
    // Duration.Milliseconds (truncated toward zero).
    let dur = |def_ns: i64, key: &str| {
        let d = field(key)
            .and_then(Value::as_str)
            .and_then(parse_go_duration)
            .unwrap_or(def_ns);
        (d / 1_000_000).to_string()
    };
    [
        ("POOL_MAX_SIZE", num(10, "maxSize")),
        ("POOL_MIN_IDLE", num(0, "minIdle")),
        (
            "POOL_ACQUIRE_TIMEOUT_MS",
            dur(30 * SECOND, "acquireTimeout"),
        ),
        ("POOL_IDLE_TIMEOUT_MS", dur(600 * SECOND, "idleTimeout")),
        ("POOL_MAX_LIFETIME_MS", dur(1800 * SECOND, "maxLifetime")),
        (
            "POOL_LEAK_DETECTION_THRESHOLD_MS",
            dur(0, "leakDetectionThreshold"),
        ),
        ("PGAPPNAME", format!("{ns}/{workload}")),
    ]
}

/// settingsHash of main.go: the first 16 hex digits of SHA-256 over "NAME=VALUE\n" lines.
pub fn settings_hash(env: &[(&str, String)]) -> String {
    let mut h = Sha256::new();
    for (name, value) in env {
        h.update(name.as_bytes());
        h.update(b"=");
        h.update(value.as_bytes());
        h.update(b"\n");
    }
    let mut s = hex::encode(h.finalize());
    s.truncate(16);
    s
}

/// inSync of main.go: every container has every desired entry with the desired value (an entry without a
/// literal value, e.g. valueFrom, counts as "").
pub fn in_sync(d: &Deployment, env: &[(&str, String)]) -> bool {
    let containers = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    containers.iter().all(|c| {
        let have = c.env.as_deref().unwrap_or_default();
        env.iter().all(|(name, value)| {
            // Go builds a map, so the last entry of a repeated name wins.
            have.iter()
                .rev()
                .find(|e| e.name == *name)
                .is_some_and(|e| e.value.as_deref().unwrap_or_default() == value)
        })
    })
}

/// The apply body of main.go. serde_json's default map is ordered by key, as Go's encoding/json orders map
/// keys, so the serialized body is the same bytes.
pub fn apply_body(
    d: &Deployment,
    ns: &str,
    name: &str,
    policy: &str,
    env: &[(&str, String)],
) -> Value {
    let entries: Vec<Value> = env
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    let containers: Vec<Value> = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| json!({"name": c.name, "env": entries}))
        .collect();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "annotations": {"poolguard.dev/policy": policy},
        },
        "spec": {"template": {
            "metadata": {"annotations": {"poolguard.dev/settings-hash": settings_hash(env)}},
            "spec": {"containers": containers},
        }},
    })
}

/// unstructured.NestedStringMap of spec.selector.matchLabels (`selector` is spec.selector): None when absent, not
/// an object, or any value is not a string (the Go peer returns without doing anything in all three cases, and
/// when the map is empty).
pub fn match_labels(selector: Option<&Value>) -> Option<&Map<String, Value>> {
    let m = selector?.get("matchLabels")?.as_object()?;
    if m.values().all(Value::is_string) {
        Some(m)
    } else {
        None
    }
}

/// Go's time.ParseDuration, in nanoseconds: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns, us, µs, μs, ms, s,
/// m, h; "0" alone needs no unit. None where Go returns an error.
pub fn parse_go_duration(orig: &str) -> Option<i64> {
    const LIMIT: u64 = 1 << 63;
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut d: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return None;
        }
        // leadingInt
        let before = s.len();
        let mut v: u64 = 0;
        let mut i = 0;
        while i < s.len() && s[i].is_ascii_digit() {
            if v > LIMIT / 10 {
                return None;
            }
            v = v * 10 + u64::from(s[i] - b'0');
            if v > LIMIT {
                return None;
            }
            i += 1;
        }
        s = &s[i..];
        let pre = before != s.len();
        // leadingFraction
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let mut overflow = false;
            let mut i = 0;
            while i < s.len() && s[i].is_ascii_digit() {
                if !overflow {
                    if f > (LIMIT - 1) / 10 {
                        overflow = true;
                    } else {
                        let y = f * 10 + u64::from(s[i] - b'0');
                        if y > LIMIT {
                            overflow = true;
                        } else {
                            f = y;
                            scale *= 10.0;
                        }
                    }
                }
                i += 1;
            }
            s = &s[i..];
            post = before != s.len();
        }
        if !pre && !post {
            return None;
        }
        let mut i = 0;
        while i < s.len() && !(s[i] == b'.' || s[i].is_ascii_digit()) {
            i += 1;
        }
        if i == 0 {
            return None;
        }
        let unit: u64 = match &s[..i] {
            b"ns" => 1,
            b"us" => 1_000,
            u if u == "µs".as_bytes() || u == "μs".as_bytes() => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => return None,
        };
        s = &s[i..];
        if v > LIMIT / unit {
            return None;
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return None;
            }
        }
        d += v;
        if d > LIMIT {
            return None;
        }
    }
    if neg {
        return Some((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return None;
    }
    Some(d as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_go() {
        let ms = |s: &str| parse_go_duration(s).map(|d| d / 1_000_000);
        assert_eq!(ms("30s"), Some(30_000));
        assert_eq!(ms("10m"), Some(600_000));
        assert_eq!(ms("1h"), Some(3_600_000));
        assert_eq!(ms("500ms"), Some(500));
        assert_eq!(ms("1h30m"), Some(5_400_000));
        assert_eq!(ms("1.5s"), Some(1_500));
        assert_eq!(ms(".5s"), Some(500));
        assert_eq!(ms("1500us"), Some(1));
        assert_eq!(ms("1500µs"), Some(1));
        assert_eq!(ms("-2s"), Some(-2_000));
        assert_eq!(ms("0"), Some(0));
        assert_eq!(ms("+0"), Some(0));
        assert_eq!(ms("0s"), Some(0));
        assert_eq!(ms("999999ns"), Some(0));
        assert_eq!(ms(""), None);
        assert_eq!(ms("10"), None);
        assert_eq!(ms("s"), None);
        assert_eq!(ms("."), None);
        assert_eq!(ms("1d"), None);
        assert_eq!(ms("3000000h"), None);
        assert_eq!(
            parse_go_duration("2562047h47m16.854775807s"),
            Some(i64::MAX)
        );
        assert_eq!(
            parse_go_duration("-2562047h47m16.854775808s"),
            Some(i64::MIN)
        );
    }

    #[test]
    fn env_and_body_as_go() {
        let pool = json!({"maxSize": 20, "minIdle": 2, "idleTimeout": "5m", "leakDetectionThreshold": "bad"});
        let env = desired_env(Some(&pool), "ns", "w1");
        let got: Vec<String> = env.iter().map(|(n, v)| format!("{n}={v}")).collect();
        assert_eq!(
            got,
            [
                "POOL_MAX_SIZE=20",
                "POOL_MIN_IDLE=2",
                "POOL_ACQUIRE_TIMEOUT_MS=30000",
                "POOL_IDLE_TIMEOUT_MS=300000",
                "POOL_MAX_LIFETIME_MS=1800000",
                "POOL_LEAK_DETECTION_THRESHOLD_MS=0",
                "PGAPPNAME=ns/w1"
            ]
        );
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "w1", "namespace": "ns"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "app"}, {"name": "side"}]}}}
        }))
        .unwrap();
        assert!(!in_sync(&d, &env));
        let body = serde_json::to_string(&apply_body(&d, "ns", "w1", "p", &env)).unwrap();
        let hash = settings_hash(&env);
        let entries = env
            .iter()
            .map(|(n, v)| format!(r#"{{"name":"{n}","value":"{v}"}}"#))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            body,
            format!(
                r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"annotations":{{"poolguard.dev/policy":"p"}},"name":"w1","namespace":"ns"}},"spec":{{"template":{{"metadata":{{"annotations":{{"poolguard.dev/settings-hash":"{hash}"}}}},"spec":{{"containers":[{{"env":[{entries}],"name":"app"}},{{"env":[{entries}],"name":"side"}}]}}}}}}}}"#
            )
        );
        let synced: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "w1", "namespace": "ns"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [
                {"name": "app", "env": env.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>()}
            ]}}}
        }))
        .unwrap();
        assert!(in_sync(&synced, &env));
    }

    #[test]
    fn hash_is_sha256_prefix() {
        // printf 'A=1\n' | sha256sum
        assert_eq!(settings_hash(&[("A", "1".to_string())]), "91d6a3d55e9fea79");
    }
}
