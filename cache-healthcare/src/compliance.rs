//! Compliance levels and their TTL caps.

use std::time::Duration;

/// How sensitive cached health data is; each level caps the TTL of what it covers.
///
/// The caps follow the minimum-necessary principle: the more an entry would reveal, the
/// shorter it may outlive the request that loaded it.
///
/// | level | cap | for |
/// |---|---|---|
/// | `Standard` | 24 h | directory data with little patient context (clinic hours, doctor profiles) |
/// | `Sensitive` | 2 h | patient records, appointments, prescriptions, medical history |
/// | `Restricted` | 15 min | diagnoses, mental-health and substance-use records (42 CFR Part 2) |
///
/// Emergency data (`emergency = true`) is capped at 5 minutes whatever its level, and is never
/// served stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Compliance {
    /// 24 h cap.
    Standard,
    /// 2 h cap. The default of `#[patient_cache]`.
    #[default]
    Sensitive,
    /// 15 min cap.
    Restricted,
}

/// The TTL cap of emergency data.
pub const EMERGENCY_MAX_TTL: Duration = Duration::from_secs(300);

impl Compliance {
    /// The longest TTL this level allows.
    pub const fn max_ttl(self) -> Duration {
        match self {
            Compliance::Standard => Duration::from_secs(24 * 3600),
            Compliance::Sensitive => Duration::from_secs(2 * 3600),
            Compliance::Restricted => Duration::from_secs(15 * 60),
        }
    }

    /// `ttl`, lowered to this level's cap when above it.
    pub fn clamp(self, ttl: Duration) -> Duration {
        ttl.min(self.max_ttl())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_ttls() {
        assert_eq!(
            Compliance::Restricted.clamp(Duration::from_secs(3600)),
            Duration::from_secs(900)
        );
        assert_eq!(
            Compliance::Standard.clamp(Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}
