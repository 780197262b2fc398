//! Identifier newtypes: a parameter of one of these types in a `#[patient_cache]` (or
//! `#[invalidate_patient_cache]`) function is a declared identifier without
//! `patient = ".."`: keyed-hashed wherever it appears, and the source of the `patient:{hash}`
//! (`doctor:`, `clinic:`) tag the helpers invalidate. Their `Debug` never shows the value,
//! so a logged argument list leaks no identifier.

use cache_runtime::{KeyPart, KeyWriter};
use serde::{Deserialize, Serialize};

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            #[doc = concat!("A ", $what, " id.")]
            pub fn new(id: impl Into<String>) -> Self {
                $name(id.into())
            }

            /// The id itself, for the code that needs it (a database query); never log it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                $name(id.to_owned())
            }
        }

        impl KeyPart for $name {
            fn write_key_part(&self, out: &mut KeyWriter<'_>) {
                // Hashed by the expansion of a protected function before it reaches a key.
                out.write_str(&self.0);
            }
        }
    };
}

identifier!(
    /// A patient's id (an MRN, say): declares the parameter as `patient = ".."` would.
    ///
    /// ```
    /// use cache_healthcare::PatientId;
    ///
    /// let id = PatientId::new("MRN-0042");
    /// assert_eq!(format!("{id:?}"), "PatientId(<redacted>)");
    /// assert_eq!(id.expose(), "MRN-0042");
    /// ```
    PatientId,
    "patient"
);
identifier!(
    /// A doctor's id: declares the parameter as `doctor = ".."` would.
    DoctorId,
    "doctor"
);
identifier!(
    /// A clinic's id: declares the parameter as `clinic = ".."` would.
    ClinicId,
    "clinic"
);
