//! Configuration from environment variables, with the names of the NestJS original.

use std::time::Duration;

use super::CacheBuilder;
use crate::error::BuildError;

impl CacheBuilder {
    /// A builder configured from the environment:
    ///
    /// | variable | meaning | default |
    /// |---|---|---|
    /// | `REDIS_URL` | use Redis at this URL | in-process store |
    /// | `REDIS_TOKEN` | with an `https://` `REDIS_URL` (the REST endpoint of an Upstash database): its token; the cache connects to `rediss://default:REDIS_TOKEN@host:6379`, the same database over the Redis protocol | |
    /// | `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`, `REDIS_DB` | the same, in parts (when `REDIS_URL` is unset) | |
    /// | `REDIS_CLUSTER_NODES` | use the Redis Cluster of these comma-separated nodes (`host:port` or URLs; `REDIS_PASSWORD` applies to `host:port` ones) | |
    /// | `REDIS_TLS` | `true`: connect with TLS (`rediss://`) where the URL is built from parts | `false` |
    /// | `CACHE_REDIS_TLS_CA_FILE` | PEM file of the CA that signs the server certificate | system roots |
    /// | `CACHE_PREFIX` | key prefix | none |
    /// | `CACHE_DEFAULT_TTL` | seconds | 3600 |
    /// | `CACHE_COMPRESSION_THRESHOLD` | bytes; `0` compresses everything | 1024 |
    /// | `CACHE_ENABLE_COMPRESSION` | `false` disables compression | `true` |
    /// | `CACHE_COMPRESSION_ALGORITHM` | `lz4` or `deflate` | `lz4` |
    /// | `CACHE_VALUE_SHAPES` | `false`: entries record no value shape, and none is checked | `true` |
    /// | `CACHE_COMPRESSION_LEVEL` | deflate's level, 0–9 | 6 |
    /// | `CACHE_MAX_ENTRY_BYTES` | bytes | 1048576 |
    /// | `CACHE_MAX_SIZE_MB` | in-process store budget, MiB | 128 |
    /// | `CACHE_L1_MAX_SIZE_MB` | with Redis: the in-process L1 tier's budget, MiB; `0` turns it off | off |
    /// | `CACHE_L1_TTL` | with Redis: how long L1 keeps a copy at most (capped by its freshness), seconds | 30 |
    /// | `CACHE_L1_BOUND` | the L1 propagation bound, ms | 500 |
    /// | `CACHE_COMMAND_TIMEOUT` | Redis command timeout, ms | 250 |
    /// | `CACHE_CONNECTION_TIMEOUT` | Redis connect timeout, ms | 1000 |
    /// | `CACHE_CIRCUIT_BREAKER_THRESHOLD` | consecutive failures that open the breaker | 5 |
    /// | `CACHE_CIRCUIT_BREAKER_TIMEOUT` | ms the breaker stays open before a probe | 2000 |
    /// | `CACHE_DISABLED` | `true`/`1` caches nothing | `false` |
    /// | `CACHE_ALLOW_PLAINTEXT_PHI` | `true`: protected functions may reach a Redis on another machine without TLS (logged as a warning) | `false` |
    ///
    /// A variable with a value of the wrong form is an error naming it; nothing is guessed.
    /// `REDIS_TOKEN` without an `https://` `REDIS_URL`, or the reverse, is an error too. The
    /// token never appears in an error, a log or a `Debug` output.
    pub fn from_env() -> Result<CacheBuilder, BuildError> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with another source of variables (for tests and for
    /// configuration systems that are not the process environment).
    pub fn from_env_with(
        var: impl Fn(&'static str) -> Option<String>,
    ) -> Result<CacheBuilder, BuildError> {
        let get = |name: &'static str| var(name).filter(|v| !v.trim().is_empty());
        let mut b = CacheBuilder::new();

        let scheme = match parse_bool(&get, "REDIS_TLS")? {
            Some(true) => "rediss",
            _ => "redis",
        };
        let auth = get("REDIS_PASSWORD")
            .map(|p| format!(":{}@", url_escape(&p)))
            .unwrap_or_default();
        // REDIS_TLS=true with a URL that does not ask for TLS would be plain text the user
        // did not want: refuse it, naming the variables.
        let plain_url = |url: &str| {
            scheme == "rediss" && !url.trim().to_ascii_lowercase().starts_with("rediss://")
        };
        let url = match (get("REDIS_URL"), get("REDIS_TOKEN")) {
            (Some(url), token) if is_https(&url) => Some(upstash(url.trim(), token.as_deref())?),
            (url, Some(_)) => {
                return Err(BuildError::UnusedRedisToken {
                    redis_url: url.map_or_else(
                        || "unset".to_owned(),
                        |u| format!("{:?}", crate::store::redact_url(u.trim())),
                    ),
                });
            }
            (url, None) => url,
        };
        if let Some(url) = url {
            if plain_url(&url) {
                return Err(BuildError::InvalidEnv {
                    name: "REDIS_URL",
                    value: crate::store::redact_url(&url),
                    expected: "a rediss:// URL, since REDIS_TLS is true",
                });
            }
            b = b.redis(url.trim());
        } else if let Some(nodes) = get("REDIS_CLUSTER_NODES") {
            let nodes: Vec<String> = nodes
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| match n.contains("://") {
                    true => n.to_owned(),
                    false => format!("{scheme}://{auth}{n}"),
                })
                .collect();
            if let Some(plain) = nodes.iter().find(|n| plain_url(n)) {
                return Err(BuildError::InvalidEnv {
                    name: "REDIS_CLUSTER_NODES",
                    value: crate::store::redact_url(plain),
                    expected: "rediss:// URLs (or host:port), since REDIS_TLS is true",
                });
            }
            if nodes.is_empty() {
                return Err(BuildError::InvalidEnv {
                    name: "REDIS_CLUSTER_NODES",
                    value: String::new(),
                    expected: "comma-separated host:port or redis:// URLs",
                });
            }
            b = b.redis_cluster(nodes);
        } else if let Some(host) = get("REDIS_HOST") {
            let port = parse::<u16>(&get, "REDIS_PORT", "a port number")?.unwrap_or(6379);
            let db = parse::<u32>(&get, "REDIS_DB", "a database number")?.unwrap_or(0);
            b = b.redis(format!("{scheme}://{auth}{}:{port}/{db}", host.trim()));
        }
        if let Some(path) = get("CACHE_REDIS_TLS_CA_FILE") {
            let pem = std::fs::read(path.trim()).map_err(|e| BuildError::InvalidEnv {
                name: "CACHE_REDIS_TLS_CA_FILE",
                value: format!("{path} ({e})"),
                expected: "the path of a readable PEM file",
            })?;
            b = b.redis_tls_ca(pem);
        }
        if let Some(prefix) = get("CACHE_PREFIX") {
            b = b.prefix(prefix);
        }
        if let Some(s) = parse::<u64>(&get, "CACHE_DEFAULT_TTL", "a number of seconds")? {
            b = b.default_ttl(Duration::from_secs(s));
        }
        if let Some(n) = parse::<usize>(&get, "CACHE_COMPRESSION_THRESHOLD", "a number of bytes")? {
            b = b.compression_threshold(Some(n));
        }
        if parse_bool(&get, "CACHE_ENABLE_COMPRESSION")? == Some(false) {
            b = b.compression_threshold(None);
        }
        if let Some(on) = parse_bool(&get, "CACHE_VALUE_SHAPES")? {
            b = b.value_shapes(on);
        }
        if let Some(c) = parse(&get, "CACHE_COMPRESSION_ALGORITHM", "lz4 or deflate")? {
            b = b.compression(c);
        }
        if let Some(l) = parse::<u32>(&get, "CACHE_COMPRESSION_LEVEL", "a level from 0 to 9")? {
            b = b.compression_level(l);
        }
        if let Some(n) = parse::<usize>(&get, "CACHE_MAX_ENTRY_BYTES", "a number of bytes")? {
            b = b.max_entry_bytes(n);
        }
        if let Some(mb) = parse::<u64>(&get, "CACHE_MAX_SIZE_MB", "a number of MiB")? {
            b = b.memory_capacity(mb.saturating_mul(1024 * 1024));
        }
        if let Some(mb) = parse::<u64>(&get, "CACHE_L1_MAX_SIZE_MB", "a number of MiB")? {
            b = b.l1_max_bytes(mb.saturating_mul(1024 * 1024));
        }
        if let Some(s) = parse::<u64>(&get, "CACHE_L1_TTL", "a number of seconds")? {
            if s == 0 {
                return Err(BuildError::InvalidEnv {
                    name: "CACHE_L1_TTL",
                    value: "0".into(),
                    expected: "a number of seconds above 0 (CACHE_L1_MAX_SIZE_MB=0 turns L1 off)",
                });
            }
            b = b.l1_ttl(Duration::from_secs(s));
        }
        if let Some(ms) = parse::<u64>(&get, "CACHE_L1_BOUND", "a number of milliseconds")? {
            b = b.l1_propagation_bound(Duration::from_millis(ms));
        }
        if let Some(ms) = parse::<u64>(&get, "CACHE_COMMAND_TIMEOUT", "a number of milliseconds")? {
            b = b.command_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) =
            parse::<u64>(&get, "CACHE_CONNECTION_TIMEOUT", "a number of milliseconds")?
        {
            b = b.connection_timeout(Duration::from_millis(ms));
        }
        let threshold = parse::<u32>(
            &get,
            "CACHE_CIRCUIT_BREAKER_THRESHOLD",
            "a number of failures",
        )?;
        let cool_down = parse::<u64>(
            &get,
            "CACHE_CIRCUIT_BREAKER_TIMEOUT",
            "a number of milliseconds",
        )?;
        if threshold.is_some() || cool_down.is_some() {
            let d = crate::store::RedisStoreConfig::default();
            b = b.circuit_breaker(
                threshold.unwrap_or(d.breaker_threshold),
                cool_down.map_or(d.breaker_cool_down, Duration::from_millis),
            );
        }
        if let Some(allow) = parse_bool(&get, "CACHE_ALLOW_PLAINTEXT_PHI")? {
            b = b.allow_plaintext_phi(allow);
        }
        if let Some(off) = parse_bool(&get, "CACHE_DISABLED")? {
            b = b.disabled(off);
        }
        for hook in ENV_HOOKS {
            b = hook(b, &get)?;
        }
        Ok(b)
    }
}

/// Extensions that read their own variables in [`CacheBuilder::from_env`]; `cache-healthcare`
/// registers one for its keys.
#[doc(hidden)]
#[linkme::distributed_slice]
pub static ENV_HOOKS: [EnvHook];

/// An extension of [`CacheBuilder::from_env`]: reads its variables through the getter.
#[doc(hidden)]
pub type EnvHook =
    fn(CacheBuilder, &dyn Fn(&'static str) -> Option<String>) -> Result<CacheBuilder, BuildError>;

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
    expected: &'static str,
) -> Result<Option<T>, BuildError> {
    match get(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| BuildError::InvalidEnv {
                name,
                value: v,
                expected,
            }),
    }
}

fn parse_bool(
    get: &impl Fn(&'static str) -> Option<String>,
    name: &'static str,
) -> Result<Option<bool>, BuildError> {
    match get(name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => Ok(Some(true)),
            "0" | "false" | "no" | "off" => Ok(Some(false)),
            _ => Err(BuildError::InvalidEnv {
                name,
                value: v,
                expected: "true or false",
            }),
        },
    }
}

fn is_https(url: &str) -> bool {
    url.trim()
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
}

/// The Redis endpoint of the Upstash database whose REST endpoint is `rest_url`: Upstash serves
/// the Redis protocol on port 6379 of the same host, over TLS, to the user `default` with the
/// REST token as its password.
fn upstash(rest_url: &str, token: Option<&str>) -> Result<String, BuildError> {
    let host = rest_host(rest_url).ok_or_else(|| BuildError::InvalidEnv {
        name: "REDIS_URL",
        value: crate::store::redact_url(rest_url),
        expected: "an Upstash REST URL (https://<database>.upstash.io) or a redis:// URL",
    })?;
    let Some(token) = token else {
        return Err(BuildError::MissingRedisToken {
            url: crate::store::redact_url(rest_url),
            host: host.to_owned(),
        });
    };
    Ok(format!(
        "rediss://default:{}@{host}:6379",
        url_escape(token.trim())
    ))
}

/// The host of `https://host[:port][/]`; `None` for anything more (credentials, a path, a
/// query), which a REST endpoint's URL never has and which cannot be carried over to Redis.
fn rest_host(url: &str) -> Option<&str> {
    let authority = url.get(8..)?;
    let authority = authority.strip_suffix('/').unwrap_or(authority);
    if authority.contains(['/', '?', '#', '@']) {
        return None;
    }
    // The REST endpoint's port (443) says nothing of the Redis one.
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    (!host.is_empty()).then_some(host)
}

/// Percent-escapes a password for a URL's userinfo.
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::error::BuildError;

