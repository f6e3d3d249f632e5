//! A depth limit for decoding: a wrapper around postcard's deserializer that counts how deep
//! the value being built is nested, and refuses a message nested deeper than [`MAX_DEPTH`].
//!
//! Why: decoding a recursive type (a `Data::List` of lists, a user's tree) recurses once per
//! level, on the reader's stack. postcard has no limit of its own, so a 20 KB frame of nested
//! one-element lists overflows an 8 MiB stack, and a stack overflow is an abort, not an error:
//! one hostile message would take the whole reading process down. With the limit it is a
//! [`DecodeError::TooDeep`](super::DecodeError::TooDeep).
//!
//! Why not the obvious alternatives: growing the stack on demand (the `serde_stacker` idea)
//! turns the abort into gigabytes of stack for a 16 MiB frame; a limit on each recursive type
//! of our own would leave every user type that recurses unprotected.
//!
//! Every way a value nests goes through the visitor: a sequence, tuple or struct
//! (`visit_seq`), a map (`visit_map`), an enum's variant (`visit_enum`), an option's content
//! (`visit_some`) or a newtype (`visit_newtype_struct`). Each of them costs one level for as long
//! as its content is being built.
//!
//! The wrapper also rations the length hints that sequences and maps give (which `Vec` and
//! `HashMap` use to reserve memory up front): every element takes at least one byte of the
//! frame, so all the hints of one message together may promise at most as many elements as the
//! frame has bytes. Without that, 60 nested lists in a 1 KB frame, each claiming as many
//! elements as there are bytes left, would reserve for 60 000 elements.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess};
use serde::de::{VariantAccess, Visitor};

/// How deeply a decoded value may nest (each sequence, struct, tuple, map, enum variant,
/// option and newtype inside another is one level). 128, as serde_json's default: far more
/// than real messages use, far less than what overflows a thread's stack.
pub const MAX_DEPTH: usize = 128;

/// What the wrappers share while one message is decoded.
pub(super) struct Budget {
    /// Levels still allowed below the current one.
    left: Cell<usize>,
    /// Set when the limit was hit, so the caller can tell that error from postcard's own.
    tripped: Cell<bool>,
    /// Elements the length hints may still promise (at first, the frame's length in bytes).
    elements: Cell<usize>,
    /// Set while a `deserialize_byte_buf` is being answered: the input may hand over the
    /// bytes in a `Vec` of their own.
    owned_wanted: Cell<bool>,
    /// The byte string the input handed over, until the visitor takes it.
    handed: Cell<Option<Vec<u8>>>,
}

impl Budget {
    pub(super) fn new(limit: usize, len: usize) -> Budget {
        Budget {
            left: Cell::new(limit),
            tripped: Cell::new(false),
            elements: Cell::new(len),
            owned_wanted: Cell::new(false),
            handed: Cell::new(None),
        }
    }

    /// Whether the byte string being taken now may be handed over as a `Vec` of its own
    /// (it is the body of a `deserialize_byte_buf`); asking answers only once.
    pub(super) fn take_owned_wanted(&self) -> bool {
        self.owned_wanted.replace(false)
    }

    /// Hand over the byte string just taken, in a `Vec` of its own: the visitor receives it
    /// with `visit_byte_buf` in place of the empty slice postcard passes on.
    pub(super) fn hand_over(&self, bytes: Vec<u8>) {
        self.handed.set(Some(bytes));
    }

    pub(super) fn tripped(&self) -> bool {
        self.tripped.get()
    }

    /// Go one level down, or fail.
    fn enter<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get() {
            0 => {
                self.tripped.set(true);
                Err(E::custom(format_args!(
                    "nested deeper than {MAX_DEPTH} levels"
                )))
            }
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }

    fn leave(&self) {
        self.left.set(self.left.get() + 1);
    }

    /// Run `f` one level down.
    fn nested<T, E: de::Error>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.enter()?;
        let out = f();
        self.leave();
        out
    }

    /// A length hint, rationed (see the module docs).
    fn hint(&self, hint: Option<usize>) -> Option<usize> {
        let n = hint?.min(self.elements.get());
        self.elements.set(self.elements.get() - n);
        Some(n)
    }
}

