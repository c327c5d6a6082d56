//! A serde `Serializer` that only walks the value and fails on the first non-finite float,
//! reporting its path (`a.b[3]`). Written by hand because serde_json silently writes NaN as
//! `null` and no small crate does this check.

use serde::ser::{self, Serialize};

#[derive(Debug)]
pub struct PathError(pub String);

impl std::fmt::Display for PathError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for PathError {}
impl ser::Error for PathError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        PathError(msg.to_string())
    }
}

#[derive(Default)]
pub struct NanCheck {
    path: Vec<String>,
}

impl NanCheck {
    fn here(&self) -> String {
        let mut s = String::new();
        for p in &self.path {
            if p.starts_with('[') || s.is_empty() {
                s.push_str(p);
            } else {
                s.push('.');
                s.push_str(p);
            }
        }
        if s.is_empty() {
            "<root>".to_string()
        } else {
            s
        }
    }
    fn float(&self, x: f64) -> Result<(), PathError> {
        if x.is_finite() {
            Ok(())
        } else {
            Err(PathError(self.here()))
        }
    }
    fn nested<T: ?Sized + Serialize>(&mut self, seg: String, v: &T) -> Result<(), PathError> {
        self.path.push(seg);
        let r = v.serialize(&mut *self);
        self.path.pop();
        r
    }
}

pub struct Compound<'a> {
    c: &'a mut NanCheck,
    index: usize,
    key: Option<String>,
}

type R = Result<(), PathError>;

impl<'a> ser::Serializer for &'a mut NanCheck {
    type Ok = ();
    type Error = PathError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, _: bool) -> R {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> R {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> R {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> R {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> R {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> R {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> R {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> R {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> R {
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> R {
        self.float(v as f64)
    }
    fn serialize_f64(self, v: f64) -> R {
        self.float(v)
    }
    fn serialize_char(self, _: char) -> R {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> R {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> R {
        Ok(())
    }
    fn serialize_none(self) -> R {
        Ok(())
    }
    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_unit(self) -> R {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> R {
        Ok(())
    }
    fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> R {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> R {
        self.nested(variant.to_string(), v)
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound<'a>, PathError> {
        Ok(Compound {
            c: self,
            index: 0,
            key: None,
        })
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound<'a>, PathError> {
        Ok(Compound {
            c: self,
            index: 0,
            key: None,
        })
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, PathError> {
        Ok(Compound {
            c: self,
            index: 0,
            key: None,
        })
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, PathError> {
        Ok(Compound {
            c: self,
            index: 0,
            key: None,
        })
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound<'a>, PathError> {
        Ok(Compound {
            c: self,
            index: 0,
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound<'a>, PathError> {
        Ok(Compound {
            c: self,
            index: 0,
            key: None,
        })
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Compound<'a>, PathError> {
        Ok(Compound {
            c: self,
            index: 0,
            key: None,
        })
    }
}

impl Compound<'_> {
    fn element<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        let seg = format!("[{}]", self.index);
        self.index += 1;
        self.c.nested(seg, v)
    }
    fn field<T: ?Sized + Serialize>(&mut self, name: &str, v: &T) -> R {
        self.c.nested(name.to_string(), v)
    }
}

macro_rules! seq_like {
    ($($t:ident :: $m:ident),*) => {$(
        impl ser::$t for Compound<'_> {
            type Ok = ();
            type Error = PathError;
            fn $m<T: ?Sized + Serialize>(&mut self, v: &T) -> R { self.element(v) }
            fn end(self) -> R { Ok(()) }
        }
    )*};
}
seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = PathError;
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> R {
        self.key = Some(
            serde_json::to_string(k)
                .map(|s| s.trim_matches('"').to_string())
                .unwrap_or_default(),
        );
        Ok(())
    }
    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> R {
        let k = self.key.take().unwrap_or_default();
        self.field(&k, v)
    }
    fn end(self) -> R {
        Ok(())
    }
}

macro_rules! struct_like {
    ($($t:ident),*) => {$(
        impl ser::$t for Compound<'_> {
            type Ok = ();
            type Error = PathError;
            fn serialize_field<T: ?Sized + Serialize>(&mut self, name: &'static str, v: &T) -> R {
                self.field(name, v)
            }
            fn end(self) -> R { Ok(()) }
        }
    )*};
}
struct_like!(SerializeStruct, SerializeStructVariant);
