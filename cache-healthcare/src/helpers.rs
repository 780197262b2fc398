//! The helpers of the NestJS original (`cachePatientRecords`, `invalidatePatientCache`, …),
//! with its key conventions and default TTLs, and identifiers hashed in every key name.
//!
//! Keys: `phi:patient:{patient}:clinic:{clinic}:records`, `phi:medical:{patient}:clinic:
//! {clinic}:history`, `phi:prescriptions:{patient}:clinic:{clinic}`, `phi:patient:{patient}:
//! emergency`, where `{patient}` and `{clinic}` are keyed hashes. Tags: `patient:{patient}`,
//! `clinic:{clinic}`, and the kind (`patient_records`, …) plus `phi_data`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use cache_runtime::{
    AuditOperation, Cache, CacheError, Erasure, Invalidation, LoadOptions, PHI_NAMESPACE,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::compliance::{Compliance, EMERGENCY_MAX_TTL};

/// The helpers' TTLs, from the environment variables of the NestJS original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HelperTtls {
    /// `CACHE_PATIENT_RECORDS_TTL`, default 3600 s.
    pub patient_records: Duration,
    /// `CACHE_APPOINTMENTS_TTL`, default 1800 s.
    pub appointments: Duration,
    /// `CACHE_DOCTOR_PROFILES_TTL`, default 7200 s.
    pub doctor_profiles: Duration,
    /// `CACHE_CLINIC_DATA_TTL`, default 14400 s.
    pub clinic_data: Duration,
    /// `CACHE_MEDICAL_HISTORY_TTL`, default 7200 s.
    pub medical_history: Duration,
    /// `CACHE_PRESCRIPTIONS_TTL`, default 1800 s.
    pub prescriptions: Duration,
    /// `CACHE_EMERGENCY_DATA_TTL`, default 300 s.
    pub emergency_data: Duration,
}

impl HelperTtls {
    /// Reads the variables; a missing or malformed one keeps its default (and is logged).
    pub fn from_env() -> Self {
        let read = |name: &str, default: u64| {
            let secs = match std::env::var(name) {
                Ok(v) => v.trim().parse().unwrap_or_else(|_| {
                    tracing::warn!(target: "cachette", variable = name, "not a number of seconds; using {default}");
                    default
                }),
                Err(_) => default,
            };
            Duration::from_secs(secs)
        };
        HelperTtls {
            patient_records: read("CACHE_PATIENT_RECORDS_TTL", 3600),
            appointments: read("CACHE_APPOINTMENTS_TTL", 1800),
            doctor_profiles: read("CACHE_DOCTOR_PROFILES_TTL", 7200),
            clinic_data: read("CACHE_CLINIC_DATA_TTL", 14400),
            medical_history: read("CACHE_MEDICAL_HISTORY_TTL", 7200),
            prescriptions: read("CACHE_PRESCRIPTIONS_TTL", 1800),
            emergency_data: read("CACHE_EMERGENCY_DATA_TTL", 300),
        }
    }
}

static TTLS: LazyLock<HelperTtls> = LazyLock::new(HelperTtls::from_env);

/// `ttl` under `level`'s cap; a configured TTL over the cap is lowered, and logged.
fn capped(name: &str, ttl: Duration, level: Compliance) -> Duration {
    let cap = level.max_ttl();
    if ttl > cap {
        tracing::warn!(target: "cachette", helper = name, ?ttl, ?cap, "configured TTL is over the compliance cap; using the cap");
    }
    ttl.min(cap)
}

/// A value the helpers cache: stored serialized, refreshed in the background.
pub trait Value: Serialize + DeserializeOwned + Send + 'static {}

impl<T: Serialize + DeserializeOwned + Send + 'static> Value for T {}

/// A loader the helpers can run in the background: it owns what it uses (`move || async move
/// { .. }`) and returns `Result<T, E>`.
pub trait Fetch<T, E>: FnOnce() -> Self::Load + Send + 'static {
    /// The loader's future.
    type Load: Future<Output = Result<T, E>> + Send + 'static;
}

