//! The `authorization: Bearer <key>` interceptor of the bench's gRPC clients.

use tonic::metadata::{Ascii, MetadataValue};

/// Adds `authorization: Bearer <key>` to every call when there is a key (and nothing when there
/// is none, at the same cost).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// Sends `value` (`Bearer <key>`) as the `authorization` header; nothing when `None`.
    pub fn new(value: Option<MetadataValue<Ascii>>) -> Self {
        Bearer(value)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            r.metadata_mut().insert("authorization", value.clone());
        }
        Ok(r)
    }
}
