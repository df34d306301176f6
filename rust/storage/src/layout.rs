//! Where an execution's data lives in storage, in flytepropeller's shape, for every component
//! that reads or writes it (admin's offloaded literals, propeller's inputs and outputs, the log
//! route): one definition, so the two planes cannot disagree on a key.

use std::path::PathBuf;

use alula_idl::flyteidl::core::WorkflowExecutionIdentifier;

use crate::Storage;

/// `<project>/<domain>/<name>`: an execution's part of every key.
pub fn execution_path(id: &WorkflowExecutionIdentifier) -> String {
    format!("{}/{}/{}", id.project, id.domain, id.name)
}

/// `metadata/<project>/<domain>/<name>`: the folder of an execution's metadata (inputs,
/// outputs, offloaded literals, logs), in flytepropeller's layout.
pub fn metadata_dir(id: &WorkflowExecutionIdentifier) -> String {
    format!("metadata/{}", execution_path(id))
}

/// The folder of one attempt's outputs (and its logs):
/// `metadata/<project>/<domain>/<name>/<node>/[<element>/]<retry>`.
pub fn output_prefix(
    id: &WorkflowExecutionIdentifier,
    node: &str,
    element: Option<u32>,
    retry: u32,
) -> String {
    format!(
        "{}/{retry}",
        Layout::node_dir("metadata", id, node, element)
    )
}

/// Where an execution's data lives in storage, in flytepropeller's shape:
/// `metadata/<project>/<domain>/<name>/<node>/[<element>/]inputs.pb` and an output folder per
/// attempt beside it; raw data (files, dataframes) under `raw/`. Methods give storage keys;
/// [`Layout::location`] the URI a task is handed (a plain path for local storage).
#[derive(Debug, Clone)]
pub struct Layout {
    storage: Storage,
}

impl Layout {
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// What a plugin is given for `key`: the local path under a local storage root, else the
    /// storage URI (`s3://bucket/prefix/<key>`).
    pub fn location(&self, key: &str) -> PathBuf {
        PathBuf::from(self.storage.uri(key))
    }

    /// The raw data folder an attempt is handed: under the execution's own prefix when its
    /// `raw_output_data_config` sets one (a bucket or folder of the user's choice, as in
    /// flytepropeller), else the storage's `raw/` folder.
    pub fn raw_location(
        &self,
        execution_prefix: Option<&str>,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
        retry: u32,
    ) -> PathBuf {
        match execution_prefix {
            // A `file://` prefix is a plain path to the task (as a local storage root is).
            Some(prefix) => {
                let top = prefix.strip_prefix("file://").unwrap_or(prefix);
                PathBuf::from(format!(
                    "{}/{retry}",
                    Self::node_dir(top, id, node, element)
                ))
            }
            None => self.location(&self.raw_prefix(id, node, element, retry)),
        }
    }

    fn node_dir(
        top: &str,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
    ) -> String {
        let dir = format!("{top}/{}/{node}", execution_path(id));
        match element {
            Some(e) => format!("{dir}/{e}"),
            None => dir,
        }
    }

    pub fn inputs(
        &self,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
    ) -> String {
        format!(
            "{}/inputs.pb",
            Self::node_dir("metadata", id, node, element)
        )
    }

    pub fn output_prefix(
        &self,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
        retry: u32,
    ) -> String {
        output_prefix(id, node, element, retry)
    }

    pub fn raw_prefix(
        &self,
        id: &WorkflowExecutionIdentifier,
        node: &str,
        element: Option<u32>,
        retry: u32,
    ) -> String {
        format!("{}/{retry}", Self::node_dir("raw", id, node, element))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> WorkflowExecutionIdentifier {
        WorkflowExecutionIdentifier {
            project: "p".into(),
            domain: "d".into(),
            name: "x".into(),
            org: String::new(),
        }
    }

    #[test]
    fn keys_follow_flytepropeller_and_locations_follow_the_storage() {
        let local = Layout::new(Storage::local("/srv/alula"));
        assert_eq!(
            local.inputs(&id(), "n0", None),
            "metadata/p/d/x/n0/inputs.pb"
        );
        assert_eq!(
            local.output_prefix(&id(), "n1", Some(7), 2),
            "metadata/p/d/x/n1/7/2"
        );
        assert_eq!(local.raw_prefix(&id(), "n1", None, 0), "raw/p/d/x/n1/0");
        // An execution's own raw output prefix replaces the storage's raw folder.
        assert_eq!(
            local.raw_location(Some("s3://mine/data"), &id(), "n1", Some(3), 1),
            PathBuf::from("s3://mine/data/p/d/x/n1/3/1")
        );
        assert_eq!(
            local.raw_location(Some("file:///tmp/raw"), &id(), "n1", None, 0),
            PathBuf::from("/tmp/raw/p/d/x/n1/0")
        );
        assert_eq!(
            local.raw_location(None, &id(), "n1", None, 0),
            PathBuf::from("/srv/alula/raw/p/d/x/n1/0")
        );
        // Local storage: the plain paths plugins have always been given.
        assert_eq!(
            local.location("metadata/p/d/x/n0/inputs.pb"),
            PathBuf::from("/srv/alula/metadata/p/d/x/n0/inputs.pb")
        );
        let s3 = Layout::new(Storage::from_url("s3://bucket/pre").expect("s3 storage"));
        assert_eq!(
            s3.location("metadata/p/d/x/n0/inputs.pb").to_str(),
            Some("s3://bucket/pre/metadata/p/d/x/n0/inputs.pb")
        );
    }
}
