//! What a local task inherits from the server's environment. A task runs whatever its
//! registration says, so it must not see the server's own secrets: `ALULA_DATABASE_URL` (with
//! its password), `ALULA_SIGNING_KEY` (which signs data links), the console's client secret,
//! or whatever else the operator started the server with. Tasks get the variables named here
//! and nothing else; an operator passes more with the `task_env` setting.
//!
//! Storage credentials (`AWS_*`, `GOOGLE_*`, `AZURE_*`) pass: a local task reads its inputs and
//! writes its outputs in the bucket itself, as a pod does with its service account's. Where
//! tasks must not share the server's bucket access, run them as pods (Kubernetes), which get
//! credentials of their own.

use std::collections::BTreeMap;

/// Variables passed by exact name: the locale and time zone, where temporary files and
/// certificates are, the Python environment the tasks' commands come from, proxies.
const NAMES: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PYTHONPATH",
    "PYTHONHOME",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "LD_LIBRARY_PATH",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Variables passed by prefix: the locale's categories, flytekit's settings (`FLYTE_*`,
/// including its storage settings) and the object stores' credentials.
const PREFIXES: &[&str] = &["LC_", "FLYTE_", "AWS_", "GOOGLE_", "AZURE_"];

/// Whether a variable of the server's environment reaches tasks without being named.
pub fn is_inherited(name: &str) -> bool {
    NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The part of `server` (the server's environment) a task starts with, plus the variables
/// `extra` names (the `task_env` setting). Commands set `PATH` and Flyte's own variables on
/// top of this.
pub fn inherited(
    server: impl IntoIterator<Item = (String, String)>,
    extra: &[String],
) -> BTreeMap<String, String> {
    server
        .into_iter()
        .filter(|(name, _)| is_inherited(name) || extra.iter().any(|e| e == name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (n.to_string(), format!("value of {n}")))
            .collect()
    }

    #[test]
    fn the_servers_secrets_stay_with_the_server() {
        let server = vars(&[
            "ALULA_DATABASE_URL",
            "ALULA_SIGNING_KEY",
            "ALULA_PREVIOUS_SIGNING_KEYS",
            "ALULA_CONSOLE_CLIENT_SECRET",
            "ALULA_CLIENT_SECRET",
            "DATABASE_URL",
            "PGPASSWORD",
            "KUBECONFIG",
            "SECRET_TOKEN",
            "LANG",
            "LC_ALL",
            "TZ",
            "FLYTE_AWS_ENDPOINT",
            "AWS_ACCESS_KEY_ID",
            "AZURE_STORAGE_ACCOUNT_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "https_proxy",
        ]);
        let got: Vec<String> = inherited(server, &[]).into_keys().collect();
        assert_eq!(
            got,
            [
                "AWS_ACCESS_KEY_ID",
                "AZURE_STORAGE_ACCOUNT_KEY",
                "FLYTE_AWS_ENDPOINT",
                "GOOGLE_APPLICATION_CREDENTIALS",
                "LANG",
                "LC_ALL",
                "TZ",
                "https_proxy",
            ]
        );
    }

    #[test]
    fn the_operator_may_pass_more_by_name() {
        let server = vars(&["MY_SERVICE_URL", "MY_SERVICE_URL_2", "ALULA_SIGNING_KEY"]);
        let got = inherited(server, &["MY_SERVICE_URL".to_string()]);
        assert_eq!(got.keys().collect::<Vec<_>>(), ["MY_SERVICE_URL"]);
        assert_eq!(got["MY_SERVICE_URL"], "value of MY_SERVICE_URL");
    }

    #[test]
    fn prefixes_match_only_at_the_start() {
        for name in ["XFLYTE_X", "MY_AWS_KEY", "ALULA_LC_X", "PATH_FLYTE_"] {
            assert!(!is_inherited(name), "{name}");
        }
    }
}
