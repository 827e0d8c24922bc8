//! The certificates of `citytel-bench mqtt --tls`, made fresh for each run with the testkit's
//! CA (rcgen): a server certificate for 127.0.0.1 that Mosquitto's TLS listener and citytel's
//! `mqtts` listener both present, and the CA the load generator trusts.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use citytel_testkit::tls::TestCa;

/// Where the certificates are.
#[derive(Debug, Clone)]
pub struct BenchCerts {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The server certificate (PEM).
    pub server_cert: PathBuf,
    /// Its key (PEM).
    pub server_key: PathBuf,
}

impl BenchCerts {
    /// Makes a CA and a server certificate in `dir` (readable by Mosquitto after it drops root).
    pub fn make(dir: &Path) -> Result<BenchCerts> {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::create_dir_all(dir)?;
        let ca = TestCa::new("citytel bench CA").context("making the bench CA")?;
        let ca_file = ca.write(dir, "ca")?;
        let server = ca.server("citytel bench server")?.write(dir, "server")?;
        for file in [&ca_file, &server.cert, &server.key] {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644))?;
        }
        Ok(BenchCerts {
            ca: ca_file,
            server_cert: server.cert,
            server_key: server.key,
        })
    }
}
