//! The functions under test, on both sides of each comparison, and the operations the
//! measuring loops repeat.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use cachette::Cache;
use cachette_benches::RedisServer;
use cachette_benches::ab::{Metric, SeqRun, run_sequential};
use cachette_benches::payload::Payload;
use cachette_benches::table::Table;
use redis::aio::ConnectionManager;

use crate::values::{make_json_text, payload};
use crate::{
    CACHED_LOADS, CACHED_MEM_LOADS, CACHETTE_LOADS, HOUR, REDIS_URL, REPS, STAMPEDE_BODY,
    STAMPEDE_CACHED_RUNS, STAMPEDE_CACHETTE_RUNS, WARMUP, fresh_id,
};

// `compress = false`: the 4 KiB value is above cachette's default 1 KiB compression threshold,
// and `cached` never compresses; both sides then move about the same bytes.
#[cachette::cached(key = "peers:hit:{id}", ttl = "1h", cache = cache, skip = [cache], compress = false)]
pub(crate) async fn cachette_get(cache: &Cache, id: u64) -> Result<Payload, std::io::Error> {
    CACHETTE_LOADS.fetch_add(1, Relaxed);
    Ok(payload(id).clone())
}

/// An `AsyncRedisCache` on the bench server through a `ConnectionManager` (as cachette uses),
/// TTL 1 h.
pub(crate) async fn cached_redis_store(prefix: &str) -> cached::AsyncRedisCache<u64, Payload> {
    cached::AsyncRedisCache::builder(prefix)
        .ttl(HOUR)
        .connection_string(REDIS_URL.get().expect("the URL is set before any call"))
        .connection_manager(true)
        .build()
        .await
        .expect("an AsyncRedisCache on the bench server")
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "cached::AsyncRedisCache<u64, Payload>",
    create = r##"{ cached_redis_store("peers-hit").await }"##
)]
pub(crate) async fn cached_get(id: u64) -> Result<Payload, String> {
    CACHED_LOADS.fetch_add(1, Relaxed);
    Ok(payload(id).clone())
}

#[cachette::cached(key = "peers:miss:{id}", ttl = "1h", cache = cache, skip = [cache, size], compress = false)]
pub(crate) async fn cachette_miss(
    cache: &Cache,
    id: u64,
    size: u64,
) -> Result<Payload, std::io::Error> {
    Ok(payload(size).clone())
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "cached::AsyncRedisCache<u64, Payload>",
    create = r##"{ cached_redis_store("peers-miss").await }"##
)]
pub(crate) async fn cached_miss(id: u64) -> Result<Payload, String> {
    black_box(id);
    Ok(payload(256).clone())
}

#[cachette::cached(key = "peers:stampede:{id}", ttl = "1h", cache = cache, skip = [cache])]
pub(crate) async fn cachette_slow(cache: &Cache, id: u64) -> Result<Payload, std::io::Error> {
    STAMPEDE_CACHETTE_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(STAMPEDE_BODY).await;
    Ok(Payload {
        id,
        body: "slow".into(),
    })
}

#[cached::macros::concurrent_cached(
    map_error = r##"|e| format!("{e:?}")"##,
    ty = "cached::AsyncRedisCache<u64, Payload>",
    create = r##"{ cached_redis_store("peers-stampede").await }"##
)]
pub(crate) async fn cached_slow(id: u64) -> Result<Payload, String> {
    STAMPEDE_CACHED_RUNS.fetch_add(1, Relaxed);
    tokio::time::sleep(STAMPEDE_BODY).await;
    Ok(Payload {
        id,
        body: "slow".into(),
    })
}

/// `cached`'s own `#[cached]` on an async fn: a global `UnboundCache` behind an async mutex.
#[cached::macros::cached]
pub(crate) async fn cached_mem(id: u64) -> Payload {
    CACHED_MEM_LOADS.fetch_add(1, Relaxed);
    payload(id).clone()
}

