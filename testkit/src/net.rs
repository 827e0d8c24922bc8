//! Loopback addresses and free ports, for programs that cannot bind port 0 and report what they
//! got (Mosquitto, VictoriaMetrics, InfluxDB). citytel itself always binds port 0 and prints its
//! addresses.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A loopback port that was free a moment ago (bound to port 0, read, released).
pub fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound() -> io::Result<()> {
        let port = free_port()?;
        assert_ne!(port, 0);
        let listener = TcpListener::bind(loopback(port))?;
        assert_eq!(listener.local_addr()?, loopback(port));
        Ok(())
    }
}