    fn env(pairs: &[(&'static str, &str)]) -> Result<crate::Cache, BuildError> {
        let map: HashMap<&str, String> = pairs.iter().map(|(k, v)| (*k, v.to_string())).collect();
        CacheBuilder::from_env_with(|n| map.get(n).cloned())?.build()
    }

    #[test]
    fn reads_settings() {
        let c = env(&[("CACHE_PREFIX", "app"), ("CACHE_DEFAULT_TTL", "60")]).unwrap();
        assert_eq!(c.prefix(), "app:");
        assert_eq!(c.default_ttl(), Duration::from_secs(60));
        assert!(!c.is_disabled());
        assert!(env(&[("CACHE_DISABLED", "true")]).unwrap().is_disabled());
    }

    #[test]
    fn names_the_bad_variable() {
        let err = env(&[("CACHE_DEFAULT_TTL", "5 minutes")]).unwrap_err();
        assert!(
            err.to_string().contains("CACHE_DEFAULT_TTL=\"5 minutes\""),
            "{err}"
        );
        let err = env(&[("CACHE_DISABLED", "maybe")]).unwrap_err();
        assert!(err.to_string().contains("CACHE_DISABLED"), "{err}");
        let err = env(&[("CACHE_COMPRESSION_LEVEL", "12")]).unwrap_err();
        assert!(err.to_string().contains("compression_level"), "{err}");
        let err = env(&[("CACHE_COMPRESSION_ALGORITHM", "zip")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("CACHE_COMPRESSION_ALGORITHM=\"zip\""),
            "{err}"
        );
        assert!(env(&[("CACHE_COMPRESSION_ALGORITHM", "Deflate")]).is_ok());
    }

    #[test]
    fn rejects_a_bad_redis_url_without_leaking_the_password() {
        let err = env(&[("REDIS_URL", "http://user:hunter2@host")]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, BuildError::InvalidRedisUrl { .. }), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("redis://"), "{msg}");
    }

    #[test]
    fn builds_a_url_from_parts() {
        let c = env(&[
            ("REDIS_HOST", "10.0.0.1"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "p@ss"),
        ]);
        let dbg = format!("{:?}", c.unwrap());
        assert!(dbg.contains("redis://:***@10.0.0.1:6380/0"), "{dbg}");
        assert!(env(&[("REDIS_HOST", "h"), ("REDIS_PORT", "x")]).is_err());
    }

    #[test]
    fn reads_cluster_nodes() {
        let c = env(&[
            ("REDIS_CLUSTER_NODES", "10.0.0.1:7000, 10.0.0.2:7001,"),
            ("REDIS_PASSWORD", "secret"),
        ])
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(
            dbg.contains("cluster redis://:***@10.0.0.1:7000,redis://:***@10.0.0.2:7001"),
            "{dbg}"
        );
        assert!(!dbg.contains("secret"), "{dbg}");
        // Nodes of one cluster share their credentials; a mix is refused, naming the cause.
        let err = env(&[(
            "REDIS_CLUSTER_NODES",
            "redis://:a@10.0.0.1:7000,redis://:b@10.0.0.2:7000",
        )])
        .unwrap_err();
        assert!(err.to_string().contains("different password"), "{err}");
        let err = env(&[("REDIS_CLUSTER_NODES", " , ")]).unwrap_err();
        assert!(err.to_string().contains("REDIS_CLUSTER_NODES"), "{err}");
    }

    #[test]
    fn tls_with_a_plain_url_is_refused() {
        let err = env(&[("REDIS_TLS", "true"), ("REDIS_URL", "redis://:pw@h:6379")]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("REDIS_URL") && msg.contains("REDIS_TLS"),
            "{msg}"
        );
        assert!(!msg.contains("pw"), "{msg}");
        let err = env(&[
            ("REDIS_TLS", "true"),
            ("REDIS_CLUSTER_NODES", "h1:7000,redis://h2:7000"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("REDIS_CLUSTER_NODES"), "{err}");
    }

    #[test]
    fn an_upstash_rest_url_becomes_the_databases_redis_endpoint() {
        let redis = |url| upstash(url, Some(" AXb1+tok/en= ")).unwrap();
        let expected = "rediss://default:AXb1%2Btok%2Fen%3D@my-db.upstash.io:6379";
        assert_eq!(redis("https://my-db.upstash.io"), expected);
        assert_eq!(redis("https://my-db.upstash.io/"), expected);
        assert_eq!(redis("HTTPS://my-db.upstash.io:443"), expected);
        assert_eq!(
            redis("https://[::1]:443"),
            "rediss://default:AXb1%2Btok%2Fen%3D@[::1]:6379"
        );
        for unusable in [
            "https://",
            "https://:443",
            "https://user:pw@my-db.upstash.io",
            "https://my-db.upstash.io/v2/get",
            "https://my-db.upstash.io?x=1",
        ] {
            let err = upstash(unusable, Some("secret-token")).unwrap_err();
            assert!(
                matches!(
                    err,
                    BuildError::InvalidEnv {
                        name: "REDIS_URL",
                        ..
                    }
                ),
                "{unusable}: {err}"
            );
            assert!(!format!("{err} {err:?}").contains("pw@"), "{err:?}");
        }
    }

    #[test]
    fn the_upstash_token_is_used_and_never_shown() {
        let vars = [
            ("REDIS_URL", "https://my-db.upstash.io"),
            ("REDIS_TOKEN", "sekrit-token"),
            ("REDIS_TLS", "true"),
        ];
        let builder = CacheBuilder::from_env_with(|n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let shown = format!("{builder:?}");
        assert!(
            shown.contains("rediss://default:***@my-db.upstash.io:6379"),
            "{shown}"
        );
        // Built with the `tls` feature it is a cache; without it, an error naming the feature.
        let shown = match builder.build() {
            Ok(cache) => format!("{cache:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        assert!(shown.contains("default:***@my-db.upstash.io"), "{shown}");
        assert!(!shown.contains("sekrit"), "{shown}");
    }

    #[test]
    fn an_upstash_url_without_its_token_says_what_to_set() {
        let err = env(&[("REDIS_URL", "https://my-db.upstash.io")]).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, BuildError::MissingRedisToken { .. }), "{msg}");
        assert!(msg.contains("set REDIS_TOKEN"), "{msg}");
        assert!(msg.contains("my-db.upstash.io:6379"), "{msg}");
    }

    #[test]
    fn a_token_without_an_upstash_url_is_an_error() {
        for vars in [
            &[("REDIS_TOKEN", "sekrit-token")][..],
            &[
                ("REDIS_TOKEN", "sekrit-token"),
                ("REDIS_URL", "redis://:hunter2@h:6379"),
            ],
            &[("REDIS_TOKEN", "sekrit-token"), ("REDIS_HOST", "h")],
        ] {
            let err = env(vars).unwrap_err();
            let msg = format!("{err} {err:?}");
            assert!(matches!(err, BuildError::UnusedRedisToken { .. }), "{msg}");
            assert!(!msg.contains("sekrit") && !msg.contains("hunter2"), "{msg}");
        }
    }

    #[test]
    fn debug_output_hides_passwords() {
        let builder = CacheBuilder::new().redis("redis://u:hunter2@h:6379");
        let shown = format!("{builder:?}");
        assert!(shown.contains("redis://u:***@h:6379"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = format!(
            "{:?}",
            CacheBuilder::new()
                .redis_cluster(["redis://:hunter2@a:7000", "redis://:hunter2@b:7000"])
        );
        assert!(
            shown.contains("cluster redis://:***@a:7000,redis://:***@b:7000"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn verification_cannot_be_turned_off_by_url() {
        let err = env(&[("REDIS_URL", "rediss://h:6379/#insecure")]).unwrap_err();
        assert!(err.to_string().contains("#insecure"), "{err}");
    }

    #[test]
    fn tls_settings_are_checked() {
        let err = env(&[("CACHE_REDIS_TLS_CA_FILE", "/nonexistent/ca.pem")]).unwrap_err();
        assert!(err.to_string().contains("CACHE_REDIS_TLS_CA_FILE"), "{err}");
        let dbg = format!(
            "{:?}",
            env(&[("REDIS_HOST", "h"), ("REDIS_TLS", "true")]).map(|c| format!("{c:?}"))
        );
        if cfg!(feature = "tls") {
            assert!(dbg.contains("rediss://h:6379/0"), "{dbg}");
        } else {
            assert!(dbg.contains("needs the `tls` feature"), "{dbg}");
        }
    }
}
