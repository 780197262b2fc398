//! What a [`RedisStore`](super::RedisStore) connects to, and the connection it sends commands
//! on: one server through redis-rs' `ConnectionManager`, or a Redis Cluster through
//! `cluster_async::ClusterConnection`, both behind one [`Conn`] so that every command is written
//! once.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{RedisStoreConfig, redact};
use crate::error::BuildError;

/// A parsed, not yet connected, Redis deployment.
// One per store, built once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Target {
    /// One server (`redis://` or `rediss://`).
    Single(redis::Client),
    /// A Redis Cluster, reached through any of its nodes; the nodes and settings are kept to
    /// build the subscriber's client (RESP3, with a push channel) from the same ones.
    Cluster(ClusterClient, ClusterSeed),
}

/// What a cluster client is built from.
#[derive(Clone)]
pub(super) struct ClusterSeed {
    nodes: Vec<String>,
    config: RedisStoreConfig,
}

/// A live connection; cheap to clone (both kinds multiplex one socket per node).
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Target {
    /// Parses one server's URL.
    pub(super) fn single(url: &str, config: &RedisStoreConfig) -> Result<Target, BuildError> {
        let invalid = |reason: String| BuildError::InvalidRedisUrl {
            url: redact(url),
            reason,
        };
        tls::check(url, config).map_err(invalid)?;
        let info = redis::IntoConnectionInfo::into_connection_info(url)
            .map_err(|e| invalid(e.to_string()))?;
        tls::install_provider();
        #[cfg(feature = "tls")]
        let client = match tls::certificates(config, is_tls(url)) {
            Some(certs) => redis::Client::build_with_tls(info, certs),
            None => redis::Client::open(info),
        };
        #[cfg(not(feature = "tls"))]
        let client = redis::Client::open(info);
        let client = client.map_err(|e| invalid(e.to_string()))?;
        Ok(Target::Single(client))
    }

    /// Parses the URLs of some nodes of a cluster (the client discovers the others).
    pub(super) fn cluster(
        nodes: &[String],
        config: &RedisStoreConfig,
    ) -> Result<Target, BuildError> {
        let shown = nodes
            .iter()
            .map(|n| redact(n))
            .collect::<Vec<_>>()
            .join(",");
        let invalid = |reason: String| BuildError::InvalidRedisUrl {
            url: shown.clone(),
            reason,
        };
        if nodes.is_empty() {
            return Err(invalid("a cluster needs at least one node URL".into()));
        }
        for node in nodes {
            tls::check(node, config).map_err(invalid)?;
        }
        tls::install_provider();
        let seed = ClusterSeed {
            nodes: nodes.to_vec(),
            config: config.clone(),
        };
        let client = seed.builder().build().map_err(|e| invalid(e.to_string()))?;
        Ok(Target::Cluster(client, seed))
    }

    /// A connection that connects on first use (inside the caller's runtime) and reconnects by
    /// itself after the connection breaks.
    pub(super) fn connect_lazily(&self, config: &RedisStoreConfig) -> redis::RedisResult<Conn> {
        match self {
            Target::Single(client) => {
                // Commands are bounded by the store (which also covers reconnection waits); a
                // second timer per command in the manager would only add cost. No connection
                // retries inside the manager: the breaker paces reconnection, and a retry's
                // backoff (100 ms and up) against a dead server would only turn a refusal
                // that takes a millisecond into a full command timeout.
                let cfg = ConnectionManagerConfig::new()
                    .set_response_timeout(None)
                    .set_connection_timeout(Some(config.connection_timeout))
                    .set_number_of_retries(0)
                    .set_max_delay(Duration::from_secs(2));
                Ok(Conn::Single(ConnectionManager::new_lazy_with_config(
                    client.clone(),
                    cfg,
                )?))
            }
            Target::Cluster(client, _) => {
                let cfg = ClusterConfig::new()
                    .set_connection_timeout(config.connection_timeout)
                    .set_response_timeout(config.response_timeout);
                Ok(Conn::Cluster(
                    client.get_pending_async_connection_with_config(cfg),
                ))
            }
        }
    }
}

impl ClusterSeed {
    /// A client builder with the store's settings.
    pub(super) fn builder(&self) -> redis::cluster::ClusterClientBuilder {
        let (nodes, config) = (&self.nodes, &self.config);
        #[allow(unused_mut)]
        let mut builder = ClusterClient::builder(nodes.iter().map(String::as_str))
            .connection_timeout(config.connection_timeout)
            // MOVED/ASK redirections and refused connections are retried inside the client;
            // the store bounds the whole command by the same timeout, so a retry happens only
            // after a fast error.
            .response_timeout(config.response_timeout)
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(100);
        #[cfg(feature = "tls")]
        if let Some(certs) = tls::certificates(config, nodes.iter().all(|n| is_tls(n))) {
            builder = builder.certs(certs);
        }
        builder
    }
}

/// Whether `url` asks for TLS.
fn is_tls(url: &str) -> bool {
    let url = url.trim_start().to_ascii_lowercase();
    url.starts_with("rediss://") || url.starts_with("valkeys://")
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// TLS settings, compiled in with the `tls` feature. Without it, a `rediss://` URL is an error
/// that says which feature to enable, never a silent plain-text connection.
mod tls {
    use super::{RedisStoreConfig, is_tls};

    /// Refuses what would not be what the user meant: TLS without the feature, or a CA for a
    /// plain-text URL (the connection would not be encrypted).
    pub(super) fn check(url: &str, config: &RedisStoreConfig) -> Result<(), String> {
        // redis-rs reads `#insecure` as "do not verify the certificate"; that is never what a
        // cache of health data should do quietly.
        if url.contains('#') {
            return Err(
                "URL fragments (such as #insecure) are not accepted: the server's \
                        certificate is always verified"
                    .into(),
            );
        }
        if let Some(pem) = &config.tls_ca {
            if !String::from_utf8_lossy(pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(
                    "the TLS CA holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into(),
                );
            }
        }
        if is_tls(url) && !cfg!(feature = "tls") {
            return Err("rediss:// (TLS) needs the `tls` feature of cachette".into());
        }
        if config.tls_ca.is_some() && !is_tls(url) {
            return Err("a TLS CA certificate is configured but the URL is not rediss://".into());
        }
        Ok(())
    }

    /// The certificates to trust when TLS is asked for: the configured CA, else the system's
    /// roots.
    #[cfg(feature = "tls")]
    pub(super) fn certificates(
        config: &RedisStoreConfig,
        tls: bool,
    ) -> Option<redis::TlsCertificates> {
        tls.then(|| redis::TlsCertificates {
            client_tls: None,
            root_cert: config.tls_ca.clone(),
        })
    }

    /// rustls needs a process-wide crypto provider; this crate brings ring and installs it
    /// when a Redis store is built, unless one is installed already. An application that
    /// wants another provider installs it before building the cache.
    pub(super) fn install_provider() {
        #[cfg(feature = "tls")]
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
