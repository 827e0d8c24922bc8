//! The provisioning file's format (see `FORMAT.md` beside this file): reading, checking and
//! writing it atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;

use citytel_availability::Location;
use serde::{Deserialize, Serialize};

use super::credential;

/// The format version this citytel reads and writes.
pub const VERSION: u32 = 1;

/// What the file says at its top.
const HEADER: &str =
    "# citytel device provisioning file (format 1). Edit with `citytel devices`; hashes only.\n";

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningFile {
    /// The format version ([`VERSION`]).
    pub version: u32,
    /// The devices, in the order they were added.
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceEntry>,
}

/// One provisioned device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// Its device id.
    pub id: String,
    /// Its kind, as in its topics.
    pub kind: String,
    /// Its site, as in its topics.
    pub site: String,
    /// The gateway it sits behind, which may publish for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// SHA-256 (hex) of its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// argon2id hash (PHC string) of its password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_argon2: Option<String>,
    /// SHA-256 (hex) of its client certificate's DER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_sha256: Option<String>,
    /// Refused from now on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
    /// Where it stands, WGS 84 degrees north (-90 to 90), given with `longitude`: used when its
    /// birth states no location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latitude: Option<f64>,
    /// Where it stands, WGS 84 degrees east (-180 to 180), given with `latitude`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longitude: Option<f64>,
}

impl DeviceEntry {
    /// Its provisioned location, if it has a valid one.
    pub fn location(&self) -> Option<Location> {
        Location::new(self.latitude?, self.longitude?).ok()
    }
}

/// Where each `[[device]]` table of a file's text starts, in file order, for messages.
#[derive(Deserialize)]
struct EntryLines {
    #[serde(default)]
    device: Vec<toml::Spanned<toml::Table>>,
}

impl EntryLines {
    /// The line (from 1) of each entry of `text`, in order; empty if they cannot be told.
    fn of(text: &str) -> Vec<usize> {
        let Ok(lines) = toml::from_str::<EntryLines>(text) else {
            return Vec::new();
        };
        lines
            .device
            .iter()
            .map(|d| {
                let start = d.span().start.min(text.len());
                text.as_bytes()[..start]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count()
                    + 1
            })
            .collect()
    }
}