#[cachette::cached(key = "peers:json:c:{size}", ttl = "1h", cache = cache, skip = [cache], compress = true)]
pub(crate) async fn json_compressed(cache: &Cache, size: usize) -> Result<String, std::io::Error> {
    Ok(make_json_text(size))
}

#[cachette::cached(key = "peers:json:p:{size}", ttl = "1h", cache = cache, skip = [cache], compress = false)]
pub(crate) async fn json_plain(cache: &Cache, size: usize) -> Result<String, std::io::Error> {
    Ok(make_json_text(size))
}

/// One side of a Redis comparison, cloned into every task.
#[derive(Clone)]
pub(crate) enum Op {
    CachetteHit(Cache),
    CachedHit,
    CachetteMiss(Cache),
    CachedMiss,
    /// `GET` (absent) then `SET .. PX` of these bytes, on a fresh key.
    RawMiss(ConnectionManager, Arc<Vec<u8>>),
}

impl Op {
    pub(crate) async fn run(&mut self, size: u64) {
        match self {
            Op::CachetteHit(cache) => {
                black_box(cachette_get(cache, size).await.expect("a cachette hit"));
            }
            Op::CachedHit => {
                black_box(cached_get(size).await.expect("a cached hit"));
            }
            Op::CachetteMiss(cache) => {
                black_box(
                    cachette_miss(cache, fresh_id(), size)
                        .await
                        .expect("a cachette miss"),
                );
            }
            Op::CachedMiss => {
                black_box(cached_miss(fresh_id()).await.expect("a cached miss"));
            }
            Op::RawMiss(conn, bytes) => {
                let key = format!("peers:raw:{}", fresh_id());
                let found: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query_async(conn)
                    .await
                    .expect("GET");
                assert!(found.is_none(), "a fresh key");
                let () = redis::cmd("SET")
                    .arg(&key)
                    .arg(bytes.as_slice())
                    .arg("PX")
                    .arg(HOUR.as_millis() as u64)
                    .query_async(conn)
                    .await
                    .expect("SET");
            }
        }
    }
}

/// An operation on values of one size, as the measuring loops run it.
#[derive(Clone)]
pub(crate) struct Call(Op, u64);

impl Op {
    /// This operation on values of `size` bytes.
    pub(crate) fn at(&self, size: u64) -> Call {
        Call(self.clone(), size)
    }
}

impl cachette_benches::ab::Side for Call {
    async fn call(&mut self) {
        self.0.run(self.1).await;
    }
}

/// `FLUSHDB` on the bench server (between miss runs, outside the timing).
pub(crate) fn flush(server: &RedisServer) {
    let () = redis::cmd("FLUSHDB")
        .query(&mut server.conn())
        .expect("FLUSHDB");
}

/// Sequential A/B over `REPS`, alternating which side goes first.
pub(crate) async fn seq_ab(
    server: &RedisServer,
    a: &Op,
    b: &Op,
    size: u64,
    dur: Duration,
    flush_after: bool,
) -> (Vec<SeqRun>, Vec<SeqRun>) {
    run_sequential(&a.at(size), WARMUP).await;
    run_sequential(&b.at(size), WARMUP).await;
    let (mut ra, mut rb) = (Vec::new(), Vec::new());
    for rep in 0..REPS {
        for first in [rep % 2 == 0, rep % 2 == 1] {
            let r = run_sequential(&(if first { a } else { b }).at(size), dur).await;
            if flush_after {
                flush(server);
            }
            if first { ra.push(r) } else { rb.push(r) }
        }
    }
    (ra, rb)
}

/// One row per metric of a sequential A/B at one task: value, `1`, metric, A, B, A/B.
pub(crate) fn seq_rows(
    table: &mut Table,
    label: &str,
    metrics: &[Metric],
    a: &[SeqRun],
    b: &[SeqRun],
) {
    for metric in metrics {
        let [cell_a, cell_b, ratio] = metric.cells(a, b);
        table.row(vec![
            label.to_owned(),
            "1".into(),
            metric.name().into(),
            cell_a,
            cell_b,
            ratio,
        ]);
    }
}
