//! `citytel orgs ...` and `citytel keys ...`: organisations and API keys. With the service
//! stopped they change the data directory directly (through its WAL, as the service would);
//! with it running (the directory is locked) they call its admin API with an admin key
//! (`--api-key`, `CITYTEL_API_KEY`, or the key file the service wrote at its first start).

use anyhow::{Context, bail};
use citytel_ingest::clock::system_now_ms;
use citytel_ingest::config::Settings;
use citytel_ingest::db::{DbError, offline};
use citytel_ingest::state::access::{self, ApiKey, KeyId, Organisation, Role, Scope, token};
use citytel_ingest::state::command::{Actor, Command, Outcome, Submitted};
use citytel_proto::v1;
use citytel_proto::v1::admin_service_client::AdminServiceClient;
use clap::{Args, Subcommand};

use super::{ConfigArgs, remote, runtime};

/// `citytel orgs`.
#[derive(Debug, Args)]
pub struct OrgsArgs {
    #[command(subcommand)]
    command: OrgsCommand,
}

#[derive(Debug, Subcommand)]
enum OrgsCommand {
    /// Add an organisation.
    Create {
        /// Its id: 1 to 64 characters of [a-z0-9-].
        id: String,
        /// Display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// Licence and attribution attached to its exports.
        #[arg(long, default_value = "")]
        licence: String,
        #[command(flatten)]
        common: Common,
    },
    /// List the organisations.
    List {
        #[command(flatten)]
        common: Common,
    },
}

/// `citytel keys`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key; it is printed once and stored only as a hash.
    Create {
        #[command(flatten)]
        key: CreateKey,
        #[command(flatten)]
        common: Common,
    },
    /// List the API keys (never their secrets).
    List {
        /// Only the keys of this organisation.
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Revoke an API key, at once and for good.
    Revoke {
        /// The key's id (the 12 hex digits after `citytel_`).
        id: String,
        #[command(flatten)]
        common: Common,
    },
}

/// What every `orgs` and `keys` command takes: the configuration, and how to reach a running
/// service.
#[derive(Debug, Args)]
struct Common {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(flatten)]
    remote: RemoteArgs,
}

#[derive(Debug, Args)]
struct CreateKey {
    /// The organisation it belongs to.
    #[arg(long)]
    org: String,
    /// viewer (read), operator (read and maintenance windows) or admin (everything).
    #[arg(long, value_parser = ["viewer", "operator", "admin"])]
    role: String,
    /// A name for people.
    #[arg(long, default_value = "")]
    name: String,
    /// How long it works, e.g. 90d (default: until revoked).
    #[arg(long, value_parser = humantime::parse_duration)]
    expires_in: Option<std::time::Duration>,
    /// Only devices of this district (repeatable).
    #[arg(long = "district")]
    districts: Vec<String>,
    /// Only devices at this site (repeatable).
    #[arg(long = "site")]
    sites: Vec<String>,
    /// Only devices of this kind (repeatable).
    #[arg(long = "kind")]
    kinds: Vec<String>,
    /// Only this device (repeatable).
    #[arg(long = "device")]
    devices: Vec<String>,
    /// Only this metric (repeatable; default: every metric).
    #[arg(long = "metric")]
    metrics: Vec<String>,
}

/// How to reach a running service.
#[derive(Debug, Clone, Args)]
struct RemoteArgs {
    /// An admin API key for a running service (default: the key file it wrote at first start).
    #[arg(long, env = "CITYTEL_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
}

