//! How the command line reaches a running service's gRPC API: a channel to its address, and
//! the API key sent as `authorization: Bearer <key>` on every call.

use anyhow::Context;
use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel to the service whose calls carry the key.
pub type Authorized = InterceptedService<Channel, Bearer>;

/// `--key` and `--grpc` of the commands that talk to a running service.
#[derive(Debug, Clone, Args)]
pub struct ServiceArgs {
    /// The API key the command acts with (`citytel keys create`); its scope decides what the
    /// answer holds. Not needed when the API runs without authentication.
    #[arg(
        long,
        alias = "api-key",
        env = "CITYTEL_API_KEY",
        hide_env_values = true
    )]
    pub key: Option<String>,
    /// The service's gRPC address.
    #[arg(
        long,
        env = "CITYTEL_GRPC",
        default_value = "127.0.0.1:50051",
        value_name = "ADDR"
    )]
    pub grpc: String,
}

impl ServiceArgs {
    /// Connects to `--grpc` (an address, or a URL), with `--key` on every call.
    pub async fn connect(&self) -> anyhow::Result<Authorized> {
        let url = if self.grpc.contains("://") {
            self.grpc.clone()
        } else {
            format!("http://{}", self.grpc)
        };
        connect(&url, self.key.as_deref()).await
    }
}

/// Connects to `url`, with `key` (if any) on every call.
pub async fn connect(url: &str, key: Option<&str>) -> anyhow::Result<Authorized> {
    let bearer = Bearer::new(key)?;
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())?
        .connect()
        .await
        .with_context(|| format!("connecting to citytel at {url}"))?;
    Ok(InterceptedService::new(channel, bearer))
}

/// Adds `authorization: Bearer <key>` to every call when there is a key.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Bearer {
    /// The header for `key`; an error if the key is not valid header text.
    pub fn new(key: Option<&str>) -> anyhow::Result<Self> {
        let value = key
            .map(|key| format!("Bearer {key}").parse())
            .transpose()
            .context("the API key is not valid header text")?;
        Ok(Bearer(value))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}
