//! Cache warming: named warmers, run at startup or on demand (the admin router's
//! `POST /cache/warm`), with bounded concurrency, progress and a report.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream;

use crate::Cache;

type Job = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Jobs = Arc<dyn Fn(Cache) -> Vec<Job> + Send + Sync>;

/// One warmer: a name and the jobs it runs, one per key it warms.
///
/// A job warms one key, usually by calling the `#[cached]` function that owns it; an error
/// counts that key as failed and the others go on.
///
/// ```
/// use cache_runtime::{Cache, Warmer};
///
/// # async fn load_doctor(id: u64) -> Result<String, std::io::Error> { Ok(format!("dr {id}")) }
/// let doctors = Warmer::each("doctors", [1u64, 2, 3], |_cache: Cache, id| async move {
///     load_doctor(id).await.map(drop)
/// });
/// ```
#[derive(Clone)]
pub struct Warmer {
    name: String,
    jobs: Jobs,
}

impl std::fmt::Debug for Warmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warmer").field("name", &self.name).finish()
    }
}

impl Warmer {
    /// A warmer of one key: `warm` runs once per warming.
    pub fn new<F, Fut, E>(name: impl Into<String>, warm: F) -> Self
    where
        F: Fn(Cache) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let warm = Arc::new(warm);
        Warmer {
            name: name.into(),
            jobs: Arc::new(move |cache| {
                let fut = warm(cache);
                vec![Box::pin(async move { fut.await.map_err(|e| e.to_string()) }) as Job]
            }),
        }
    }

    /// A warmer of one key per item: `warm(cache, item)` runs for each of `items`.
    pub fn each<T, I, F, Fut, E>(name: impl Into<String>, items: I, warm: F) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Clone + Send + Sync + 'static,
        F: Fn(Cache, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display,
    {
        let items: Arc<[T]> = items.into_iter().collect();
        let warm = Arc::new(warm);
        Warmer {
            name: name.into(),
            jobs: Arc::new(move |cache: Cache| {
                items
                    .iter()
                    .map(|item| {
                        let fut = warm(cache.clone(), item.clone());
                        Box::pin(async move { fut.await.map_err(|e| e.to_string()) }) as Job
                    })
                    .collect()
            }),
        }
    }

    /// The warmer's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Progress of a warming, handed to the [`Warmers::on_progress`] callback after each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WarmProgress {
    /// Keys done (warmed or failed).
    pub done: u64,
    /// Keys in this warming.
    pub total: u64,
    /// Keys that failed so far.
    pub failed: u64,
}

/// What one warmer did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WarmerReport {
    /// The warmer's name.
    pub name: String,
    /// Keys warmed.
    pub warmed: u64,
    /// Keys whose job failed.
    pub failed: u64,
    /// The first error of this warmer, if any.
    pub first_error: Option<String>,
}

/// What a warming did: keys warmed and failed, per warmer and in all, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WarmReport {
    /// Keys warmed.
    pub warmed: u64,
    /// Keys whose job failed.
    pub failed: u64,
    /// How long the whole warming took, in ms.
    pub took_ms: u64,
    /// Each warmer, in the order they were added.
    pub warmers: Vec<WarmerReport>,
}

impl WarmReport {
    /// How long the warming took.
    pub fn took(&self) -> Duration {
        Duration::from_millis(self.took_ms)
    }
}

/// The warmers of a service, run with bounded concurrency.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use cache_runtime::{Cache, Warmer, Warmers};
///
/// let cache = Cache::builder().build().unwrap();
/// let warmers = Warmers::new()
///     .concurrency(4)
///     .warmer(Warmer::each("squares", 1..=10u64, |cache: Cache, n| async move {
///         cache.set(&format!("square:{n}"), &(n * n), std::time::Duration::from_secs(60)).await
///     }));
/// let report = warmers.run(&cache).await;
/// assert_eq!((report.warmed, report.failed), (10, 0));
/// # }
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Warmers {
    warmers: Vec<Warmer>,
    concurrency: Option<usize>,
    progress: Option<Arc<dyn Fn(WarmProgress) + Send + Sync>>,
}

impl std::fmt::Debug for Warmers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warmers")
            .field("warmers", &self.warmers)
            .field("concurrency", &self.limit())
            .finish()
    }
}

/// Keys warmed at once unless [`Warmers::concurrency`] says otherwise.
pub const DEFAULT_WARM_CONCURRENCY: usize = 8;

impl Warmers {
    /// No warmers; keys are warmed [`DEFAULT_WARM_CONCURRENCY`] at a time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a warmer.
    pub fn warmer(mut self, warmer: Warmer) -> Self {
        self.warmers.push(warmer);
        self
    }

    /// At most `n` keys are warmed at once (at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n.max(1));
        self
    }

    /// Calls `progress` after each key (from the task running the warming; keep it short).
    pub fn on_progress(mut self, progress: impl Fn(WarmProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }

    /// The warmers' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.warmers.iter().map(Warmer::name).collect()
    }

    fn limit(&self) -> usize {
        self.concurrency.unwrap_or(DEFAULT_WARM_CONCURRENCY)
    }

    /// Runs every warmer's jobs, at most `concurrency` at once, and reports. Emits a `tracing`
    /// event (target `cachette::warm`) at the start, after each key (debug), per warmer and at
    /// the end. A failing key is counted and logged; it stops nothing.
    pub async fn run(&self, cache: &Cache) -> WarmReport {
        let started = Instant::now();
        let mut reports: Vec<WarmerReport> = self
            .warmers
            .iter()
            .map(|w| WarmerReport {
                name: w.name.clone(),
                warmed: 0,
                failed: 0,
                first_error: None,
            })
            .collect();
        type Indexed = Pin<Box<dyn Future<Output = (usize, Result<(), String>)> + Send>>;
        let jobs: Vec<Indexed> = self
            .warmers
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                (w.jobs)(cache.clone())
                    .into_iter()
                    .map(move |job| Box::pin(async move { (i, job.await) }) as Indexed)
            })
            .collect();
        let total = jobs.len() as u64;
        tracing::info!(target: "cachette::warm", warmers = self.warmers.len(), keys = total, concurrency = self.limit(), "warming started");
        let mut results = stream::iter(jobs).buffer_unordered(self.limit());
        let (mut done, mut failed) = (0u64, 0u64);
        while let Some((i, result)) = results.next().await {
            done += 1;
            let report = &mut reports[i];
            match result {
                Ok(()) => report.warmed += 1,
                Err(e) => {
                    failed += 1;
                    report.failed += 1;
                    tracing::warn!(target: "cachette::warm", warmer = %report.name, error = %e, "a key failed to warm");
                    report.first_error.get_or_insert(e);
                }
            }
            tracing::debug!(target: "cachette::warm", done, total, failed, "warming");
            if let Some(progress) = &self.progress {
                progress(WarmProgress {
                    done,
                    total,
                    failed,
                });
            }
        }
        for r in &reports {
            tracing::info!(target: "cachette::warm", warmer = %r.name, warmed = r.warmed, failed = r.failed, "warmer done");
        }
        let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(target: "cachette::warm", warmed = done - failed, failed, took_ms, "warming done");
        WarmReport {
            warmed: done - failed,
            failed,
            took_ms,
            warmers: reports,
        }
    }
}
