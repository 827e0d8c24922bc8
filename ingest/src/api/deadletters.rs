//! ListDeadLetters: refused messages, newest first, with counts per reason.

use citytel_proto::v1;

use super::convert::dead_letter_to_wire;
use super::error::ApiError;
use crate::decode::RejectReason;
use crate::state::State;

/// Default and largest number of dead letters per answer.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Most bytes of payloads, details and topics per answer (at least one letter is always
/// included), so an answer fits gRPC clients' default 4 MiB message limit; ask again with
/// `before_unix_ms` for older ones.
const MAX_ANSWER_BYTES: usize = 3 << 20;

/// `ListDeadLetters`.
pub(crate) fn list(
    state: &State,
    req: &v1::ListDeadLettersRequest,
) -> Result<v1::ListDeadLettersResponse, ApiError> {
    let reason = match req.reason.as_str() {
        "" => None,
        name => Some(
            RejectReason::ALL
                .into_iter()
                .find(|r| r.as_str() == name)
                .ok_or_else(|| ApiError::InvalidArgument(format!("unknown reason {name:?}")))?,
        ),
    };
    let limit = match req.limit as usize {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    let mut bytes = 0usize;
    let dead_letters = state
        .dead_letters()
        .recent()
        .rev()
        .filter(|d| reason.is_none_or(|r| d.reason == r))
        .filter(|d| req.before_unix_ms == 0 || d.received_at_ms < req.before_unix_ms)
        .take(limit)
        .take_while(|d| {
            let first = bytes == 0;
            bytes += d.payload.len() + d.detail.len() + d.topic.len() + 64;
            first || bytes <= MAX_ANSWER_BYTES
        })
        .map(dead_letter_to_wire)
        .collect();
    let counts_by_reason = state
        .dead_letters()
        .counts()
        .iter()
        .map(|(r, n)| (r.as_str().to_string(), *n))
        .collect();
    Ok(v1::ListDeadLettersResponse {
        dead_letters,
        counts_by_reason,
    })
}
