//! The admin routes.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::auth::Actor;
use super::error::ApiError;
use crate::phi::AuditOperation;
use crate::{Cache, PHI_NAMESPACE, StatsSnapshot, registry};

type AdminState = State<Arc<super::State>>;
type Params = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The longest pattern, key or tag accepted, in bytes.
pub(crate) const MAX_INPUT: usize = 1024;
/// Keys `/cache/debug` lists unless `limit` says otherwise, and the most it lists.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

static DASHBOARD: &str = include_str!("dashboard.html");

/// The query's parameters, each named at most once and all among `allowed`.
fn params(query: Params, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let Query(pairs) = query.map_err(|e| {
        ApiError::bad_request("bad_query", format!("the query string is malformed: {e}"))
    })?;
    for (i, (name, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            let expected = if allowed.is_empty() {
                "this route takes no parameter".to_owned()
            } else {
                format!("expected one of: {}", allowed.join(", "))
            };
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!("unknown parameter `{name}`; {expected}"),
            ));
        }
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(ApiError::bad_request(
                "repeated_parameter",
                format!("the parameter `{name}` is given more than once"),
            ));
        }
    }
    Ok(pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A required text parameter: present, not empty, at most [`MAX_INPUT`] bytes, no control
/// characters.
fn text<'a>(pairs: &'a [(String, String)], name: &'static str) -> Result<&'a str, ApiError> {
    let value = param(pairs, name).ok_or_else(|| {
        ApiError::bad_request(
            "missing_parameter",
            format!("the parameter `{name}` is required"),
        )
    })?;
    if value.is_empty() {
        return Err(ApiError::bad_request(
            "empty_parameter",
            format!("the parameter `{name}` is empty"),
        ));
    }
    if value.len() > MAX_INPUT {
        return Err(ApiError::bad_request(
            "parameter_too_long",
            format!(
                "the parameter `{name}` is {} bytes; at most {MAX_INPUT} are accepted",
                value.len()
            ),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "control_characters",
            format!("the parameter `{name}` holds control characters"),
        ));
    }
    Ok(value)
}

/// A glob pattern: [`text`], well-formed, and when it matches everything, confirmed.
fn pattern(pairs: &[(String, String)], everything_needs_confirm: bool) -> Result<&str, ApiError> {
    let pattern = text(pairs, "pattern")?;
    crate::store::glob::check(pattern).map_err(|reason| {
        ApiError::bad_request(
            "invalid_pattern",
            format!("the pattern `{pattern}` is not a valid glob: {reason}"),
        )
    })?;
    if everything_needs_confirm && pattern.chars().all(|c| c == '*') {
        match param(pairs, "confirm") {
            Some("true") => {}
            Some(other) => {
                return Err(ApiError::bad_request(
                    "bad_confirm",
                    format!("`confirm` must be `true`, not `{other}`"),
                ));
            }
            None => {
                return Err(ApiError::bad_request(
                    "confirm_required",
                    "the pattern `*` removes every entry of the cache; add `confirm=true`",
                ));
            }
        }
    }
    Ok(pattern)
}

/// A tag: [`text`], and no glob character that is not escaped (tags are exact names; a
/// pattern goes to `DELETE /cache?pattern=`).
fn tag(pairs: &[(String, String)]) -> Result<&str, ApiError> {
    let tag = text(pairs, "tag")?;
    let mut escaped = false;
    for c in tag.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if matches!(c, '*' | '?' | '[' | ']') {
            return Err(ApiError::bad_request(
                "invalid_tag",
                format!(
                    "the tag `{tag}` holds the glob character `{c}`; tags are exact names (escape \
                     it as `\\{c}`, or use `DELETE /cache?pattern=` for patterns)"
                ),
            ));
        }
    }
    if escaped {
        return Err(ApiError::bad_request(
            "invalid_tag",
            format!("the tag `{tag}` ends with a lone `\\`"),
        ));
    }
    Ok(tag)
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn snapshot(s: &StatsSnapshot) -> Value {
    json!({
        "hits": s.hits,
        "l1_hits": s.l1_hits,
        "misses": s.misses,
        "stale_hits": s.stale_hits,
        "fail_safe_hits": s.fail_safe_hits,
        "errors": s.errors,
        "loads": s.loads,
        "refreshes": s.refreshes,
        "refresh_errors": s.refresh_errors,
        "waited": s.waited,
        "hit_ratio": s.hit_ratio,
        "avg_lookup_us": us(s.avg_lookup),
        "p50_lookup_us": us(s.p50_lookup),
        "p99_lookup_us": us(s.p99_lookup),
        "avg_load_us": us(s.avg_load),
        "p50_load_us": us(s.p50_load),
        "p99_load_us": us(s.p99_load),
    })
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| {
        json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    })
}

