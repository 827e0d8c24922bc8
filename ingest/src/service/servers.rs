//! The servers of the service as tasks: the gRPC API, the dashboard (with gRPC-Web) and the
//! metrics endpoint. Each runs until `serving` is cancelled; the teardown waits for them in
//! order, within the shutdown timeout.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic_health::pb::health_server::{Health, HealthServer};

use super::ServiceError;
use super::listeners::Bound;
use crate::api::{self, Api};
use crate::db::Database;
use crate::exporter;
use crate::exporter::token::BearerToken;
use crate::pipeline::Pipeline;
use crate::web::hosts::AllowedHosts;
use crate::web::{self, WebError};

/// A server's name and task.
pub(super) type Server = (&'static str, JoinHandle<Result<(), ServiceError>>);

/// The servers started so far.
pub(super) struct Servers<'a> {
    tasks: &'a TaskTracker,
    serving: &'a CancellationToken,
    list: Vec<Server>,
}

impl<'a> Servers<'a> {
    /// Servers spawned on `tasks`, stopping when `serving` is cancelled.
    pub(super) fn new(tasks: &'a TaskTracker, serving: &'a CancellationToken) -> Self {
        Servers {
            tasks,
            serving,
            list: Vec::new(),
        }
    }

    /// The Prometheus endpoint, answering only requests with `token` when there is one.
    pub(super) fn metrics(
        &mut self,
        (listener, addr): Bound,
        (db, pipeline): (&Arc<Database>, &Pipeline),
        token: Option<BearerToken>,
    ) -> Result<SocketAddr, ServiceError> {
        let sources = exporter::Sources {
            db: db.clone(),
            in_flight: Some(pipeline.in_flight()),
        };
        exporter::handle().map_err(ServiceError::Metrics)?;
        let stop = self.serving.clone();
        let server = self.tasks.spawn(async move {
            exporter::serve(listener, sources, token, stop)
                .await
                .map_err(ServiceError::Metrics)
        });
        self.list.push(("metrics endpoint", server));
        tracing::info!(url = %exporter::url(addr), "metrics endpoint listening");
        Ok(addr)
    }

    /// The gRPC API, with health and reflection.
    pub(super) fn grpc(
        &mut self,
        (listener, addr): Bound,
        api: Api,
        health: HealthServer<impl Health>,
    ) -> SocketAddr {
        let server = api::serve(listener, api, health, self.serving.clone());
        self.list.push((
            "gRPC server",
            self.tasks
                .spawn(async move { server.await.map_err(ServiceError::from) }),
        ));
        tracing::info!(grpc_addr = %addr, "gRPC query service listening");
        addr
    }

    /// The dashboard, with the API over gRPC-Web, for the host names `allowed_hosts` adds to
    /// the defaults.
    pub(super) fn web(
        &mut self,
        (listener, addr): Bound,
        api: Api,
        allowed_hosts: &[String],
    ) -> Result<SocketAddr, ServiceError> {
        let hosts = AllowedHosts::new(allowed_hosts, addr).map_err(WebError::Hosts)?;
        let server = web::serve(listener, api, hosts, self.serving.clone());
        self.list.push((
            "dashboard server",
            self.tasks
                .spawn(async move { server.await.map_err(ServiceError::from) }),
        ));
        tracing::info!(%addr, "web dashboard listening");
        Ok(addr)
    }

    /// The servers, in the order they were started.
    pub(super) fn into_list(self) -> Vec<Server> {
        self.list
    }
}
