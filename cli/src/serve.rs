//! `citytel serve`: run the service until Ctrl-C or SIGTERM; SIGHUP reloads the alert rules.

use anyhow::Context;

use super::{ConfigArgs, runtime, stop_signal};
use citytel_ingest::service::{self, DeviceAccess, Running};

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let config = args.load().context("loading configuration")?;
    let settings = config.validate().context("validating configuration")?;
    settings.log.init();
    runtime()?.block_on(async {
        let stop = stop_signal();
        let running =
            service::start(settings.clone(), citytel_ingest::clock::Clock::System).await?;
        // SIGHUP is handled before the addresses are printed, as SIGTERM is.
        let reload = tokio_util::sync::CancellationToken::new();
        let reloader = tokio::spawn(super::alerts::reload_on_sighup(
            args.clone(),
            running.alerts.clone(),
            reload.clone(),
        ));
        tokio::task::yield_now().await;
        print_addresses(&running, &settings.storage.data_dir.display().to_string());
        let stopped = running.run_until(stop).await;
        reload.cancel();
        let _ = reloader.await;
        stopped?;
        anyhow::Ok(())
    })
}

/// Prints where the service listens, in a form both people and scripts can read.
pub fn print_addresses(running: &Running, data_dir: &str) {
    let http = |tls: bool| if tls { "https" } else { "http" };
    println!("citytel is running");
    if let Some(addr) = running.http_addr {
        println!("  dashboard       {}://{addr}/", http(running.http_tls));
    }
    if let Some(addr) = running.mqtt_addr {
        println!("  mqtt endpoint   mqtt://{addr}");
    }
    if let Some(addr) = running.mqtts_addr {
        println!("  mqtts endpoint  mqtts://{addr}");
    }
    match running.devices {
        None => {}
        Some(DeviceAccess::Open) => {
            println!("  devices         not authenticated (any client may publish for any device)");
        }
        Some(DeviceAccess::Authenticated {
            auto_register: true,
            ..
        }) => println!(
            "  devices         AUTO-REGISTERED: unknown devices are admitted as who they say they \
             are (endpoint.auto_register; not for production)"
        ),
        Some(DeviceAccess::Authenticated { provisioned, .. }) => println!(
            "  devices         {provisioned} provisioned; others refused (citytel devices add ID \
             --kind KIND --site SITE)"
        ),
    }
    if let Some(addr) = running.metrics_addr {
        println!(
            "  metrics         {}://{addr}/metrics",
            http(running.metrics_tls)
        );
    }
    if running.grpc_tls {
        println!("  grpc api        {} (TLS)", running.grpc_addr);
    } else {
        println!("  grpc api        {}", running.grpc_addr);
    }
    println!("  data directory  {data_dir}");
    if !running.authentication {
        println!("  api keys        not required (open to anyone who reaches the listeners)");
    } else if let Some(file) = &running.admin_key_file {
        println!(
            "  admin key       created and written to {} (shown nowhere else)",
            file.display()
        );
    } else {
        println!("  api keys        required: citytel keys create --org ORG --role viewer");
    }
    let auth = if running.authentication {
        "-H \"authorization: Bearer $KEY\" "
    } else {
        ""
    };
    let transport = if running.grpc_tls {
        "-cacert CA.pem"
    } else {
        "-plaintext"
    };
    println!(
        "  try             grpcurl {transport} {auth}{} citytel.v1.QueryService/ListDevices",
        running.grpc_addr
    );
    println!("Press Ctrl-C to stop.");
}
