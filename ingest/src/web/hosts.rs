//! Which host names the dashboard answers for, and which origins may call its API: the rules
//! behind [`super::guard`], free of I/O.
//!
//! A browser tricked by DNS rebinding (a site whose name suddenly resolves to 127.0.0.1) sends
//! that site's name in `Host`; a page of another site calling the API sends its own origin in
//! `Origin`. So a request is answered only when its `Host` is one of the allowed names: the
//! listen address, `localhost`, `127.0.0.1` and `[::1]`, each with the port the server listens
//! on, plus `http.allowed_hosts`. An entry there is `name` (any port) or `name:port`; `*` turns
//! the host check off. A request with an `Origin` must come from an allowed host too, or from
//! the very host it is sent to (same origin). A missing port means the scheme's default (80 or
//! 443).

use std::net::SocketAddr;

/// One allowed host: a lower-case name (IPv6 addresses in brackets) and, if it is bound to one,
/// a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    port: Option<u16>,
}

/// The host names and origins the dashboard accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowedHosts {
    /// `*` was configured: every `Host` is accepted.
    any: bool,
    entries: Vec<Entry>,
}

/// A `host[:port]` authority split in two, the name in lower case; `None` if it is not one.
fn split(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim();
    let (name, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{v6}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) if !name.contains(':') => (name.to_string(), Some(port)),
            Some(_) => return None,
            None => (authority.to_string(), None),
        }
    };
    let valid = |c: char| c.is_ascii_alphanumeric() || "-._[]:".contains(c);
    if name.is_empty() || !name.chars().all(valid) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((name.to_ascii_lowercase(), port))
}

/// Whether a request's port (`None`: absent, so the scheme's default) is `port`.
fn same_port(asked: Option<u16>, port: u16) -> bool {
    match asked {
        Some(asked) => asked == port,
        None => port == 80 || port == 443,
    }
}

impl AllowedHosts {
    /// The defaults for a server listening on `listen`, plus the `configured` entries. An entry
    /// that is not a host name, `name:port` or `*` is an error, naming it.
    pub(crate) fn new(configured: &[String], listen: SocketAddr) -> Result<Self, String> {
        let port = listen.port();
        let listen_name = match listen {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        };
        let mut hosts = AllowedHosts {
            any: false,
            entries: [listen_name.as_str(), "localhost", "127.0.0.1", "[::1]"]
                .into_iter()
                .map(|name| Entry {
                    name: name.to_string(),
                    port: Some(port),
                })
                .collect(),
        };
        for item in configured {
            if item.trim() == "*" {
                hosts.any = true;
                continue;
            }
            let (name, port) = split(item).ok_or_else(|| {
                format!("{item:?} is not a host name, an address, name:port or \"*\"")
            })?;
            hosts.entries.push(Entry { name, port });
        }
        Ok(hosts)
    }

    /// Whether `authority` (`host[:port]`) is one of the entries (`*` does not count).
    fn listed(&self, authority: &str) -> bool {
        let Some((name, port)) = split(authority) else {
            return false;
        };
        self.entries.iter().any(|e| {
            e.name == name
                && match e.port {
                    Some(p) => same_port(port, p),
                    None => true,
                }
        })
    }

    /// Whether a request with this `Host` is answered.
    pub(crate) fn host_allowed(&self, host: &str) -> bool {
        (self.any && split(host).is_some()) || self.listed(host)
    }

    /// Whether a request sent to `host` may come from `origin` (`scheme://host[:port]`): an
    /// allowed host, or `host` itself.
    pub(crate) fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false; // "null" (sandboxed pages, file:// and the like) and anything odd
        };
        let default = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some((name, port)) = split(authority) else {
            return false;
        };
        let port = port.unwrap_or(default);
        let same_origin = split(host).is_some_and(|(h, p)| h == name && same_port(p, port));
        same_origin || self.listed(&format!("{name}:{port}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(configured: &[&str]) -> AllowedHosts {
        let configured: Vec<String> = configured.iter().map(|s| s.to_string()).collect();
        AllowedHosts::new(&configured, "127.0.0.1:8080".parse().unwrap()).unwrap()
    }

    #[test]
    fn the_defaults_are_loopback_names_on_the_listen_port() {
        let h = hosts(&[]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
        ] {
            assert!(h.host_allowed(ok), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "localhost:8081",
            "localhost",
            "127.0.0.1.evil.example:8080",
            "",
            "localhost:8080:1",
            "local host:8080",
        ] {
            assert!(!h.host_allowed(refused), "{refused:?}");
        }
        let v6 = AllowedHosts::new(&[], "[::1]:9000".parse().unwrap()).unwrap();
        assert!(v6.host_allowed("[::1]:9000"));
        assert!(!v6.host_allowed("[::1]:8080"));
    }

    #[test]
    fn configured_names_take_any_port_unless_they_name_one() {
        let h = hosts(&["Citytel.Example.org", "wall.local:8443", "[fd00::5]"]);
        assert!(h.host_allowed("citytel.example.org"));
        assert!(h.host_allowed("citytel.example.org:8080"));
        assert!(h.host_allowed("wall.local:8443"));
        assert!(!h.host_allowed("wall.local:8080"));
        assert!(!h.host_allowed("wall.local"));
        assert!(h.host_allowed("[fd00::5]:8080"));
        assert!(!h.host_allowed("other.example.org"));
        let bad: Vec<String> = vec!["http://x".into()];
        assert!(AllowedHosts::new(&bad, "127.0.0.1:1".parse().unwrap()).is_err());
    }

    #[test]
    fn a_star_accepts_any_host_but_origins_stay_checked() {
        let h = hosts(&["*"]);
        assert!(h.host_allowed("anything.example:1234"));
        assert!(h.origin_allowed("http://anything.example:1234", "anything.example:1234"));
        assert!(!h.origin_allowed("http://evil.example", "anything.example:1234"));
    }

    #[test]
    fn origins_must_be_allowed_hosts_or_the_same_origin() {
        let h = hosts(&["citytel.example.org"]);
        assert!(h.origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(h.origin_allowed("http://localhost:8080", "127.0.0.1:8080"));
        assert!(h.origin_allowed("https://citytel.example.org", "127.0.0.1:8080"));
        for refused in [
            "http://evil.example",
            "http://evil.example:8080",
            "http://127.0.0.1:9999",
            "null",
            "file://",
            "ftp://127.0.0.1:8080",
        ] {
            assert!(!h.origin_allowed(refused, "127.0.0.1:8080"), "{refused}");
        }
        // Behind a proxy on the default port, Origin and Host both leave the port out.
        let proxied = AllowedHosts::new(&[], "127.0.0.1:80".parse().unwrap()).unwrap();
        assert!(proxied.origin_allowed("http://localhost", "localhost"));
    }
}