async fn health_json(cache: &Cache) -> (bool, Value) {
    let h = cache.health().await;
    let body = json!({
        "summary": h.to_string(),
        "store": h.store,
        "prefix": h.prefix,
        "disabled": h.disabled,
        "reachable": h.reachable,
        "breaker": format!("{:?}", h.breaker).to_lowercase(),
        "round_trip_us": h.round_trip.map(us),
        "latency_us": us(h.latency),
        "shedding": h.shedding,
        "pending_invalidations": h.pending_invalidations,
        "invalidations_queued": h.invalidations_queued,
        "queue_overflows": h.queue_overflows,
        "timeouts": h.timeouts,
        "errors": h.errors,
        "breaker_opened": h.breaker_opened,
        "recoveries": h.recoveries,
        "rate_limit_policy": format!("{:?}", h.rate_limit_policy),
        "rate_limits_enforced": h.rate_limits_enforced,
        "l1": h.l1.as_ref().map(|l1| json!({
            "serving": l1.serving,
            "copies": l1.copies,
            "bytes": l1.bytes,
        })),
    });
    (h.reachable && h.disabled.is_none(), body)
}

pub(crate) async fn overview(State(s): AdminState, query: Params) -> Result<Json<Value>, ApiError> {
    params(query, &[])?;
    let stats = s.cache.stats();
    let (_, health) = health_json(&s.cache).await;
    Ok(Json(json!({
        "health": health,
        "total": snapshot(&stats.total),
        "refreshes_dropped": stats.refreshes_dropped,
        "functions_called": stats.per_function.len(),
        "functions_registered": registry().len(),
        "warmers": s.cache.warmers().names(),
    })))
}

pub(crate) async fn health(State(s): AdminState, query: Params) -> Result<Response, ApiError> {
    params(query, &[])?;
    let (ok, body) = health_json(&s.cache).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(body)).into_response())
}

pub(crate) async fn metrics(State(s): AdminState, query: Params) -> Result<Json<Value>, ApiError> {
    params(query, &[])?;
    let (h, memory) = crate::metrics::sample_gauges(&s.cache).await;
    let stats = s.cache.stats();
    let phi_paths: Vec<String> = registry()
        .iter()
        .filter(|f| f.phi)
        .map(|f| f.path())
        .collect();
    let (mut phi_hits, mut phi_misses, mut phi_loads) = (0, 0, 0);
    let functions: Vec<Value> = stats
        .per_function
        .iter()
        .map(|(path, snap)| {
            let phi = phi_paths.contains(path);
            if phi {
                phi_hits += snap.hits;
                phi_misses += snap.misses;
                phi_loads += snap.loads;
            }
            let mut v = snapshot(snap);
            v["function"] = json!(path);
            v["phi"] = json!(phi);
            v
        })
        .collect();
    Ok(Json(json!({
        "total": snapshot(&stats.total),
        "functions": functions,
        "refreshes_dropped": stats.refreshes_dropped,
        "breaker": format!("{:?}", h.breaker).to_lowercase(),
        "reachable": h.reachable,
        "pending_invalidations": h.pending_invalidations,
        "store_memory": memory.map(|m| json!({ "used_bytes": m.used_bytes, "max_bytes": m.max_bytes })),
        "healthcare": {
            "phi_functions": phi_paths.len(),
            "phi_hits": phi_hits,
            "phi_misses": phi_misses,
            "phi_loads": phi_loads,
        },
    })))
}

pub(crate) async fn debug(State(s): AdminState, query: Params) -> Result<Json<Value>, ApiError> {
    let pairs = params(query, &["pattern", "limit"])?;
    let pattern = if param(&pairs, "pattern").is_some() {
        pattern(&pairs, false)?
    } else {
        "*"
    };
    let limit = match param(&pairs, "limit") {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::bad_request(
                    "bad_limit",
                    format!("`limit` must be a number from 1 to {MAX_LIMIT}, not `{l}`"),
                ));
            }
        },
    };
    let listing = s
        .cache
        .list_keys(pattern, limit)
        .await
        .map_err(|e| ApiError::from_cache(&e))?;
    let keys: Vec<Value> = listing
        .keys
        .iter()
        .map(|k| json!({ "key": k.key, "ttl_ms": k.ttl_ms, "bytes": k.bytes }))
        .collect();
    Ok(Json(json!({
        "pattern": pattern,
        "keys": keys,
        "truncated": listing.truncated,
    })))
}

pub(crate) async fn registry_list(query: Params) -> Result<Json<Value>, ApiError> {
    params(query, &[])?;
    let functions: Vec<Value> = registry()
        .iter()
        .map(|f| {
            json!({
                "function": f.path(),
                "template": f.template,
                "default_key": f.default_key,
                "ttl_ms": ms(f.ttl),
                "stale_ms": ms(f.stale),
                "stale_off": f.stale_off,
                "tags": f.tags,
                "version": f.version,
                "cache_none": f.cache_none,
                "timeout_ms": ms(f.timeout),
                "fail_safe_ms": ms(f.fail_safe),
                "jitter_percent": f.jitter,
                "early_beta": f.early_beta,
                "priority": format!("{:?}", f.priority).to_lowercase(),
                "max_ttl_ms": ms(f.max_ttl),
                "put": f.put,
                "phi": f.phi,
                "file": f.file,
                "line": f.line,
            })
        })
        .collect();
    Ok(Json(json!({ "functions": functions })))
}

