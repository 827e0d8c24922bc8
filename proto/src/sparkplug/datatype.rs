//! The Sparkplug B metric datatypes and what a metric's value is to citytel.
//!
//! citytel stores numbers as series and keeps text as a device's latest attribute values:
//! - integers (Int8 ... UInt64), Float, Double: a number (signed integers are read from their
//!   two's complement, whichever width the sender encoded them in);
//! - Boolean: a number, 1 for true and 0 for false;
//! - String, Text, UUID: a text;
//! - DateTime: a text, the decimal milliseconds since the Unix epoch;
//! - Bytes, File, DataSet, Template, PropertySet, PropertySetList and the array types: not
//!   interpreted ([`Value::Unsupported`]);
//! - a metric with `is_null` set: [`Value::Null`].

use std::fmt;

use super::pb::payload::Metric;
use super::pb::payload::metric::Value as Wire;

/// A metric datatype, by its number in the specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum DataType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float,
    Double,
    Boolean,
    String,
    DateTime,
    Text,
    Uuid,
    /// DataSet, Bytes, File, Template, PropertySet, PropertySetList, the array types: the
    /// number as sent.
    Other(u32),
}

impl DataType {
    /// The datatype with number `code`; `None` for 0 (Unknown) and numbers past the last array
    /// type (34).
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => DataType::Int8,
            2 => DataType::Int16,
            3 => DataType::Int32,
            4 => DataType::Int64,
            5 => DataType::UInt8,
            6 => DataType::UInt16,
            7 => DataType::UInt32,
            8 => DataType::UInt64,
            9 => DataType::Float,
            10 => DataType::Double,
            11 => DataType::Boolean,
            12 => DataType::String,
            13 => DataType::DateTime,
            14 => DataType::Text,
            15 => DataType::Uuid,
            16..=34 => DataType::Other(code),
            _ => return None,
        })
    }

    /// The datatype's number.
    pub fn code(self) -> u32 {
        match self {
            DataType::Int8 => 1,
            DataType::Int16 => 2,
            DataType::Int32 => 3,
            DataType::Int64 => 4,
            DataType::UInt8 => 5,
            DataType::UInt16 => 6,
            DataType::UInt32 => 7,
            DataType::UInt64 => 8,
            DataType::Float => 9,
            DataType::Double => 10,
            DataType::Boolean => 11,
            DataType::String => 12,
            DataType::DateTime => 13,
            DataType::Text => 14,
            DataType::Uuid => 15,
            DataType::Other(code) => code,
        }
    }

    /// The datatype's name in the specification (`Int8` ... `UUID`); `Other` for the types
    /// citytel does not interpret.
    pub fn name(self) -> &'static str {
        match self {
            DataType::Int8 => "Int8",
            DataType::Int16 => "Int16",
            DataType::Int32 => "Int32",
            DataType::Int64 => "Int64",
            DataType::UInt8 => "UInt8",
            DataType::UInt16 => "UInt16",
            DataType::UInt32 => "UInt32",
            DataType::UInt64 => "UInt64",
            DataType::Float => "Float",
            DataType::Double => "Double",
            DataType::Boolean => "Boolean",
            DataType::String => "String",
            DataType::DateTime => "DateTime",
            DataType::Text => "Text",
            DataType::Uuid => "UUID",
            DataType::Other(_) => "Other",
        }
    }
}

/// What a metric's value is to citytel.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number (integers, Float, Double, Boolean as 0/1): a series value.
    Number(f64),
    /// A text (String, Text, UUID, DateTime): an attribute value.
    Text(String),
    /// The metric is null.
    Null,
    /// A datatype citytel does not interpret.
    Unsupported,
}

/// The value field does not match the metric's datatype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// The declared datatype.
    pub datatype: DataType,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metric of datatype {} carries no value of its type",
            self.datatype.code()
        )
    }
}

impl std::error::Error for ValueError {}