impl<T, E, F, Fut> Fetch<T, E> for F
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, E>> + Send + 'static,
{
    type Load = Fut;
}

/// A kind of data kept per patient and clinic: its helper's name (for audit), its tag and its
/// key from the hashed patient and clinic ids.
struct ClinicScoped {
    helper: &'static str,
    tag: &'static str,
    key: fn(&str, &str) -> String,
}

const PATIENT_RECORDS: ClinicScoped = ClinicScoped {
    helper: "healthcare::cache_patient_records",
    tag: "patient_records",
    key: |p, c| format!("{PHI_NAMESPACE}patient:{p}:clinic:{c}:records"),
};

const MEDICAL_HISTORY: ClinicScoped = ClinicScoped {
    helper: "healthcare::cache_medical_history",
    tag: "medical_history",
    key: |p, c| format!("{PHI_NAMESPACE}medical:{p}:clinic:{c}:history"),
};

const PRESCRIPTIONS: ClinicScoped = ClinicScoped {
    helper: "healthcare::cache_prescriptions",
    tag: "prescriptions",
    key: |p, c| format!("{PHI_NAMESPACE}prescriptions:{p}:clinic:{c}"),
};

/// The areas the helpers' hits are counted by, as the NestJS original reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Patient records, medical history, prescriptions.
    Patient,
    /// Appointments.
    Appointment,
    /// Doctor profiles.
    Doctor,
    /// Emergency data.
    Emergency,
}

/// Hits and misses of the helpers, by area (`HealthcareCacheMetrics` of the original).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct HealthcareMetrics {
    /// Hits on patient records, medical history and prescriptions.
    pub patient_cache_hits: u64,
    /// Hits on appointments.
    pub appointment_cache_hits: u64,
    /// Hits on doctor profiles.
    pub doctor_cache_hits: u64,
    /// Hits on emergency data.
    pub emergency_cache_hits: u64,
    /// Hits in every area.
    pub total_hits: u64,
    /// Calls that ran their loader, in every area.
    pub total_misses: u64,
    /// `total_hits / (total_hits + total_misses)`, 0 before the first call.
    pub hit_rate: f64,
}

#[derive(Debug, Default)]
struct AreaCounters {
    hits: [AtomicU64; 4],
    misses: [AtomicU64; 4],
}

/// The healthcare helpers over one cache.
///
/// ```no_run
/// # async fn f(cache: cache_runtime::Cache) -> Result<(), cache_runtime::CacheError> {
/// use cache_healthcare::Healthcare;
///
/// let phi = Healthcare::new(cache);
/// let records: Result<Vec<String>, std::io::Error> = phi
///     .cache_patient_records("MRN-0042", "clinic-7", || async { Ok(vec!["visit".into()]) })
///     .await;
/// phi.invalidate_patient("MRN-0042", Some("clinic-7")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Healthcare {
    cache: Cache,
    ttls: HelperTtls,
    counters: Arc<AreaCounters>,
}

impl Healthcare {
    /// The helpers over `cache`, with TTLs from the environment.
    pub fn new(cache: Cache) -> Self {
        Self::with_ttls(cache, *TTLS)
    }

    /// The helpers with these TTLs.
    pub fn with_ttls(cache: Cache, ttls: HelperTtls) -> Self {
        Healthcare {
            cache,
            ttls,
            counters: Arc::default(),
        }
    }

    /// Hits and misses of these helpers (and their clones), by area.
    pub fn metrics(&self) -> HealthcareMetrics {
        let c = &self.counters;
        let hits: Vec<u64> = c.hits.iter().map(|h| h.load(Relaxed)).collect();
        let total_hits: u64 = hits.iter().sum();
        let total_misses: u64 = c.misses.iter().map(|m| m.load(Relaxed)).sum();
        let calls = total_hits + total_misses;
        HealthcareMetrics {
            patient_cache_hits: hits[Area::Patient as usize],
            appointment_cache_hits: hits[Area::Appointment as usize],
            doctor_cache_hits: hits[Area::Doctor as usize],
            emergency_cache_hits: hits[Area::Emergency as usize],
            total_hits,
            total_misses,
            hit_rate: if calls == 0 {
                0.0
            } else {
                total_hits as f64 / calls as f64
            },
        }
    }