/// Runs `work` as `actor` and records its audit event: to the cache's sinks (the pattern,
/// key or tag as its keyed hash) and as a `tracing` event (without it).
async fn audited<F, T>(
    cache: &Cache,
    actor: Actor,
    function: &'static str,
    operation: AuditOperation,
    subject: &str,
    work: F,
) -> Result<T, ApiError>
where
    F: std::future::Future<Output = Result<(T, Option<u64>), crate::CacheError>>,
{
    let Actor(actor) = actor;
    crate::phi::with_actor(actor.clone(), async {
        let result = work.await;
        let (outcome, count) = match &result {
            Ok((_, count)) => ("ok", *count),
            Err(_) => ("store_error", None),
        };
        cache.audit(function, operation, outcome, subject, count);
        tracing::info!(target: "cachette::admin", actor = %actor, action = function, outcome, count, "admin call");
        result.map(|(v, _)| v).map_err(|e| ApiError::from_cache(&e))
    })
    .await
}

pub(crate) async fn delete_pattern(
    State(s): AdminState,
    Extension(actor): Extension<Actor>,
    query: Params,
) -> Result<Json<Value>, ApiError> {
    let pairs = params(query, &["pattern", "confirm"])?;
    let pattern = pattern(&pairs, true)?;
    let cache = &s.cache;
    let removed = audited(
        cache,
        actor,
        "admin::delete_pattern",
        AuditOperation::Invalidate,
        pattern,
        async {
            // Everything goes through `clear`, which a cache without a prefix on a shared
            // store refuses (its keys cannot be told from other programs').
            let n = if pattern.chars().all(|c| c == '*') {
                cache.clear().await?
            } else {
                cache.invalidate_pattern(pattern).await?
            };
            Ok((n, Some(n)))
        },
    )
    .await?;
    Ok(Json(json!({ "pattern": pattern, "removed": removed })))
}

pub(crate) async fn delete_key(
    State(s): AdminState,
    Extension(actor): Extension<Actor>,
    query: Params,
) -> Result<Json<Value>, ApiError> {
    let pairs = params(query, &["key"])?;
    let key = text(&pairs, "key")?;
    let cache = &s.cache;
    let existed = audited(
        cache,
        actor,
        "admin::delete_key",
        AuditOperation::Invalidate,
        key,
        async {
            let existed = cache.invalidate(key).await?;
            Ok((existed, Some(u64::from(existed))))
        },
    )
    .await?;
    Ok(Json(json!({ "key": key, "existed": existed })))
}

pub(crate) async fn delete_tag(
    State(s): AdminState,
    Extension(actor): Extension<Actor>,
    query: Params,
) -> Result<Json<Value>, ApiError> {
    let pairs = params(query, &["tag"])?;
    let tag = tag(&pairs)?;
    let cache = &s.cache;
    audited(
        cache,
        actor,
        "admin::delete_tag",
        AuditOperation::Invalidate,
        tag,
        async {
            cache.invalidate_tag(tag).await?;
            Ok(((), None))
        },
    )
    .await?;
    Ok(Json(json!({ "tag": tag, "invalidated": true })))
}

pub(crate) async fn clear_phi(
    State(s): AdminState,
    Extension(actor): Extension<Actor>,
    query: Params,
) -> Result<Json<Value>, ApiError> {
    params(query, &[])?;
    let cache = &s.cache;
    let removed = audited(
        cache,
        actor,
        "admin::clear_phi",
        AuditOperation::ClearPhi,
        PHI_NAMESPACE,
        async {
            let n = cache
                .invalidate_pattern(&format!("{PHI_NAMESPACE}*"))
                .await?;
            Ok((n, Some(n)))
        },
    )
    .await?;
    Ok(Json(json!({ "removed": removed })))
}

pub(crate) async fn warm(
    State(s): AdminState,
    Extension(actor): Extension<Actor>,
    query: Params,
) -> Result<Response, ApiError> {
    params(query, &[])?;
    let Ok(_one_at_a_time) = s.warming.try_lock() else {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            code: "warming_running",
            message: "a warming is running already".to_owned(),
        });
    };
    let cache = &s.cache;
    let report = audited(
        cache,
        actor,
        "admin::warm",
        AuditOperation::Write,
        "warm",
        async {
            let report = cache.warm().await;
            let warmed = report.warmed;
            Ok((report, Some(warmed)))
        },
    )
    .await?;
    Ok(Json(report).into_response())
}

pub(crate) async fn dashboard() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            ),
        ],
        DASHBOARD,
    )
        .into_response()
}