/// Runs `citytel orgs`.
pub fn run_orgs(args: &OrgsArgs) -> anyhow::Result<()> {
    match &args.command {
        OrgsCommand::Create {
            id,
            name,
            licence,
            common,
        } => {
            let settings = settings(&common.config)?;
            if !access::valid_org_id(id) {
                bail!("organisation id {id:?} must be 1 to 64 characters of [a-z0-9-]");
            }
            let org = Organisation {
                id: id.clone(),
                name: name.clone().unwrap_or_else(|| id.clone()),
                licence: licence.clone(),
                created_ms: system_now_ms(),
            };
            let created = match apply(&settings, Command::CreateOrganisation(org.clone()))? {
                Some(Outcome::OrganisationCreated(org)) => org,
                Some(other) => bail!("{}", refusal(other)),
                None => {
                    let request = v1::CreateOrganisationRequest {
                        organisation: Some(v1::Organisation {
                            id: org.id,
                            name: org.name,
                            licence: org.licence,
                            created_unix_ms: 0,
                        }),
                    };
                    let answer = remote(&settings, &common.remote, |mut c| async move {
                        c.create_organisation(request).await
                    })?;
                    let o = answer.organisation.context("empty answer")?;
                    Organisation {
                        id: o.id,
                        name: o.name,
                        licence: o.licence,
                        created_ms: o.created_unix_ms,
                    }
                }
            };
            println!("created organisation {} ({})", created.id, created.name);
        }
        OrgsCommand::List { common } => {
            let settings = settings(&common.config)?;
            let orgs = match offline::read(
                &settings.storage.data_dir,
                &settings.store_options(Default::default()),
                |s| s.access().orgs().cloned().collect::<Vec<_>>(),
            ) {
                Ok(orgs) => orgs,
                Err(DbError::Locked(_)) => {
                    let answer = remote(&settings, &common.remote, |mut c| async move {
                        c.list_organisations(v1::ListOrganisationsRequest {}).await
                    })?;
                    answer
                        .organisations
                        .into_iter()
                        .map(|o| Organisation {
                            id: o.id,
                            name: o.name,
                            licence: o.licence,
                            created_ms: o.created_unix_ms,
                        })
                        .collect()
                }
                Err(e) => return Err(e).context("opening the data directory"),
            };
            println!("{:<24} {:<32} licence", "id", "name");
            for o in orgs {
                println!("{:<24} {:<32} {}", o.id, o.name, o.licence);
            }
        }
    }
    Ok(())
}