    /// The cache underneath.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    fn h(&self, id: &str) -> String {
        self.cache.hash_id(id)
    }

    /// Fails an erasure by identifier on a cache that hashes identifiers under a key of this
    /// process only: it would match no other process's entries and still report success.
    fn ids_hashed(&self) -> Result<(), CacheError> {
        match self.cache.hashes_ids() {
            true => Ok(()),
            false => Err(CacheError::NoHashKey),
        }
    }

    /// Caches one protected value under `key` (already hashed), audited as `helper`, counted
    /// in `area`: a call whose loader ran is a miss, any other a hit.
    async fn protected<T: Value, E: Send + 'static>(
        &self,
        helper: &'static str,
        area: Area,
        key: String,
        options: LoadOptions,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        // Keys under a hash of this process only could never be erased by identifier from
        // another process (or this one after a restart): without the shared key, nothing is
        // cached.
        if !self.cache.hashes_ids() {
            self.counters.misses[area as usize].fetch_add(1, Relaxed);
            return fetch().await;
        }
        let options = options.protected(helper);
        let loaded = Arc::new(AtomicBool::new(false));
        let flag = loaded.clone();
        let out = self
            .cache
            .get_or_load_owned(&key, &options, move || {
                flag.store(true, Relaxed);
                fetch()
            })
            .await;
        let counters = if loaded.load(Relaxed) {
            &self.counters.misses
        } else {
            &self.counters.hits
        };
        counters[area as usize].fetch_add(1, Relaxed);
        out
    }

    /// The helpers for data of one patient at one clinic: the kind's key from the hashed
    /// ids, tags `patient:{p}`, `clinic:{c}`, the kind's and `phi_data`, sensitive TTL cap.
    async fn clinic_scoped<T: Value, E: Send + 'static>(
        &self,
        kind: &ClinicScoped,
        ttl: Duration,
        patient: &str,
        clinic: &str,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        let (p, c) = (self.h(patient), self.h(clinic));
        let options = LoadOptions::ttl(capped(kind.helper, ttl, Compliance::Sensitive))
            .tag(format!("patient:{p}"))
            .tag(format!("clinic:{c}"))
            .tag(kind.tag)
            .tag("phi_data");
        self.protected(
            kind.helper,
            Area::Patient,
            (kind.key)(&p, &c),
            options,
            fetch,
        )
        .await
    }

    /// Patient records of one clinic (`CACHE_PATIENT_RECORDS_TTL`); key
    /// `phi:patient:{patient}:clinic:{clinic}:records`.
    pub async fn cache_patient_records<T: Value, E: Send + 'static>(
        &self,
        patient: &str,
        clinic: &str,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        let ttl = self.ttls.patient_records;
        self.clinic_scoped(&PATIENT_RECORDS, ttl, patient, clinic, fetch)
            .await
    }

    /// Medical history of one clinic (`CACHE_MEDICAL_HISTORY_TTL`); key
    /// `phi:medical:{patient}:clinic:{clinic}:history`.
    pub async fn cache_medical_history<T: Value, E: Send + 'static>(
        &self,
        patient: &str,
        clinic: &str,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        let ttl = self.ttls.medical_history;
        self.clinic_scoped(&MEDICAL_HISTORY, ttl, patient, clinic, fetch)
            .await
    }

    /// Active prescriptions at one clinic (`CACHE_PRESCRIPTIONS_TTL`); key
    /// `phi:prescriptions:{patient}:clinic:{clinic}`.
    pub async fn cache_prescriptions<T: Value, E: Send + 'static>(
        &self,
        patient: &str,
        clinic: &str,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        let ttl = self.ttls.prescriptions;
        self.clinic_scoped(&PRESCRIPTIONS, ttl, patient, clinic, fetch)
            .await
    }

    /// Emergency data (`CACHE_EMERGENCY_DATA_TTL`, at most 5 minutes): never served stale.
    pub async fn cache_emergency_data<T: Value, E: Send + 'static>(
        &self,
        patient: &str,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        let p = self.h(patient);
        let ttl = self.ttls.emergency_data.min(EMERGENCY_MAX_TTL);
        // Never served stale: fresh for the whole TTL, then reloaded.
        let options = LoadOptions::ttl(ttl)
            .stale(ttl)
            .priority(cache_runtime::Priority::Critical)
            .tag(format!("patient:{p}"))
            .tag("emergency_data")
            .tag("phi_data");
        let key = format!("{PHI_NAMESPACE}patient:{p}:emergency");
        self.protected(
            "healthcare::cache_emergency_data",
            Area::Emergency,
            key,
            options,
            fetch,
        )
        .await
    }

    /// One appointment's details (`CACHE_APPOINTMENTS_TTL`); key
    /// `phi:appointment:{appointment}:details`, tags `appointment:{appointment}` (what
    /// [`invalidate_appointment`](Self::invalidate_appointment) invalidates), `appointments`
    /// and `phi_data`.
    pub async fn cache_appointment<T: Value, E: Send + 'static>(
        &self,
        appointment: &str,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        let a = self.h(appointment);
        let helper = "healthcare::cache_appointment";
        let ttl = capped(helper, self.ttls.appointments, Compliance::Sensitive);
        let options = LoadOptions::ttl(ttl)
            .tag(format!("appointment:{a}"))
            .tag("appointments")
            .tag("phi_data");
        let key = format!("{PHI_NAMESPACE}appointment:{a}:details");
        self.protected(helper, Area::Appointment, key, options, fetch)
            .await
    }

    /// A doctor's profile (`CACHE_DOCTOR_PROFILES_TTL`); key `phi:doctor:{doctor}:profile`,
    /// tags `doctor:{doctor}` (what [`invalidate_doctor`](Self::invalidate_doctor)
    /// invalidates), `doctor_profiles` and `phi_data`.
    pub async fn cache_doctor_profile<T: Value, E: Send + 'static>(
        &self,
        doctor: &str,
        fetch: impl Fetch<T, E>,
    ) -> Result<T, E> {
        let d = self.h(doctor);
        let helper = "healthcare::cache_doctor_profile";
        let ttl = capped(helper, self.ttls.doctor_profiles, Compliance::Sensitive);
        let options = LoadOptions::ttl(ttl)
            .tag(format!("doctor:{d}"))
            .tag("doctor_profiles")
            .tag("phi_data");
        let key = format!("{PHI_NAMESPACE}doctor:{d}:profile");
        self.protected(helper, Area::Doctor, key, options, fetch)
            .await
    }

    async fn invalidate(&self, helper: &'static str, inv: Invalidation) -> Result<u64, CacheError> {
        let what = [&inv.tags[..], &inv.patterns[..]].concat().join(" ");
        let result = self.cache.apply(&inv).await;
        let (outcome, count) = match &result {
            Ok(r) => ("ok", Some(r.keys + r.pattern_keys)),
            Err(_) => ("store_error", None),
        };
        self.cache
            .audit(helper, AuditOperation::Invalidate, outcome, &what, count);
        result.map(|r| r.keys + r.pattern_keys)
    }

    /// Everything cached for `patient`, with a receipt: entries tagged `patient:{patient}`
    /// are hidden at once, and every protected key holding the patient's hash is deleted from
    /// Redis and from every process's L1, then scanned for again to confirm that none is left
    /// (removing what a concurrent write put back). With `clinic`, also the clinic's patient
    /// lists (tag `clinic:{clinic}:patients`). The audit event carries the receipt.
    pub async fn invalidate_patient(
        &self,
        patient: &str,
        clinic: Option<&str>,
    ) -> Result<Erasure, CacheError> {
        self.ids_hashed()?;
        let p = self.h(patient);
        let mut inv = Invalidation::tags([format!("patient:{p}")])
            .and_patterns([format!("{PHI_NAMESPACE}*{p}*")]);
        if let Some(c) = clinic {
            inv = inv.and_tags([format!("clinic:{}:patients", self.h(c))]);
        }
        self.erase(
            "healthcare::invalidate_patient",
            AuditOperation::Invalidate,
            inv,
        )
        .await
    }

    async fn erase(
        &self,
        helper: &'static str,
        operation: AuditOperation,
        inv: Invalidation,
    ) -> Result<Erasure, CacheError> {
        let what = [&inv.tags[..], &inv.patterns[..]].concat().join(" ");
        let result = self.cache.erase(&inv).await;
        match &result {
            Ok(receipt) => self.cache.audit_erasure(helper, operation, &what, receipt),
            Err(_) => self
                .cache
                .audit(helper, operation, "store_error", &what, None),
        }
        result
    }

    /// Everything cached for `doctor` (tag `doctor:{doctor}`, hashed in protected entries and
    /// plain in others, and their keys); with `clinic`, also the clinic's doctor lists.
    pub async fn invalidate_doctor(
        &self,
        doctor: &str,
        clinic: Option<&str>,
    ) -> Result<u64, CacheError> {
        self.ids_hashed()?;
        let d = self.h(doctor);
        let raw = cache_runtime::escape(doctor);
        let mut inv = Invalidation::tags([format!("doctor:{d}"), format!("doctor:{raw}")])
            .and_patterns([format!("{PHI_NAMESPACE}*{d}*"), format!("doctor:{raw}:*")]);
        if let Some(c) = clinic {
            let c_raw = cache_runtime::escape(c);
            inv = inv.and_tags([
                format!("clinic:{}:doctors", self.h(c)),
                format!("clinic:{c_raw}:doctors"),
            ]);
        }
        self.invalidate("healthcare::invalidate_doctor", inv).await
    }

    /// One appointment, and the appointment lists of its patient, doctor and clinic.
    pub async fn invalidate_appointment(
        &self,
        appointment: &str,
        patient: Option<&str>,
        doctor: Option<&str>,
        clinic: Option<&str>,
    ) -> Result<u64, CacheError> {
        self.ids_hashed()?;
        let a = self.h(appointment);
        let mut inv = Invalidation::tags([format!("appointment:{a}")])
            .and_patterns([format!("{PHI_NAMESPACE}*{a}*")]);
        for (kind, id) in [("patient", patient), ("doctor", doctor), ("clinic", clinic)] {
            if let Some(id) = id {
                inv = inv.and_tags([format!("{kind}:{}:appointments", self.h(id))]);
            }
        }
        self.invalidate("healthcare::invalidate_appointment", inv)
            .await
    }

    /// Everything cached for `clinic` (tag `clinic:{clinic}`, hashed and plain).
    pub async fn invalidate_clinic(&self, clinic: &str) -> Result<u64, CacheError> {
        self.ids_hashed()?;
        let c = self.h(clinic);
        let raw = cache_runtime::escape(clinic);
        let inv = Invalidation::tags([format!("clinic:{c}"), format!("clinic:{raw}")])
            .and_patterns([format!("{PHI_NAMESPACE}*{c}*"), format!("clinic:{raw}:*")]);
        self.invalidate("healthcare::invalidate_clinic", inv).await
    }

    /// Removes every protected entry (the `phi:` namespace) and nothing else, from Redis and
    /// from every process's L1, and scans again to confirm that none is left; returns the
    /// receipt, which the audit event carries.
    pub async fn clear_phi(&self) -> Result<Erasure, CacheError> {
        let inv = Invalidation::patterns([format!("{PHI_NAMESPACE}*")]);
        self.erase("healthcare::clear_phi", AuditOperation::ClearPhi, inv)
            .await
    }
}
