use http_body_util::{BodyExt, Full};
use prost::Message;
use prost::bytes::{BufMut, Bytes, BytesMut};
use tonic::Code;
use tonic::codec::{Codec, EncodeBody, Streaming};

use super::SliceCodec;
use crate::v1::{QueryRangeRequest, QueryRangeResponse};

/// Messages framed as gRPC puts them on the wire: uncompressed flag, big-endian length, bytes.
fn framed(messages: &[Vec<u8>]) -> Full<Bytes> {
    let mut body = BytesMut::new();
    for m in messages {
        body.put_u8(0);
        body.put_u32(m.len() as u32);
        body.put_slice(m);
    }
    Full::new(body.freeze())
}

fn decoding(messages: &[Vec<u8>]) -> Streaming<QueryRangeResponse> {
    let mut codec = SliceCodec::<QueryRangeRequest, QueryRangeResponse>::default();
    Streaming::new_request(codec.decoder(), framed(messages), None, None)
}

fn day() -> QueryRangeResponse {
    QueryRangeResponse {
        times_unix_ms: (0..8640).map(|i| 1_795_564_800_000 + i * 10_000).collect(),
        values: (0..8640).map(|i| f64::from(i) * 0.01 - 12.5).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn decodes_every_message_of_a_stream() {
    let small = QueryRangeResponse {
        values: vec![-0.0, f64::INFINITY, 1.5],
        ..Default::default()
    };
    let mut stream = decoding(&[day().encode_to_vec(), small.encode_to_vec()]);
    assert_eq!(stream.message().await.expect("first"), Some(day()));
    let second = stream.message().await.expect("second").expect("a message");
    let bits: Vec<u64> = second.values.iter().map(|v| v.to_bits()).collect();
    let want: Vec<u64> = small.values.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, want);
    assert_eq!(stream.message().await.expect("end"), None);
}

#[tokio::test]
async fn a_message_that_does_not_parse_is_an_internal_error() {
    // Field 2 (values) announced as 64 bytes long with only 3 there.
    let mut stream = decoding(&[vec![0x12, 64, 1, 2, 3]]);
    let status = stream.message().await.expect_err("garbage");
    assert_eq!(status.code(), Code::Internal);
}

#[tokio::test]
async fn what_the_encoder_writes_the_decoder_reads() {
    let mut codec = SliceCodec::<QueryRangeResponse, QueryRangeRequest>::default();
    let small = QueryRangeResponse {
        values: vec![2.5],
        ..Default::default()
    };
    let messages = tokio_stream::iter([Ok(day()), Ok(small.clone())]);
    let body = EncodeBody::new_client(codec.encoder(), messages, None, None);
    let bytes = body.collect().await.expect("encoded").to_bytes();
    // Two frames: a 5-byte header and the message, each.
    let want = [day().encoded_len(), small.encoded_len()];
    assert_eq!(bytes.len(), want.iter().map(|n| n + 5).sum::<usize>());
    let mut stream = Streaming::new_request(
        SliceCodec::<QueryRangeRequest, QueryRangeResponse>::default().decoder(),
        Full::new(bytes),
        None,
        None,
    );
    assert_eq!(stream.message().await.expect("first"), Some(day()));
    assert_eq!(stream.message().await.expect("second"), Some(small));
    assert_eq!(stream.message().await.expect("end"), None);
}
