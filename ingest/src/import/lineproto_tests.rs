//! The line protocol parser against the reference's examples and edge cases, and write -> parse
//! round trips.

use std::borrow::Cow;

use proptest::prelude::*;

use super::lineproto::{FieldValue, Line, ParseErrorKind, parse_into, parse_line, write_line};

/// A parsed line in owned, comparable form: measurement, tags, fields, timestamp.
type Owned = (
    String,
    Vec<(String, String)>,
    Vec<(String, Value)>,
    Option<i64>,
);

#[derive(Debug, Clone, PartialEq)]
enum Value {
    F(f64),
    I(i64),
    U(u64),
    B(bool),
    S(String),
}

fn owned(line: &Line<'_>) -> Owned {
    let value = |v: &FieldValue<'_>| match v {
        FieldValue::Float(v) => Value::F(*v),
        FieldValue::Integer(v) => Value::I(*v),
        FieldValue::UInteger(v) => Value::U(*v),
        FieldValue::Boolean(v) => Value::B(*v),
        FieldValue::String(v) => Value::S(v.to_string()),
    };
    (
        line.measurement.to_string(),
        line.tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        line.fields
            .iter()
            .map(|(k, v)| (k.to_string(), value(v)))
            .collect(),
        line.timestamp,
    )
}