/// Runs `citytel keys`.
pub fn run_keys(args: &KeysArgs) -> anyhow::Result<()> {
    match &args.command {
        KeysCommand::Create { key, common } => {
            create_key(&settings(&common.config)?, &common.remote, key)
        }
        KeysCommand::List { org, common } => {
            let settings = settings(&common.config)?;
            let keys = match offline::read(
                &settings.storage.data_dir,
                &settings.store_options(Default::default()),
                |s| s.access().keys().map(KeyRow::from).collect::<Vec<_>>(),
            ) {
                Ok(keys) => keys,
                Err(DbError::Locked(_)) => {
                    let request = v1::ListApiKeysRequest {
                        organisation: org.clone().unwrap_or_default(),
                    };
                    let answer = remote(&settings, &common.remote, |mut c| async move {
                        c.list_api_keys(request).await
                    })?;
                    answer.keys.into_iter().map(KeyRow::from_wire).collect()
                }
                Err(e) => return Err(e).context("opening the data directory"),
            };
            println!(
                "{:<14} {:<20} {:<9} {:<24} {:<12} name",
                "id", "organisation", "role", "scope", "status"
            );
            let now = system_now_ms();
            for k in keys
                .into_iter()
                .filter(|k| org.as_ref().is_none_or(|o| *o == k.org))
            {
                let status = match (k.revoked_ms, k.expires_ms) {
                    (Some(_), _) => "revoked",
                    (None, Some(e)) if e <= now => "expired",
                    _ => "active",
                };
                println!(
                    "{:<14} {:<20} {:<9} {:<24} {:<12} {}",
                    k.id, k.org, k.role, k.scope, status, k.name
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id, common } => {
            let settings = settings(&common.config)?;
            let id = KeyId::parse(id)
                .map_err(|_| anyhow::anyhow!("{id:?} is not a key id (12 hex digits)"))?;
            match apply(&settings, Command::RevokeKey { id: id.clone() })? {
                Some(Outcome::KeyRevoked(_)) => {}
                Some(other) => bail!("{}", refusal(other)),
                None => {
                    let request = v1::RevokeApiKeyRequest { id: id.to_string() };
                    remote(&settings, &common.remote, |mut c| async move {
                        c.revoke_api_key(request).await
                    })?;
                }
            }
            println!("revoked key {id}");
            Ok(())
        }
    }
}

fn create_key(settings: &Settings, remote_args: &RemoteArgs, c: &CreateKey) -> anyhow::Result<()> {
    let role = Role::from_name(&c.role).context("role")?;
    let scope = Scope {
        districts: c.districts.clone(),
        sites: c.sites.clone(),
        kinds: c.kinds.clone(),
        devices: c.devices.clone(),
        metrics: (!c.metrics.is_empty()).then(|| c.metrics.clone()),
    };
    let now = system_now_ms();
    let expires_ms = c
        .expires_in
        .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let (id, secret, hash) = token::generate();
    let key = ApiKey {
        id,
        org: c.org.clone(),
        role,
        scope: scope.clone(),
        name: c.name.clone(),
        hash,
        created_ms: now,
        expires_ms,
        revoked_ms: None,
    };
    let (id, secret) = match apply(settings, Command::CreateKey(key.clone()))? {
        Some(Outcome::KeyCreated(key)) => (key.id.to_string(), secret),
        Some(other) => bail!("{}", refusal(other)),
        None => {
            let request = v1::CreateApiKeyRequest {
                organisation: c.org.clone(),
                role: c.role.clone(),
                scope: Some(v1::Scope {
                    districts: scope.districts,
                    sites: scope.sites,
                    kinds: scope.kinds,
                    devices: scope.devices,
                    restrict_metrics: scope.metrics.is_some(),
                    metrics: scope.metrics.unwrap_or_default(),
                }),
                name: c.name.clone(),
                expires_unix_ms: expires_ms.unwrap_or(0),
            };
            let answer = remote(settings, remote_args, |mut c| async move {
                c.create_api_key(request).await
            })?;
            (answer.key.map(|k| k.id).unwrap_or_default(), answer.secret)
        }
    };
    eprintln!(
        "created key {id} ({} of {}); it is shown only now:",
        c.role, c.org
    );
    println!("{secret}");
    Ok(())
}

/// A key as listed.
struct KeyRow {
    id: String,
    org: String,
    role: String,
    scope: String,
    name: String,
    expires_ms: Option<i64>,
    revoked_ms: Option<i64>,
}

fn describe(scope: &Scope) -> String {
    if scope.is_everything() {
        return "everything".into();
    }
    let mut parts = Vec::new();
    for (what, list) in [
        ("district", &scope.districts),
        ("site", &scope.sites),
        ("kind", &scope.kinds),
        ("device", &scope.devices),
    ] {
        if !list.is_empty() {
            parts.push(format!("{what}={}", list.join("|")));
        }
    }
    if let Some(m) = &scope.metrics {
        parts.push(format!("metric={}", m.join("|")));
    }
    parts.join(" ")
}

impl From<&ApiKey> for KeyRow {
    fn from(k: &ApiKey) -> Self {
        KeyRow {
            id: k.id.to_string(),
            org: k.org.clone(),
            role: k.role.as_str().into(),
            scope: describe(&k.scope),
            name: k.name.clone(),
            expires_ms: k.expires_ms,
            revoked_ms: k.revoked_ms,
        }
    }
}

impl KeyRow {
    fn from_wire(k: v1::ApiKey) -> Self {
        let s = k.scope.unwrap_or_default();
        let scope = Scope {
            districts: s.districts,
            sites: s.sites,
            kinds: s.kinds,
            devices: s.devices,
            metrics: s.restrict_metrics.then_some(s.metrics),
        };
        KeyRow {
            id: k.id,
            org: k.organisation,
            role: k.role,
            scope: describe(&scope),
            name: k.name,
            expires_ms: (k.expires_unix_ms != 0).then_some(k.expires_unix_ms),
            revoked_ms: (k.revoked_unix_ms != 0).then_some(k.revoked_unix_ms),
        }
    }
}

fn settings(config: &ConfigArgs) -> anyhow::Result<Settings> {
    let config = config.load().context("loading configuration")?;
    config.validate().context("validating configuration")
}

fn refusal(outcome: Outcome) -> String {
    match outcome {
        Outcome::Refused(r) => r.to_string(),
        other => format!("unexpected outcome {other:?}"),
    }
}

/// Applies `command` to the data directory of a stopped service; `None` when the service is
/// running (the caller then uses the admin API).
fn apply(settings: &Settings, command: Command) -> anyhow::Result<Option<Outcome>> {
    let submitted = Submitted {
        actor: Actor::default(),
        command,
    };
    let options = settings.store_options(Default::default());
    match offline::apply(
        &settings.storage.data_dir,
        &options,
        &submitted,
        system_now_ms(),
    ) {
        Ok(outcome) => Ok(Some(outcome)),
        Err(DbError::Locked(_)) => Ok(None),
        Err(e) => Err(e).context("changing the data directory"),
    }
}

/// Calls the running service's admin API.
fn remote<T, F, Fut>(settings: &Settings, args: &RemoteArgs, call: F) -> anyhow::Result<T>
where
    F: FnOnce(AdminServiceClient<remote::Authorized>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let key = match &args.api_key {
        Some(key) => key.clone(),
        None => {
            let path = citytel_ingest::service::admin_key_path(settings);
            std::fs::read_to_string(&path)
                .with_context(|| {
                    format!(
                        "the service is running; give an admin key with --api-key \
                         (or CITYTEL_API_KEY), or make {} readable",
                        path.display()
                    )
                })?
                .trim()
                .to_string()
        }
    };
    let mut addr = settings.grpc.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    runtime()?.block_on(async move {
        let client =
            AdminServiceClient::new(remote::connect(&format!("http://{addr}"), Some(&key)).await?);
        let answer = call(client)
            .await
            .map_err(|s| anyhow::anyhow!("{}: {}", s.code(), s.message()))?;
        Ok(answer.into_inner())
    })
}
