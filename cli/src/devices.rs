//! `citytel devices add|list|revoke`: the device provisioning file (`endpoint.devices_file`);
//! `citytel devices show`: one device as a running service sees it (see [`super::device_show`]).
//! Only hashes go into the file: `add` prints a generated token once, or hashes a password read
//! from standard input (argon2id), or pins a client certificate by its SHA-256 fingerprint. A
//! running service rereads the file within seconds of a change (and at SIGHUP), so these
//! commands work the same whether it runs or not; a location given with `add --latitude
//! --longitude` places the device from the service's next start.

use std::io::BufRead as _;
use std::path::PathBuf;

use anyhow::{Context, bail};
use citytel_ingest::provisioning::{DeviceEntry, ProvisioningFile, credential};
use clap::{Args, Subcommand};

use super::ConfigArgs;
use super::remote::ServiceArgs;

/// `citytel devices`.
#[derive(Debug, Args)]
pub struct DevicesArgs {
    #[command(subcommand)]
    command: DevicesCommand,
}

#[derive(Debug, Subcommand)]
enum DevicesCommand {
    /// Provision a device. Without --password or --cert, a token is generated and printed once
    /// (the device's MQTT password; its user name is its id).
    Add {
        #[command(flatten)]
        add: AddArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// List the provisioned devices (never their secrets).
    List {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Show a device as a running service sees it: its state, what it said about itself and
    /// its attributes (latest text values). Only what the key's scope sees.
    Show {
        /// The device id.
        id: String,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Revoke a device: it is refused from now on, also on connections already open (at their
    /// next message). The id stays in the file, so it is not handed out again by mistake.
    Revoke {
        /// The device id.
        id: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

#[derive(Debug, Args)]
struct AddArgs {
    /// The device id (1 to 128 characters of [A-Za-z0-9._-]).
    id: String,
    /// Its kind, as in its topics (cabinet, small_cell, sensor, gateway, ...).
    #[arg(long)]
    kind: String,
    /// Its site, as in its topics.
    #[arg(long)]
    site: String,
    /// The gateway it sits behind, which may then publish for it.
    #[arg(long)]
    gateway: Option<String>,
    /// Read a password from standard input (one line) and store its argon2id hash.
    #[arg(long)]
    password: bool,
    /// Pin the device's client certificate (a PEM file): only that certificate identifies it.
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,
    /// Generate a token as well as --password or --cert.
    #[arg(long)]
    token: bool,
    /// Replace an existing (or revoked) entry of the same id: new credentials, site, kind.
    #[arg(long)]
    replace: bool,
    /// Where it stands, degrees north (-90 to 90; with --longitude): placed there when its
    /// birth states no location.
    #[arg(long, allow_negative_numbers = true, requires = "longitude")]
    latitude: Option<f64>,
    /// Where it stands, degrees east (-180 to 180; with --latitude).
    #[arg(long, allow_negative_numbers = true, requires = "latitude")]
    longitude: Option<f64>,
}

/// Runs `citytel devices`.
pub fn run(args: &DevicesArgs) -> anyhow::Result<()> {
    let config = match &args.command {
        DevicesCommand::Show { id, service } => return super::device_show::run(id, service),
        DevicesCommand::Add { config, .. }
        | DevicesCommand::List { config }
        | DevicesCommand::Revoke { config, .. } => config,
    };
    let config = config.load().context("loading configuration")?;
    let path = config.devices_file();
    let mut file = ProvisioningFile::read(&path)?;
    match &args.command {
        DevicesCommand::Add { add, .. } => {
            let token = add_device(&mut file, add)?;
            file.write(&path)?;
            println!(
                "provisioned {} ({} at {}) in {}",
                add.id,
                add.kind,
                add.site,
                path.display()
            );
            if let Some(token) = token {
                println!(
                    "token (shown once; the device's MQTT password, its user name is {}):",
                    add.id
                );
                println!("{token}");
            }
        }
        DevicesCommand::List { .. } => list(&file),
        // Answered above, from the service, without the configuration.
        DevicesCommand::Show { .. } => {}
        DevicesCommand::Revoke { id, .. } => {
            let Some(entry) = file.devices.iter_mut().find(|d| &d.id == id) else {
                bail!("device {id:?} is not provisioned in {}", path.display());
            };
            entry.revoked = true;
            entry.token_sha256 = None;
            entry.password_argon2 = None;
            entry.cert_sha256 = None;
            file.write(&path)?;
            println!("revoked {id}");
        }
    }
    Ok(())
}

/// Adds (or replaces) the entry `add` describes; returns the generated token, if any.
fn add_device(file: &mut ProvisioningFile, add: &AddArgs) -> anyhow::Result<Option<String>> {
    if let Some(existing) = file.get(&add.id)
        && !add.replace
    {
        bail!(
            "device {:?} is already provisioned{}; pass --replace to give it new credentials",
            add.id,
            if existing.revoked { " (revoked)" } else { "" }
        );
    }
    let mut entry = DeviceEntry {
        id: add.id.clone(),
        kind: add.kind.clone(),
        site: add.site.clone(),
        gateway: add.gateway.clone(),
        latitude: add.latitude,
        longitude: add.longitude,
        ..DeviceEntry::default()
    };
    if add.password {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            bail!("the password read from standard input is empty");
        }
        entry.password_argon2 =
            Some(credential::hash_password(password.as_bytes()).map_err(anyhow::Error::msg)?);
    }
    if let Some(cert) = &add.cert {
        let der = citytel_ingest::net::tls::read_certs("certificate", cert)?;
        let leaf = der.first().context("no certificate")?;
        entry.cert_sha256 = Some(credential::sha256_hex(leaf.as_ref()));
    }
    let token =
        (add.token || (!add.password && add.cert.is_none())).then(credential::generate_token);
    entry.token_sha256 = token
        .as_deref()
        .map(|t| credential::sha256_hex(t.as_bytes()));
    file.devices.retain(|d| d.id != add.id);
    file.devices.push(entry);
    file.check().map_err(anyhow::Error::msg)?;
    Ok(token)
}

fn list(file: &ProvisioningFile) {
    println!(
        "{:<24} {:<12} {:<16} {:<16} {:<24} {:<8} location",
        "id", "kind", "site", "gateway", "proves itself with", "state"
    );
    for d in &file.devices {
        let mut how = Vec::new();
        if d.token_sha256.is_some() {
            how.push("token");
        }
        if d.password_argon2.is_some() {
            how.push("password");
        }
        if d.cert_sha256.is_some() {
            how.push("pinned certificate");
        }
        if how.is_empty() {
            how.push("CA certificate");
        }
        let location = d.location().map_or_else(
            || "-".to_string(),
            |l| format!("{}, {}", l.latitude, l.longitude),
        );
        println!(
            "{:<24} {:<12} {:<16} {:<16} {:<24} {:<8} {location}",
            d.id,
            d.kind,
            d.site,
            d.gateway.as_deref().unwrap_or("-"),
            how.join(", "),
            if d.revoked { "revoked" } else { "active" },
        );
    }
}
