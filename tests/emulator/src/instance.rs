//! Instances: independent emulators a running emulator starts in its own process for tests
//! that cannot start one themselves (a browser page), over `POST /_emulator/instances` (see
//! the [crate docs](crate#instances)). [`InstanceInfo`] is the answer, readable without the
//! `server` feature; the registry that runs them is the server's.

use serde_json::{Value as Json, json};

/// A started instance, as `POST /_emulator/instances` answers it (and
/// `GET /_emulator/instances` lists it): where it listens, the API key and workspace to use,
/// and the id that stops it (`DELETE /_emulator/instances/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceInfo {
    /// The id under `/_emulator/instances/` (`inst_1`, `inst_2`, ...; never reused while its
    /// parent runs).
    pub id: String,
    /// `http://ADDR:PORT` (no trailing slash, no `/v1`): the parent's address, the
    /// instance's own port.
    pub base_url: String,
    /// Its first accepted API key (the parent's).
    pub api_key: String,
    /// Its first seeded workspace (the parent's).
    pub workspace_id: String,
}

impl InstanceInfo {
    /// `{"id", "base_url", "api_key", "workspace_id"}`.
    pub fn to_json(&self) -> Json {
        json!({
            "id": self.id,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "workspace_id": self.workspace_id,
        })
    }

    /// Read what [`InstanceInfo::to_json`] writes (the answer of
    /// `POST /_emulator/instances`). Members it does not know are ignored.
    ///
    /// # Errors
    ///
    /// A message naming a member that is missing or not a string.
    pub fn from_json(value: &Json) -> Result<InstanceInfo, String> {
        let text = |k: &str| {
            value
                .get(k)
                .and_then(Json::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("instance: `{k}` is missing or not a string in `{value}`"))
        };
        Ok(InstanceInfo {
            id: text("id")?,
            base_url: text("base_url")?,
            api_key: text("api_key")?,
            workspace_id: text("workspace_id")?,
        })
    }
}

#[cfg(feature = "server")]
pub(crate) use registry::{InstanceError, Instances};

#[cfg(feature = "server")]
mod registry {
    use std::sync::Mutex;

    use super::InstanceInfo;
    use crate::{Config, EmulatorBuilder, EmulatorHandle, lock};

    /// Why an instance did not start.
    #[derive(Debug)]
    pub(crate) enum InstanceError {
        /// `max` instances are running.
        Full(usize),
        /// The parent is stopping.
        Closed,
        /// Binding or starting the server failed.
        Start(std::io::Error),
    }

    #[derive(Debug, Default)]
    struct Registry {
        next: u64,
        live: Vec<(InstanceInfo, EmulatorHandle)>,
        closed: bool,
    }

    /// The instances a parent emulator runs.
    #[derive(Debug)]
    pub(crate) struct Instances {
        max: usize,
        inner: Mutex<Registry>,
    }

    impl Instances {
        pub(crate) fn new(max: usize) -> Instances {
            Instances { max, inner: Mutex::new(Registry::default()) }
        }

        pub(crate) fn max(&self) -> usize {
            self.max
        }

        /// Start one with `cfg` (the lock is held while it starts, so the cap is exact).
        pub(crate) fn start(&self, cfg: Config) -> Result<InstanceInfo, InstanceError> {
            let mut reg = lock(&self.inner);
            if reg.closed {
                return Err(InstanceError::Closed);
            }
            if reg.live.len() >= self.max {
                return Err(InstanceError::Full(self.max));
            }
            let handle = EmulatorBuilder::from_config(cfg).start_instance().map_err(InstanceError::Start)?;
            reg.next += 1;
            let info = InstanceInfo {
                id: format!("inst_{}", reg.next),
                base_url: handle.base_url().to_string(),
                api_key: handle.api_key().to_string(),
                workspace_id: handle.workspace_id().to_string(),
            };
            reg.live.push((info.clone(), handle));
            Ok(info)
        }

        /// The running ones, oldest first.
        pub(crate) fn list(&self) -> Vec<InstanceInfo> {
            lock(&self.inner).live.iter().map(|(info, _)| info.clone()).collect()
        }

        /// Stop one; false when there is no such instance.
        pub(crate) fn stop(&self, id: &str) -> bool {
            let handle = {
                let mut reg = lock(&self.inner);
                let Some(i) = reg.live.iter().position(|(info, _)| info.id == id) else {
                    return false;
                };
                reg.live.remove(i).1
            };
            handle.shutdown();
            true
        }

        /// Stop every one; `close` also refuses new ones from now on (the parent is stopping).
        pub(crate) fn stop_all(&self, close: bool) -> usize {
            let live = {
                let mut reg = lock(&self.inner);
                reg.closed |= close;
                std::mem::take(&mut reg.live)
            };
            let n = live.len();
            for (_, handle) in live {
                handle.shutdown();
            }
            n
        }
    }
}