/// Reads `metric`'s value as `datatype` (declared in its birth).
pub fn value(metric: &Metric, datatype: DataType) -> Result<Value, ValueError> {
    if metric.is_null == Some(true) {
        return Ok(Value::Null);
    }
    let wrong = || ValueError { datatype };
    let wire = metric.value.as_ref();
    let int = || match wire {
        Some(Wire::IntValue(v)) => Ok(*v),
        _ => Err(wrong()),
    };
    let long = || match wire {
        Some(Wire::LongValue(v)) => Ok(*v),
        _ => Err(wrong()),
    };
    // Narrow signed values are read from their low bits: senders encode them sign-extended to
    // 32 bits or masked to their width, and both read the same.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    Ok(match datatype {
        DataType::Int8 => Value::Number(f64::from(int()? as u8 as i8)),
        DataType::Int16 => Value::Number(f64::from(int()? as u16 as i16)),
        DataType::Int32 => Value::Number(f64::from(int()? as i32)),
        DataType::Int64 => Value::Number(long()? as i64 as f64),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => Value::Number(f64::from(int()?)),
        DataType::UInt64 => Value::Number(long()? as f64),
        DataType::Float => match wire {
            Some(Wire::FloatValue(v)) => Value::Number(f64::from(*v)),
            _ => return Err(wrong()),
        },
        DataType::Double => match wire {
            Some(Wire::DoubleValue(v)) => Value::Number(*v),
            _ => return Err(wrong()),
        },
        DataType::Boolean => match wire {
            Some(Wire::BooleanValue(v)) => Value::Number(if *v { 1.0 } else { 0.0 }),
            _ => return Err(wrong()),
        },
        DataType::String | DataType::Text | DataType::Uuid => match wire {
            Some(Wire::StringValue(v)) => Value::Text(v.clone()),
            _ => return Err(wrong()),
        },
        DataType::DateTime => Value::Text(long()?.to_string()),
        DataType::Other(_) => Value::Unsupported,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(value: Wire) -> Metric {
        Metric {
            value: Some(value),
            ..Metric::default()
        }
    }

    #[test]
    fn reads_every_interpreted_datatype() {
        let cases = [
            (
                DataType::Int8,
                Wire::IntValue(0xFFFF_FFFB),
                Value::Number(-5.0),
            ),
            (DataType::Int8, Wire::IntValue(0xFB), Value::Number(-5.0)),
            (DataType::Int16, Wire::IntValue(0xFFFE), Value::Number(-2.0)),
            (
                DataType::Int32,
                Wire::IntValue(u32::MAX),
                Value::Number(-1.0),
            ),
            (
                DataType::Int64,
                Wire::LongValue(u64::MAX),
                Value::Number(-1.0),
            ),
            (DataType::UInt8, Wire::IntValue(200), Value::Number(200.0)),
            (
                DataType::UInt32,
                Wire::IntValue(u32::MAX),
                Value::Number(4_294_967_295.0),
            ),
            (
                DataType::UInt64,
                Wire::LongValue(1 << 40),
                Value::Number((1u64 << 40) as f64),
            ),
            (DataType::Float, Wire::FloatValue(1.5), Value::Number(1.5)),
            (
                DataType::Double,
                Wire::DoubleValue(-0.25),
                Value::Number(-0.25),
            ),
            (
                DataType::Boolean,
                Wire::BooleanValue(true),
                Value::Number(1.0),
            ),
            (
                DataType::Boolean,
                Wire::BooleanValue(false),
                Value::Number(0.0),
            ),
            (
                DataType::String,
                Wire::StringValue("on".into()),
                Value::Text("on".into()),
            ),
            (
                DataType::Text,
                Wire::StringValue("t".into()),
                Value::Text("t".into()),
            ),
            (
                DataType::DateTime,
                Wire::LongValue(1_700_000_000_000),
                Value::Text("1700000000000".into()),
            ),
            (
                DataType::Other(17),
                Wire::BytesValue(vec![1, 2]),
                Value::Unsupported,
            ),
        ];
        for (datatype, wire, want) in cases {
            assert_eq!(
                value(&metric(wire.clone()), datatype),
                Ok(want),
                "{datatype:?} {wire:?}"
            );
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_and_null_are_told_apart() {
        assert_eq!(
            value(&metric(Wire::StringValue("x".into())), DataType::Double),
            Err(ValueError {
                datatype: DataType::Double
            })
        );
        assert!(value(&Metric::default(), DataType::Int32).is_err());
        let null = Metric {
            is_null: Some(true),
            ..Metric::default()
        };
        assert_eq!(value(&null, DataType::Int32), Ok(Value::Null));
    }

    #[test]
    fn datatype_codes_round_trip() {
        for code in 1..=34 {
            assert_eq!(DataType::from_code(code).map(DataType::code), Some(code));
        }
        assert_eq!(DataType::from_code(0), None);
        assert_eq!(DataType::from_code(35), None);
    }
}
