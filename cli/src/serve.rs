//! `citytel serve`: run the service until Ctrl-C or SIGTERM; SIGHUP reloads the alert rules.

use anyhow::Context;

use super::{ConfigArgs, runtime, stop_signal};
use citytel_ingest::service::{self, Running};

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
    println!("citytel is running");
    if let Some(addr) = running.http_addr {
        println!("  dashboard       http://{addr}/");
    }
    if let Some(addr) = running.mqtt_addr {
        println!("  mqtt endpoint   mqtt://{addr}");
    }
    if let Some(addr) = running.metrics_addr {
        println!("  metrics         {}", citytel_ingest::exporter::url(addr));
    }
    println!("  grpc api        {}", running.grpc_addr);
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
    println!(
        "  try             grpcurl -plaintext {auth}{} citytel.v1.QueryService/ListDevices",
        running.grpc_addr
    );
    println!("Press Ctrl-C to stop.");
}
