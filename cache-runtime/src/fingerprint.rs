//! The shape of a type, as its `Deserialize` implementation asks for it: a fingerprint that
//! changes when a deploy changes the type a cached function returns.
//!
//! A proc macro sees the name of the return type, not its definition, so the shape is traced
//! at run time instead: [`shape_of`] drives `T::deserialize` with a deserializer that records
//! every request (`struct User { id, name, roles }`, `seq`, `option`, `u64`, `str`, the names
//! of an enum's variants, …) and answers each with a placeholder value (zero, an empty
//! string, one element per sequence and map), so the whole tree is visited once. [`of`] hashes
//! the record (SHA-256, first 64 bits, as 16 hex digits).
//!
//! What it catches: a field added, removed, renamed or reordered; a field whose type changes
//! between kinds serde tells apart (`u32` → `u64` or `String`, `T` → `Option<T>`, `Vec<T>` →
//! `T`, a nested struct renamed); an enum variant added, removed or renamed. What it does not:
//! types serde asks for alike (`String` → `Box<str>`); the content of enum variants after the
//! first, which are never visited; types whose `Deserialize` asks for `deserialize_any`
//! (`#[serde(flatten)]`, `#[serde(untagged)]`, `serde_json::Value`, many hand-written impls):
//! the record stops there, so only what came before it counts; a
//! hand-written `Deserialize` whose requests do not depend on its fields; validation
//! (`NonZeroU64` refusing the placeholder zero) ends the record early too. Recursive types
//! are traced to a depth of 12, where options are `None` and collections empty.

use std::fmt::Write as _;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
use sha2::{Digest, Sha256};

/// Past this depth an `Option` is traced as `None` and a sequence or map as empty, so that a
/// recursive type (a tree of nodes) ends its trace, the same way in every build.
const OPEN_DEPTH: usize = 12;
/// A trace deeper than this stops (a type that recurses without an `Option` or a collection).
const MAX_DEPTH: usize = 32;

/// The fingerprint of `T`'s shape: 16 hex digits, the same in every build for the same shape.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct User { id: u64, name: String }
/// #[derive(serde::Deserialize)]
/// struct Renamed { id: u64, full_name: String }
///
/// let user = cache_runtime::fingerprint::of::<User>();
/// assert_eq!(user.len(), 16);
/// assert_eq!(user, cache_runtime::fingerprint::of::<User>());
/// assert_ne!(user, cache_runtime::fingerprint::of::<Renamed>());
/// ```
pub fn of<T: DeserializeOwned>() -> String {
    let digest = Sha256::digest(shape_of::<T>().as_bytes());
    let mut out = String::with_capacity(16);
    for b in &digest[..8] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The fingerprint of `T`'s shape as the number entries carry.
pub(crate) fn hash<T: DeserializeOwned>() -> u64 {
    let digest = Sha256::digest(shape_of::<T>().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The shape of `T` as its `Deserialize` asks for it, in a compact text form.
pub fn shape_of<T: DeserializeOwned>() -> String {
    let mut record = String::new();
    let _ = T::deserialize(Tracer {
        out: &mut record,
        depth: 0,
    });
    record
}

/// Why a trace stopped.
#[derive(Debug)]
struct Stop(String);

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(msg: M) -> Self {
        Stop(msg.to_string())
    }
}

struct Tracer<'r> {
    out: &'r mut String,
    depth: usize,
}

impl<'r> Tracer<'r> {
    fn mark(&mut self, what: &str) {
        self.out.push_str(what);
        self.out.push(' ');
    }

    fn nested(&mut self) -> Result<Tracer<'_>, Stop> {
        if self.depth >= MAX_DEPTH {
            self.mark("…");
            return Err(Stop("too deep".to_owned()));
        }
        Ok(Tracer {
            out: self.out,
            depth: self.depth + 1,
        })
    }
}

macro_rules! primitive {
    ($($method:ident => $visit:ident($($value:expr)?)),* $(,)?) => {
        $(fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
            self.mark(stringify!($method));
            visitor.$visit($($value)?)
        })*
    };
}