fn parse(text: &str) -> Owned {
    match parse_line(text) {
        Ok(Some(line)) => owned(&line),
        other => panic!("{text:?} did not parse: {other:?}"),
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fields(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[test]
fn parses_the_reference_examples() {
    use Value::*;
    let cases: Vec<(&str, Owned)> = vec![
        (
            "myMeasurement,tag1=value1,tag2=value2 fieldKey=\"fieldValue\" 1556813561098000000",
            (
                "myMeasurement".into(),
                tags(&[("tag1", "value1"), ("tag2", "value2")]),
                fields(&[("fieldKey", S("fieldValue".into()))]),
                Some(1_556_813_561_098_000_000),
            ),
        ),
        (
            "home,room=Kitchen temp=22.5,hum=36.2,co=0i 1641024000",
            (
                "home".into(),
                tags(&[("room", "Kitchen")]),
                fields(&[("temp", F(22.5)), ("hum", F(36.2)), ("co", I(0))]),
                Some(1_641_024_000),
            ),
        ),
        (
            "weather temperature=82 1465839830100400200",
            (
                "weather".into(),
                vec![],
                fields(&[("temperature", F(82.0))]),
                Some(1_465_839_830_100_400_200),
            ),
        ),
        (
            "m f=1",
            ("m".into(), vec![], fields(&[("f", F(1.0))]), None),
        ),
        (
            "my\\ Measurement fieldKey=\"string value\"",
            (
                "my Measurement".into(),
                vec![],
                fields(&[("fieldKey", S("string value".into()))]),
                None,
            ),
        ),
        (
            "myMeasurement fieldKey=\"\\\"string\\\" within a string\"",
            (
                "myMeasurement".into(),
                vec![],
                fields(&[("fieldKey", S("\"string\" within a string".into()))]),
                None,
            ),
        ),
        (
            "myMeasurement,tag\\ Key1=tag\\ Value1,tag\\ Key2=tag\\ Value2 fieldKey=100",
            (
                "myMeasurement".into(),
                tags(&[("tag Key1", "tag Value1"), ("tag Key2", "tag Value2")]),
                fields(&[("fieldKey", F(100.0))]),
                None,
            ),
        ),
        (
            "myMeasurement,tagKey=🍭 fieldKey=\"Launch 🚀\" 1556813561098000000",
            (
                "myMeasurement".into(),
                tags(&[("tagKey", "🍭")]),
                fields(&[("fieldKey", S("Launch 🚀".into()))]),
                Some(1_556_813_561_098_000_000),
            ),
        ),
        (
            "cpu,host=a\\,b\\=c,x=y\\\\ f\\=k\\,2=1",
            (
                "cpu".into(),
                tags(&[("host", "a,b=c"), ("x", "y\\")]),
                fields(&[("f=k,2", F(1.0))]),
                None,
            ),
        ),
        (
            // Backslashes before other characters are literal; `=` needs no escape in a
            // measurement.
            "path\\to=x,k=C:\\dir f=\"a\\b\\\\c\"",
            (
                "path\\to=x".into(),
                tags(&[("k", "C:\\dir")]),
                fields(&[("f", S("a\\b\\c".into()))]),
                None,
            ),
        ),
        (
            "m s=\"with, commas and spaces= \",n=-1.5e-3,e=1E6,d=.5,x=-0",
            (
                "m".into(),
                vec![],
                fields(&[
                    ("s", S("with, commas and spaces= ".into())),
                    ("n", F(-1.5e-3)),
                    ("e", F(1e6)),
                    ("d", F(0.5)),
                    ("x", F(-0.0)),
                ]),
                None,
            ),
        ),
        (
            "m i=-9223372036854775808i,u=18446744073709551615u,b1=t,b2=T,b3=true,b4=True,b5=TRUE,c1=f,c2=F,c3=false,c4=False,c5=FALSE -1",
            (
                "m".into(),
                vec![],
                fields(&[
                    ("i", I(i64::MIN)),
                    ("u", U(u64::MAX)),
                    ("b1", B(true)),
                    ("b2", B(true)),
                    ("b3", B(true)),
                    ("b4", B(true)),
                    ("b5", B(true)),
                    ("c1", B(false)),
                    ("c2", B(false)),
                    ("c3", B(false)),
                    ("c4", B(false)),
                    ("c5", B(false)),
                ]),
                Some(-1),
            ),
        ),
        (
            "m s=\"\" 5",
            (
                "m".into(),
                vec![],
                fields(&[("s", S(String::new()))]),
                Some(5),
            ),
        ),
        (
            // Leading indentation, trailing spaces, tabs and CRLF are ignored.
            "  m,t=v f=1   2  \t\r",
            (
                "m".into(),
                tags(&[("t", "v")]),
                fields(&[("f", F(1.0))]),
                Some(2),
            ),
        ),
        (
            "m f=1\r",
            ("m".into(), vec![], fields(&[("f", F(1.0))]), None),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse(text), want, "{text}");
    }
}

#[test]
fn skips_comments_and_blank_lines() {
    for text in [
        "",
        "   ",
        "\r",
        "# a comment",
        "  # indented comment",
        "#m f=1 1",
    ] {
        assert_eq!(parse_line(text), Ok(None), "{text:?}");
    }
}

#[test]
fn reports_the_column_and_reason_of_bad_lines() {
    use ParseErrorKind::*;
    let cases = [
        ("m", 2, MissingFields),
        ("m,t=v", 6, MissingFields),
        ("m ", 2, MissingFields),
        (",t=v f=1", 1, MissingMeasurement),
        (" ,t=v f=1", 2, MissingMeasurement),
        ("m,=v f=1", 3, MissingTagKey),
        ("m,t f=1", 4, MissingTagEquals),
        ("m,t= f=1", 5, EmptyTagValue),
        ("m,t=a=b f=1", 6, UnescapedEquals),
        ("m =1", 3, MissingFieldKey),
        ("m f", 4, MissingFieldEquals),
        ("m f= 1", 5, MissingFieldValue),
        ("m f=1,", 7, MissingFieldKey),
        ("m f=1,g=", 9, MissingFieldValue),
        ("m f=\"abc", 5, UnterminatedString),
        ("m f=\"abc\\\"", 5, UnterminatedString),
        ("m f=\"a\"b", 8, TextAfterString),
        ("m f=1.5i", 5, InvalidInteger),
        ("m f=99999999999999999999i", 5, InvalidInteger),
        ("m f=-1u", 5, InvalidUnsigned),
        ("m f=abc", 5, InvalidValue),
        ("m f=inf", 5, InvalidValue),
        ("m f=NaN", 5, InvalidValue),
        ("m f=-inf", 5, InvalidValue),
        ("m f=+1", 5, InvalidValue),
        ("m f=1..2", 5, InvalidValue),
        ("m f=tru", 5, InvalidValue),
        ("m f=1 12x", 7, InvalidTimestamp),
        ("m f=1 1.5", 7, InvalidTimestamp),
        ("m f=1 99999999999999999999", 7, InvalidTimestamp),
        ("m f=1 1 2", 9, TextAfterTimestamp),
    ];
    for (text, column, kind) in cases {
        let error = parse_line(text).expect_err(text);
        assert_eq!((error.column, error.kind), (column, kind), "{text:?}");
        assert!(error.to_string().starts_with(&format!("column {column}: ")));
    }
}

#[test]
fn names_without_escapes_are_borrowed() {
    let text = "cpu,host=a f=1,s=\"x\" 1";
    let line = parse_line(text).expect("parses").expect("a line");
    assert!(matches!(line.measurement, Cow::Borrowed(_)));
    assert!(
        line.tags
            .iter()
            .all(|(k, v)| matches!((k, v), (Cow::Borrowed(_), Cow::Borrowed(_))))
    );
    assert!(matches!(
        line.fields[1].1,
        FieldValue::String(Cow::Borrowed(_))
    ));
    let escaped = parse_line("c\\ pu f=1").expect("parses").expect("a line");
    assert!(matches!(escaped.measurement, Cow::Owned(_)));
}

#[test]
fn parse_into_reuses_the_line() {
    let mut line = Line::default();
    assert_eq!(parse_into("a,t=1 f=1,g=2 3", &mut line), Ok(true));
    assert_eq!(parse_into("b h=1", &mut line), Ok(true));
    assert_eq!(
        (line.tags.len(), line.fields.len(), line.timestamp),
        (0, 1, None)
    );
    assert_eq!(parse_into("# comment", &mut line), Ok(false));
    assert!(line.fields.is_empty());
}

#[test]
fn writes_the_documented_shape() {
    let mut out = String::new();
    write_line(
        &mut out,
        "cabinet",
        &[
            ("device_id", "cab-0001"),
            ("kind", "cabinet"),
            ("site", "site-01"),
        ],
        &[
            ("temperature_c", 21.3),
            ("door_open", 0.0),
            ("optical_rx_dbm", -14.25),
        ],
        1_795_651_200_000_000_000,
    );
    assert_eq!(
        out,
        "cabinet,device_id=cab-0001,kind=cabinet,site=site-01 temperature_c=21.3,door_open=0,\
         optical_rx_dbm=-14.25 1795651200000000000\n"
    );
    out.clear();
    write_line(
        &mut out,
        "a b,c=d\\",
        &[("k=1, ", "v\\")],
        &[("f,=", 1.5)],
        -5,
    );
    assert_eq!(out, "a\\ b\\,c=d\\\\,k\\=1\\,\\ =v\\\\ f\\,\\==1.5 -5\n");
    assert_eq!(
        parse(out.trim_end()),
        (
            "a b,c=d\\".to_string(),
            tags(&[("k=1, ", "v\\")]),
            fields(&[("f,=", Value::F(1.5))]),
            Some(-5)
        )
    );
}

/// Names with every character line protocol treats specially, and some unicode.
fn name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9 ,=\"\\\\_#\t.é日🍭-]{1,16}").expect("valid regex")
}

proptest! {
    #[test]
    fn write_then_parse_round_trips(
        measurement in name().prop_filter("a leading # or tab cannot be written", |m| !m.starts_with(['#', '\t'])),
        tag_pairs in proptest::collection::vec((name(), name()), 0..4),
        field_pairs in proptest::collection::vec((name(), any::<f64>().prop_filter("finite", |v| v.is_finite())), 1..4),
        ts in any::<i64>(),
    ) {
        let tag_refs: Vec<(&str, &str)> = tag_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let field_refs: Vec<(&str, f64)> = field_pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let mut out = String::new();
        write_line(&mut out, &measurement, &tag_refs, &field_refs, ts);
        prop_assert!(out.ends_with('\n'));
        let line = parse_line(&out[..out.len() - 1]).map_err(|e| TestCaseError::fail(format!("{e}: {out}")))?;
        let line = line.ok_or_else(|| TestCaseError::fail("parsed as a comment"))?;
        prop_assert_eq!(line.measurement.as_ref(), measurement.as_str());
        let got_tags: Vec<(&str, &str)> = line.tags.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        prop_assert_eq!(got_tags, tag_refs);
        prop_assert_eq!(line.fields.len(), field_refs.len());
        for ((key, value), (want_key, want)) in line.fields.iter().zip(&field_refs) {
            prop_assert_eq!(key.as_ref(), *want_key);
            match value {
                FieldValue::Float(v) => prop_assert_eq!(v.to_bits(), want.to_bits()),
                other => prop_assert!(false, "not a float: {:?}", other),
            }
        }
        prop_assert_eq!(line.timestamp, Some(ts));
    }

    #[test]
    fn string_values_round_trip(value in "[a-z \",=\\\\é🚀]{0,24}") {
        let mut text = String::from("m s=");
        super::lineproto::write_string_value(&mut text, &value);
        let line = parse_line(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let line = line.ok_or_else(|| TestCaseError::fail("no line"))?;
        prop_assert_eq!(&line.fields[0].1, &FieldValue::String(Cow::Owned(value)));
    }

    #[test]
    fn any_finite_float_round_trips_bit_exact(value in any::<f64>().prop_filter("finite", |v| v.is_finite())) {
        let text = format!("m f={value} 1");
        let line = parse_line(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
        let line = line.ok_or_else(|| TestCaseError::fail("no line"))?;
        match line.fields[0].1 {
            FieldValue::Float(v) => prop_assert_eq!(v.to_bits(), value.to_bits()),
            ref other => prop_assert!(false, "not a float: {:?}", other),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        let _ = parse_line(&text);
    }

    #[test]
    fn text_dense_in_special_characters_never_panics(
        text in "[a-z0-9 ,=\"\\\\#.\\-+tfiuTFEe\r\t\u{fffc}é]{0,48}",
    ) {
        let _ = parse_line(&text);
    }
}