/// A deserializer whose visitors are counted.
pub(super) struct Limited<'b, D> {
    pub(super) de: D,
    pub(super) budget: &'b Budget,
}

struct LimitedVisitor<'b, V> {
    v: V,
    budget: &'b Budget,
}

struct LimitedSeed<'b, S> {
    seed: S,
    budget: &'b Budget,
}

struct LimitedAccess<'b, A> {
    a: A,
    budget: &'b Budget,
}

impl<'b, V> LimitedVisitor<'b, V> {
    fn new(v: V, budget: &'b Budget) -> Self {
        LimitedVisitor { v, budget }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => { $(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.de.$method(LimitedVisitor::new(visitor, self.budget))
        }
    )* };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Limited<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.budget.owned_wanted.set(true);
        let out = self
            .de
            .deserialize_byte_buf(LimitedVisitor::new(visitor, self.budget));
        self.budget.owned_wanted.set(false);
        out
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de
            .deserialize_unit_struct(name, LimitedVisitor::new(visitor, self.budget))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de
            .deserialize_newtype_struct(name, LimitedVisitor::new(visitor, self.budget))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de
            .deserialize_tuple(len, LimitedVisitor::new(visitor, self.budget))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de
            .deserialize_tuple_struct(name, len, LimitedVisitor::new(visitor, self.budget))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de
            .deserialize_struct(name, fields, LimitedVisitor::new(visitor, self.budget))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.de
            .deserialize_enum(name, variants, LimitedVisitor::new(visitor, self.budget))
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident($t:ty)),* $(,)?) => { $(
        fn $method<E: de::Error>(self, v: $t) -> Result<Self::Value, E> {
            self.v.$method(v)
        }
    )* };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for LimitedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.v.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        // An empty slice may stand for a byte string handed over whole (see the module docs).
        if v.is_empty()
            && let Some(owned) = self.budget.handed.take()
        {
            return self.v.visit_byte_buf(owned);
        }
        self.v.visit_bytes(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.v.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.v.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        let budget = self.budget;
        budget.nested(|| self.v.visit_some(Limited { de, budget }))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        let budget = self.budget;
        budget.nested(|| self.v.visit_newtype_struct(Limited { de, budget }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        let budget = self.budget;
        budget.nested(|| self.v.visit_seq(LimitedAccess { a, budget }))
    }

    fn visit_map<A: MapAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        let budget = self.budget;
        budget.nested(|| self.v.visit_map(LimitedAccess { a, budget }))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, a: A) -> Result<Self::Value, A::Error> {
        let budget = self.budget;
        budget.nested(|| self.v.visit_enum(LimitedAccess { a, budget }))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for LimitedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<S::Value, D::Error> {
        self.seed.deserialize(Limited {
            de,
            budget: self.budget,
        })
    }
}

impl<'b, S> LimitedSeed<'b, S> {
    fn new(seed: S, budget: &'b Budget) -> Self {
        LimitedSeed { seed, budget }
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for LimitedAccess<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.a
            .next_element_seed(LimitedSeed::new(seed, self.budget))
    }

    fn size_hint(&self) -> Option<usize> {
        self.budget.hint(self.a.size_hint())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for LimitedAccess<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.a.next_key_seed(LimitedSeed::new(seed, self.budget))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.a.next_value_seed(LimitedSeed::new(seed, self.budget))
    }

    fn size_hint(&self) -> Option<usize> {
        self.budget.hint(self.a.size_hint())
    }
}

impl<'b, 'de, A: EnumAccess<'de>> EnumAccess<'de> for LimitedAccess<'b, A> {
    type Error = A::Error;
    type Variant = LimitedAccess<'b, A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let budget = self.budget;
        let (value, a) = self.a.variant_seed(LimitedSeed::new(seed, budget))?;
        Ok((value, LimitedAccess { a, budget }))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for LimitedAccess<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.a.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.a
            .newtype_variant_seed(LimitedSeed::new(seed, self.budget))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.a
            .tuple_variant(len, LimitedVisitor::new(visitor, self.budget))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.a
            .struct_variant(fields, LimitedVisitor::new(visitor, self.budget))
    }
}