/// Why a provisioning file is refused.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is not a valid provisioning file.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl ProvisioningFile {
    /// An empty file of the current version.
    pub fn new() -> Self {
        ProvisioningFile {
            version: VERSION,
            devices: Vec::new(),
        }
    }

    /// Reads and checks the file at `path`; a missing file is an empty one.
    pub fn read(path: &Path) -> Result<ProvisioningFile, FileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::new()),
            Err(source) => {
                return Err(FileError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|message| FileError::Invalid {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses and checks a file's text; a refusal names the device and its line.
    pub fn parse(text: &str) -> Result<ProvisioningFile, String> {
        let file: ProvisioningFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.check_at(&EntryLines::of(text))?;
        Ok(file)
    }

    /// The provisioned locations, by device id (revoked devices' too: they stand where they
    /// stand).
    pub fn locations(&self) -> BTreeMap<String, Location> {
        self.devices
            .iter()
            .filter_map(|d| Some((d.id.clone(), d.location()?)))
            .collect()
    }

    /// Checks every rule of the format.
    pub fn check(&self) -> Result<(), String> {
        self.check_at(&[])
    }

    /// Checks every rule of the format; `lines` are the entries' lines, for messages.
    fn check_at(&self, lines: &[usize]) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "format version {} (this citytel reads version {VERSION})",
                self.version
            ));
        }
        let valid = citytel_proto::topic::is_valid_id;
        let mut ids = BTreeSet::new();
        let named = |i: usize, d: &DeviceEntry| match lines.get(i) {
            Some(line) => format!("device {:?} (line {line})", d.id),
            None => format!("device {:?}", d.id),
        };
        for (i, d) in self.devices.iter().enumerate() {
            let at = || named(i, d);
            for (what, value) in [("id", &d.id), ("kind", &d.kind), ("site", &d.site)] {
                if !valid(value) {
                    return Err(format!(
                        "{}: {what} {value:?} is not 1 to 128 characters of [A-Za-z0-9._-]",
                        at()
                    ));
                }
            }
            if !ids.insert(d.id.as_str()) {
                return Err(format!("{} is listed twice", at()));
            }
            for hash in [&d.token_sha256, &d.cert_sha256].into_iter().flatten() {
                if !credential::is_sha256_hex(hash) {
                    return Err(format!("{}: {hash:?} is not a SHA-256 in hex", at()));
                }
            }
            if let Some(hash) = &d.password_argon2
                && !credential::is_argon2id(hash)
            {
                return Err(format!("{}: password_argon2 is not an argon2id hash", at()));
            }
            match (d.latitude, d.longitude) {
                (None, None) => {}
                (Some(latitude), Some(longitude)) => {
                    if Location::new(latitude, longitude).is_err() {
                        return Err(format!(
                            "{}: latitude {latitude} must be within -90 to 90 and longitude \
                             {longitude} within -180 to 180",
                            at()
                        ));
                    }
                }
                _ => {
                    return Err(format!(
                        "{}: give both latitude and longitude, or neither",
                        at()
                    ));
                }
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            if let Some(gateway) = &d.gateway
                && (!ids.contains(gateway.as_str()) || gateway == &d.id)
            {
                return Err(format!(
                    "{}: its gateway {gateway:?} is not another device of the file",
                    named(i, d)
                ));
            }
        }
        Ok(())
    }

    /// The entry of `id`.
    pub fn get(&self, id: &str) -> Option<&DeviceEntry> {
        self.devices.iter().find(|d| d.id == id)
    }

    /// Writes the file to `path` atomically (a temporary file renamed over it), readable and
    /// writable only by this user.
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |source| FileError::Io {
            path: path.to_path_buf(),
            source,
        };
        self.check().map_err(|message| FileError::Invalid {
            path: path.to_path_buf(),
            message,
        })?;
        let body = toml::to_string(self).map_err(|e| FileError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let tmp = path.with_extension("toml.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(HEADER.as_bytes()).map_err(io)?;
        file.write_all(body.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> DeviceEntry {
        DeviceEntry {
            id: id.into(),
            kind: "cabinet".into(),
            site: "site-01".into(),
            ..DeviceEntry::default()
        }
    }

    #[test]
    fn a_written_file_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.toml");
        let mut file = ProvisioningFile::new();
        file.devices.push(DeviceEntry {
            token_sha256: Some(credential::sha256_hex(b"t")),
            ..entry("gw-1")
        });
        file.devices.push(DeviceEntry {
            gateway: Some("gw-1".into()),
            revoked: true,
            ..entry("sen-1")
        });
        file.write(&path).unwrap();
        assert_eq!(ProvisioningFile::read(&path).unwrap(), file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# citytel device provisioning file"),
            "{text}"
        );
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let cases = [
            ("version = 2\n", "format version 2"),
            ("version = 1\nnope = 1\n", "nope"),
            (
                "version = 1\n[[device]]\nid = \"a b\"\nkind = \"k\"\nsite = \"s\"\n",
                "is not 1 to 128",
            ),
            (
                "version = 1\n[[device]]\nid = \"a\"\nkind = \"k\"\nsite = \"s\"\n[[device]]\nid = \"a\"\nkind = \"k\"\nsite = \"s\"\n",
                "twice",
            ),
            (
                "version = 1\n[[device]]\nid = \"a\"\nkind = \"k\"\nsite = \"s\"\ntoken_sha256 = \"xyz\"\n",
                "SHA-256",
            ),
            (
                "version = 1\n[[device]]\nid = \"a\"\nkind = \"k\"\nsite = \"s\"\ngateway = \"gw\"\n",
                "gateway",
            ),
        ];
        for (text, want) in cases {
            let err = ProvisioningFile::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn locations_are_both_or_neither_in_range_and_refusals_name_device_and_line() {
        let text = "version = 1\n\n[[device]]\nid = \"a\"\nkind = \"k\"\nsite = \"s\"\n\
                    latitude = 51.5\nlongitude = -0.12\n\n[[device]]\nid = \"b\"\nkind = \"k\"\n\
                    site = \"s\"\n";
        let file = ProvisioningFile::parse(text).unwrap();
        assert_eq!(file.devices[0].location(), Location::new(51.5, -0.12).ok());
        assert_eq!(file.devices[1].location(), None);
        assert_eq!(
            file.locations().into_iter().collect::<Vec<_>>(),
            [("a".to_string(), Location::new(51.5, -0.12).unwrap())]
        );
        let cases = [
            (
                "latitude = 91.0\nlongitude = 0.0\n",
                "latitude 91 must be within -90 to 90",
            ),
            (
                "latitude = 0.0\nlongitude = -180.5\n",
                "longitude -180.5 within -180 to 180",
            ),
            ("latitude = nan\nlongitude = 0.0\n", "latitude NaN"),
            ("latitude = 10.0\n", "give both latitude and longitude"),
            ("longitude = 10.0\n", "give both latitude and longitude"),
        ];
        for (location, want) in cases {
            // The bad entry is the second, whose `[[device]]` is line 6.
            let text = format!(
                "version = 1\n[[device]]\nid = \"ok\"\nkind = \"k\"\nsite = \"s\"\n\
                 [[device]]\nid = \"cab-9\"\nkind = \"k\"\nsite = \"s\"\n{location}"
            );
            let err = ProvisioningFile::parse(&text).unwrap_err();
            assert!(err.contains(want), "{location}: {err}");
            assert!(err.starts_with("device \"cab-9\" (line 6): "), "{err}");
        }
        // A written file keeps its locations.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.toml");
        file.write(&path).unwrap();
        assert_eq!(ProvisioningFile::read(&path).unwrap(), file);
    }

    #[test]
    fn a_missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = ProvisioningFile::read(&dir.path().join("none.toml")).unwrap();
        assert!(file.devices.is_empty());
    }
}