impl<'de> de::Deserializer<'de> for Tracer<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(mut self, _: V) -> Result<V::Value, Stop> {
        self.mark("any");
        Err(Stop("deserialize_any".to_owned()))
    }

    primitive! {
        deserialize_bool => visit_bool(false),
        deserialize_i8 => visit_i8(0),
        deserialize_i16 => visit_i16(0),
        deserialize_i32 => visit_i32(0),
        deserialize_i64 => visit_i64(0),
        deserialize_i128 => visit_i128(0),
        deserialize_u8 => visit_u8(0),
        deserialize_u16 => visit_u16(0),
        deserialize_u32 => visit_u32(0),
        deserialize_u64 => visit_u64(0),
        deserialize_u128 => visit_u128(0),
        deserialize_f32 => visit_f32(0.0),
        deserialize_f64 => visit_f64(0.0),
        deserialize_char => visit_char('a'),
        deserialize_str => visit_str(""),
        deserialize_string => visit_string(String::new()),
        deserialize_bytes => visit_bytes(&[]),
        deserialize_byte_buf => visit_byte_buf(Vec::new()),
        deserialize_unit => visit_unit(),
        deserialize_identifier => visit_str(""),
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Stop> {
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.mark("option");
        if self.depth >= OPEN_DEPTH {
            return visitor.visit_none();
        }
        visitor.visit_some(self.nested()?)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.mark(&format!("unit {name}"));
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.mark(&format!("newtype {name}"));
        visitor.visit_newtype_struct(self.nested()?)
    }

    fn deserialize_seq<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.mark("seq");
        let depth = self.depth;
        visitor.visit_seq(Elements {
            out: self.out,
            depth,
            left: usize::from(depth < OPEN_DEPTH),
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        mut self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.mark(&format!("tuple {len}"));
        let depth = self.depth;
        visitor.visit_seq(Elements {
            out: self.out,
            depth,
            left: len,
        })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.mark(&format!("tuple_struct {name} {len}"));
        let depth = self.depth;
        visitor.visit_seq(Elements {
            out: self.out,
            depth,
            left: len,
        })
    }

    fn deserialize_map<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value, Stop> {
        self.mark("map");
        let depth = self.depth;
        visitor.visit_map(Entries {
            out: self.out,
            depth,
            left: usize::from(depth < OPEN_DEPTH),
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.mark(&format!("struct {name} {{{}}}", fields.join(",")));
        // Fields as a sequence, in declaration order: every field is visited once.
        let depth = self.depth;
        visitor.visit_seq(Elements {
            out: self.out,
            depth,
            left: fields.len(),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        mut self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        self.mark(&format!("enum {name} {{{}}}", variants.join(",")));
        let depth = self.depth;
        visitor.visit_enum(FirstVariant {
            out: self.out,
            depth,
        })
    }
}

/// `left` elements, each traced.
struct Elements<'r> {
    out: &'r mut String,
    depth: usize,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_> {
    type Error = Stop;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut tracer = Tracer {
            out: self.out,
            depth: self.depth,
        };
        seed.deserialize(tracer.nested()?).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

/// `left` entries, keys and values traced.
struct Entries<'r> {
    out: &'r mut String,
    depth: usize,
    left: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_> {
    type Error = Stop;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Stop> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let mut tracer = Tracer {
            out: self.out,
            depth: self.depth,
        };
        seed.deserialize(tracer.nested()?).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Stop> {
        let mut tracer = Tracer {
            out: self.out,
            depth: self.depth,
        };
        seed.deserialize(tracer.nested()?)
    }
}

/// The first variant of an enum, its content traced.
struct FirstVariant<'r> {
    out: &'r mut String,
    depth: usize,
}

impl<'de, 'r> de::EnumAccess<'de> for FirstVariant<'r> {
    type Error = Stop;
    type Variant = Tracer<'r>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Tracer<'r>), Stop> {
        let index: de::value::U32Deserializer<Stop> = 0u32.into_deserializer();
        let value = seed.deserialize(index)?;
        Ok((
            value,
            Tracer {
                out: self.out,
                depth: self.depth,
            },
        ))
    }
}

impl<'de> de::VariantAccess<'de> for Tracer<'_> {
    type Error = Stop;

    fn unit_variant(self) -> Result<(), Stop> {
        Ok(())
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(mut self, seed: S) -> Result<S::Value, Stop> {
        seed.deserialize(self.nested()?)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Stop> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Stop> {
        de::Deserializer::deserialize_struct(self, "", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Role {
        name: String,
        level: u8,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct User {
        id: u64,
        name: String,
        roles: Vec<Role>,
        manager: Option<Box<User>>,
        by_site: HashMap<String, u32>,
        state: State,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    enum State {
        Active { since: u64 },
        Gone,
    }

    mod v2 {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct Role {
            pub name: String,
            pub level: u16,
        }

        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        pub struct User {
            pub id: u64,
            pub name: String,
            pub roles: Vec<Role>,
        }
    }

    #[test]
    fn nested_shapes_are_recorded() {
        let shape = shape_of::<User>();
        for part in [
            "struct User {id,name,roles,manager,by_site,state}",
            "struct Role {name,level}",
            "deserialize_u8",
            "option",
            "map deserialize_string deserialize_u32",
            "enum State {Active,Gone}",
        ] {
            assert!(shape.contains(part), "{part} missing from {shape}");
        }
    }

    #[test]
    fn the_same_shape_gives_the_same_fingerprint_and_a_change_another() {
        assert_eq!(of::<User>(), of::<User>());
        // Pinned: a fingerprint that changed between builds of one shape would empty caches.
        assert_eq!(
            shape_of::<(u64, String)>(),
            "tuple 2 deserialize_u64 deserialize_string "
        );
        assert_eq!(of::<(u64, String)>(), "3f7914ba206ba15a");
        assert_ne!(of::<u32>(), of::<u64>());
        assert_ne!(of::<u32>(), of::<Option<u32>>());
        assert_ne!(
            of::<User>(),
            of::<v2::User>(),
            "fields removed, a nested type changed"
        );
    }

    #[test]
    fn deserialize_any_ends_the_record() {
        #[derive(Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Either {
            A(u32),
            B(String),
        }
        assert_eq!(shape_of::<Either>(), "any ");
    }
}
