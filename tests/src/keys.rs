//! gRPC clients that carry an API key, and the keys themselves: the admin key citytel writes at
//! its first start, and new keys made through `AdminService` with it.

use std::path::Path;

use citytel_proto::v1::admin_service_client::AdminServiceClient;
use citytel_proto::v1::alert_service_client::AlertServiceClient;
use citytel_proto::v1::query_service_client::QueryServiceClient;
use citytel_proto::v1::session_service_client::SessionServiceClient;
use citytel_proto::v1::{self, Scope};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::process::Citytel;

/// Adds `authorization: Bearer <key>` to every call (nothing without a key).
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(key) = &self.0 {
            let value = format!("Bearer {key}")
                .parse()
                .map_err(|_| Status::invalid_argument("the key is not header text"))?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A query client sending a key.
pub type Query = QueryServiceClient<InterceptedService<Channel, Bearer>>;
/// An admin client sending a key.
pub type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;
/// A session client sending a key.
pub type Session = SessionServiceClient<InterceptedService<Channel, Bearer>>;
/// An alert client sending a key.
pub type Alerts = AlertServiceClient<InterceptedService<Channel, Bearer>>;

async fn channel(citytel: &Citytel) -> Channel {
    // Waits until citytel accepts connections.
    citytel.client().await;
    tonic::transport::Endpoint::from_shared(format!("http://{}", citytel.grpc))
        .expect("url")
        .connect()
        .await
        .expect("gRPC connects")
}

/// A query client of `citytel` sending `key`.
pub async fn query(citytel: &Citytel, key: Option<&str>) -> Query {
    QueryServiceClient::with_interceptor(channel(citytel).await, Bearer(key.map(str::to_string)))
}

/// An admin client of `citytel` sending `key`.
pub async fn admin(citytel: &Citytel, key: &str) -> Admin {
    AdminServiceClient::with_interceptor(channel(citytel).await, Bearer(Some(key.to_string())))
}

/// A session client of `citytel` sending `key`.
pub async fn session(citytel: &Citytel, key: Option<&str>) -> Session {
    SessionServiceClient::with_interceptor(channel(citytel).await, Bearer(key.map(str::to_string)))
}

/// An alert client of `citytel` sending `key`.
pub async fn alerts(citytel: &Citytel, key: Option<&str>) -> Alerts {
    AlertServiceClient::with_interceptor(channel(citytel).await, Bearer(key.map(str::to_string)))
}

/// The admin key citytel wrote into `data_dir` at its first start.
pub fn admin_key(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin.key"))
        .expect("the admin key file")
        .trim()
        .to_string()
}

/// Creates organisation `org` through `admin`.
pub async fn create_org(admin: &mut Admin, org: &str, name: &str) {
    admin
        .create_organisation(v1::CreateOrganisationRequest {
            organisation: Some(v1::Organisation {
                id: org.into(),
                name: name.into(),
                licence: String::new(),
                created_unix_ms: 0,
            }),
        })
        .await
        .expect("CreateOrganisation");
}

/// Creates a key of `org` with `role` and `scope` (`None`: everything), expiring at `expires`
/// (0: never); returns its text.
pub async fn create_key(
    admin: &mut Admin,
    org: &str,
    role: &str,
    scope: Option<Scope>,
    expires: i64,
) -> String {
    admin
        .create_api_key(v1::CreateApiKeyRequest {
            organisation: org.into(),
            role: role.into(),
            scope,
            name: format!("{role} key"),
            expires_unix_ms: expires,
        })
        .await
        .expect("CreateApiKey")
        .into_inner()
        .secret
}

/// Revokes the key with text `key` through `admin`.
pub async fn revoke(admin: &mut Admin, key: &str) {
    admin
        .revoke_api_key(v1::RevokeApiKeyRequest { id: key_id(key) })
        .await
        .expect("RevokeApiKey");
}

/// The id of a key's text `citytel_<id>_<secret>`.
pub fn key_id(key: &str) -> String {
    key.split('_')
        .nth(1)
        .expect("citytel_<id>_<secret>")
        .to_string()
}
