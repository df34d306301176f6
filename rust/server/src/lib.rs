//! Alula's control plane: admin (gRPC + HTTP) and a propeller that runs task attempts as local
//! processes or pods, in one process or (by [`Role`]) in separate ones. Used by the
//! `alula-server` binary and by `alula start` (through the Python bridge).
//!
//! Every role serves `GET /healthz` (liveness), `GET /readyz` (the database answers, if the
//! server has one, and, where a propeller runs, its loop goes round; 503 with the reasons
//! otherwise) and `GET /metrics` on its HTTP port.
//!
//! Settings come from a TOML file (every key optional), overridden by `ALULA_*` environment
//! variables:
//!
//! | key | env | default |
//! |---|---|---|
//! | `host` | `ALULA_HOST` | `127.0.0.1` |
//! | `grpc_port` | `ALULA_GRPC_PORT` | 8089 (flyte-binary's) |
//! | `http_port` | `ALULA_HTTP_PORT` | 8088 |
//! | `storage_root` | `ALULA_STORAGE_ROOT` | `./alula-data` (local state: the SQLite file, task work folders) |
//! | `storage_url` | `ALULA_STORAGE_URL` | the storage root (object storage: `s3://bucket/prefix` for S3-compatible stores, credentials from `AWS_*`) |
//! | `database_url` | `ALULA_DATABASE_URL` | `sqlite://<storage_root>/alula.db?mode=rwc` |
//! | `public_http_url` | `ALULA_PUBLIC_HTTP_URL` | `http://<host>:<http_port>` |
//! | `allowed_hosts` | `ALULA_ALLOWED_HOSTS` (`,`-separated) | — (names the HTTP port answers besides `localhost`, IP addresses and `public_http_url`'s host; `*`: any) |
//! | `allowed_origins` | `ALULA_ALLOWED_ORIGINS` (`,`-separated) | — (origins, `scheme://host[:port]`, whose pages may call the HTTP port besides its own and `public_http_url`'s; `*`: any) |
//! | `signing_key` | `ALULA_SIGNING_KEY` | random at each start |
//! | `domains` | — | development, staging, production |
//! | `default_projects` | — | flytesnacks |
//! | `role` | `ALULA_ROLE` | `all` (admin and propeller); `admin` (the API only); `propeller` (no API: the HTTP port serves only the probes and `/metrics`) |
//! | `propeller` | `ALULA_PROPELLER` (`0` disables) | on (off: role `all` becomes `admin`) |
//! | `scheduler` | `ALULA_SCHEDULER` (`0` disables) | on where the API is served (roles `all` and `admin`): launches the executions of active launch plans' schedules (`alula_admin::schedule`); replicas share the ticks, each launched once |
//! | `instance_id` | `ALULA_INSTANCE_ID` | `embedded`; for role `propeller`, `$POD_NAME` or the host name |
//! | `task_path` | `ALULA_TASK_PATH` (`:`-separated) | — (folders put first on tasks' `PATH`) |
//! | `warm_workers` | `ALULA_WARM_WORKERS` | 2 (Python workers for Alula tasks; 0 disables) |
//! | `warm_idle_seconds` | `ALULA_WARM_IDLE_SECONDS` | 300 (a code bundle's warm workers stop after this long without work) |
//! | `max_parallelism` | `ALULA_MAX_PARALLELISM` | 25 (attempts in flight per execution; 0: no limit) |
//! | `kubernetes` | `ALULA_KUBECONFIG` (a kubeconfig path; enables it) | off (see [`KubernetesConfig`]) |
//! | `[kubernetes] operators` | — | none (operator plugins to run, each serving its task type: `spark` (SparkApplication), `ray` (RayJob), `pytorch` (PyTorchJob), `tensorflow` (TFJob), `mpi` (MPIJob); the cluster needs the operator, propeller the chart's `operators` RBAC) |
//! | `execution_defaults` | — | none (flyteidl `WorkflowExecutionConfig`: the settings executions get when neither they, their launch plan nor matchable attributes set them, e.g. `[execution_defaults.securityContext.runAs] k8sServiceAccount = "tasks"`) |
//! | `task_resources` | — | none (flyteidl `TaskResourceAttributes` under `TASK_RESOURCE` attributes: `[task_resources.defaults] cpu = "1"`, `[task_resources.limits] memory = "4Gi"`) |
//! | `insecure_no_auth` | `ALULA_INSECURE_NO_AUTH` (`1`/`0`) | false (without it, a server with auth off refuses to serve the API on a non-loopback `host`; `0.0.0.0` and `::` are not loopback) |
//! | `tls_cert`, `tls_key` | `ALULA_TLS_CERT`, `ALULA_TLS_KEY` | — (PEM files: both ports speak TLS, reloaded when the files change; both or neither; the default `public_http_url` becomes `https://`) |
//! | `previous_signing_keys` | `ALULA_PREVIOUS_SIGNING_KEYS` (`,`-separated) | — (earlier `signing_key`s whose signed URLs stay valid: a rotation) |
//! | `task_user` | `ALULA_TASK_USER` | — (the unprivileged user local task processes run as when the server runs as root) |
//! | `task_env` | `ALULA_TASK_ENV` (`,`-separated) | — (names of the server's environment variables local tasks get too; otherwise they get only the locale, time zone, proxies, certificate paths, the Python environment, `FLYTE_*` and the object stores' `AWS_*`/`GOOGLE_*`/`AZURE_*`, never `ALULA_*` such as the database URL or signing key) |
//! | `[auth] mode` | `ALULA_AUTH` | `off`; `builtin` (this server issues tokens to `alula auth create-client` clients); `oidc` (an identity provider does) |
//! | `[auth] issuer` | `ALULA_OIDC_ISSUER` | OIDC: required (the provider's URL); built-in: `public_http_url` |
//! | `[auth] audience` | `ALULA_OIDC_AUDIENCE` | `alula` (the `aud` tokens must carry) |
//! | `[auth] cli_client_id` | `ALULA_OIDC_CLIENT_ID` | `flytectl` (the public client flytekit uses for `Pkce` / `DeviceFlow`) |
//! | `[auth] redirect_uri` | — | `http://localhost:53593/callback` (flytekit's) |
//! | `[auth] scopes` | — | `openid`, `profile`, `email`, `offline_access` |
//! | `[auth] console_client_id` | `ALULA_CONSOLE_CLIENT_ID` | `alula-console` (the console's client at the provider) |
//! | `[auth] console_client_secret` | `ALULA_CONSOLE_CLIENT_SECRET` | — (a confidential console client's secret) |
//! | `[auth] groups_claim` | — | `groups` |
//! | `[auth] trust_username_claim` | — | false (`user:NAME` bindings match the token's `sub`, and its `email` when `email_verified`; true lets them match `preferred_username` too: only for providers where people cannot choose or change it) |
//! | `[auth] authorization_metadata_key` | — | `authorization` (the gRPC metadata key clients put the token under; `authorization` is always accepted) |
//! | `[auth] token_lifetime_seconds` | — | 3600 (built-in tokens; a built-in token living longer, plus the leeway, or without `iat` is refused) |
//! | `[auth] leeway_seconds` | — | 30 (clock skew allowed; at most 300) |
//! | `[auth] provider_ca_file` | — | — (a PEM CA to trust for the provider, besides the web PKI) |
//! | `[notifications] max_attempts` | — | 8 (sends tried before a notification is marked failed and logged) |
//! | `[notifications] initial_backoff_ms`, `max_backoff_seconds` | — | 1000, 300 (the wait after a failed send doubles from the first up to the second) |
//! | `[notifications] poll_interval_ms`, `send_timeout_seconds`, `keep_days` | — | 1000, 30, 14 (how often the outbox is read; the longest one send may take; how long sent and failed notifications stay in it) |
//! | `[notifications.templates] subject`, `body` | — | Flyte's (`{{ name }}`, `{{ phase }}`, `{{ error }}`, `{{ execution.link }}`... see `alula_admin::notify::template`) |
//! | `[notifications.smtp] host`, `port`, `from`, `username`, `password`, `security` | `ALULA_SMTP_PASSWORD` (the password) | none (email; `security`: `starttls` (port 587), `tls` (465) or `none` (25)) |
//! | `[notifications.slack] webhook_url` | `ALULA_SLACK_WEBHOOK_URL` | none (Slack notifications are posted there as `{"text": ...}`; without it they are emailed to their addresses, as Flyte does) |
//! | `[notifications.pagerduty] routing_key`, `events_url`, `severity`, `source` | `ALULA_PAGERDUTY_ROUTING_KEY` | none (Events API v2 triggers; `events_url` defaults to PagerDuty's; without it they are emailed) |
//! | `[plugins] enabled` | — | every plugin set up (`k8s` with `kubernetes`, `warm`, `process`, `agent` with `[plugins.agent]`): the plugins tasks may run on |
//! | `[plugins.default_for_task_types]` | — | none (task type, or `type:version`, → plugin name, e.g. `spark = "spark"`; other types go to a plugin naming the type, else to the first container plugin accepting the task; a task none runs is refused at registration and launch) |
//! | `[plugins.agent]` | — | none (agents: `[plugins.agent.agents.NAME] endpoint = "http://host:port"`, `timeout_seconds`, `insecure` (default true; `false`: TLS to an `https://` or `dns:///` endpoint, checked against the system's roots and `ca_file`), `ca_file`; `agent_for_task_types`, `poll_interval_ms`, `discovery_interval_seconds`; see [`plugins`]) |
//! | `[control_plane] endpoint` | `ALULA_CONTROL_PLANE_ENDPOINT` | none (role `propeller` only: admin's gRPC endpoint, `https://` or `http://`; the propeller then reaches admin over the network (`alula.plane.v1.ControlPlaneService`) and opens no database, so `database_url` must be unset; see [`remote`]) |
//! | `[control_plane] client_id`, `client_secret` | `ALULA_CONTROL_PLANE_CLIENT_ID`, `ALULA_CONTROL_PLANE_CLIENT_SECRET` | none (the OAuth2 client the propeller authenticates as, with client credentials; it needs the `admin` role on every project; without them no token is sent) |
//! | `[control_plane] token_url`, `ca_file`, `insecure_plaintext` | —, `ALULA_CONTROL_PLANE_CA_FILE`, `ALULA_CONTROL_PLANE_INSECURE_PLAINTEXT` (`1`/`0`) | admin's OAuth2 metadata's token endpoint; none; false (credentials are never sent over plain `http://` to another machine unless set) |
//! | `[[auth.bindings]]` | — | none: `subject` (`user:NAME`, `group:NAME`, `client:ID`), `project` and `domain` (default `*`: all), `role` (`viewer`, `runner`, `developer`, `admin`); `alula auth grant` adds more in the database |
//!
//! The HTTP port refuses what a web page could do to it (`alula_admin::guard`): a `Host` it
//! does not answer (DNS rebinding), an `Origin` of another site, and mutating REST calls whose
//! body is not JSON or protobuf.
//!
//! With `kubernetes`, container tasks run as pods (`alula_k8s::PodPlugin`, tried before the
//! warm and process plugins, so Alula tasks become pods too):
//!
//! ```toml
//! [kubernetes]
//! kubeconfig = "/etc/alula/kubeconfig"   # default: $KUBECONFIG, ~/.kube/config or in-cluster
//! pod_storage_prefix = "/data/alula"     # default: the storage root itself
//! [kubernetes.pods]                      # alula_k8s::PodPluginConfig, every key optional
//! namespace = "flyte"
//! node_selector = { "alula/pool" = "tasks" }
//! [[kubernetes.pods.logs.templates]]     # log links in task events (Flyte's logs.templates)
//! displayName = "Pod logs"
//! templateUris = ["https://logs.example/{{ .namespace }}/{{ .podName }}/{{ .containerName }}"]
//! ```
//!
//! Task events link every attempt's logs to `<public_http_url>/api/v1/logs/...`
//! (`alula_admin::logs`); with `kubernetes`, that route reads running pods' logs through the
//! API server (the pod plugin's service account then needs `get` on `pods/log`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub mod auth_cli;
mod maintenance;
pub mod plugins;
mod propeller;
pub mod remote;
mod role;
pub mod security;
mod settings;

use alula_admin::app::Instrumentation;
use alula_admin::auth::{Auth, AuthMode};
use alula_admin::authz::Gate;
use alula_admin::{app, AdminApi, AdminConfig, Store};
use anyhow::{bail, Context, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use role::Role;
pub(crate) use settings::comma_list;
pub use settings::{config_path, FileConfig, KubernetesConfig};

/// Where the server listens, for callers that print it.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `None` for role `propeller`, which serves no API.
    pub grpc: Option<SocketAddr>,
    pub http: SocketAddr,
    pub storage_root: PathBuf,
    pub database: String,
    /// Where browsers and clients reach the HTTP port (the console, signed URLs, log links).
    pub public_http_url: String,
    /// Whether callers authenticate, and how.
    pub auth_mode: alula_admin::auth::AuthMode,
    /// The certificate both ports present (TLS on), for clients that must trust it.
    pub tls_cert: Option<PathBuf>,
}

/// Where the server listens when the settings name no host: this machine only.
pub const DEFAULT_HOST: &str = "127.0.0.1";

/// The HTTP port's URL when `public_http_url` is not set: the bound address, except that a
/// wildcard bind (`0.0.0.0`, `::`) is reached on this machine's loopback — no browser or client
/// should be handed a link to `0.0.0.0`.
fn default_public_http_url(bound: SocketAddr, tls: bool) -> String {
    let ip = match bound.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, bound.port()))
}

/// `database_url` fit for messages and logs: a PostgreSQL password (`user:secret@host`) is left
/// out.
pub(crate) fn without_password(database_url: &str) -> String {
    let Some((scheme, rest)) = database_url.split_once("://") else {
        return database_url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => {
                format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
            }
            None => database_url.to_string(),
        },
        None => database_url.to_string(),
    }
}

/// Makes an SQLite database file readable by the server's user only: it holds the built-in
/// authorization server's signing keys and client secret hashes, and local tasks (running as
/// `task_user`) can read the storage root it usually sits in. SQLite creates its `-wal` and
/// `-shm` files with the database file's mode. Best effort, like the storage root's tag.
pub(crate) fn restrict_database_file(database_url: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Some(rest) = database_url.strip_prefix("sqlite://") else {
        return;
    };
    let path = rest.split('?').next().unwrap_or(rest);
    if path.is_empty() || path.starts_with(':') {
        return;
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = format!("{path}{suffix}");
        if std::path::Path::new(&file).exists() {
            if let Err(e) = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
            {
                tracing::warn!(file, error = %e, "cannot make the database file private");
            }
        }
    }
}

/// The pod plugin (its watcher spawned) for the `kubernetes` settings.
async fn pod_plugin(
    k8s: KubernetesConfig,
    storage_root: &std::path::Path,
) -> Result<(Arc<alula_k8s::PodPlugin>, kube::Client)> {
    let client_config = match &k8s.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("finding a Kubernetes configuration")?,
    };
    let client = kube::Client::try_from(client_config).context("building the Kubernetes client")?;
    let mut pods = k8s.pods;
    pods.storage_root = storage_root.to_path_buf();
    pods.pod_storage_prefix = k8s
        .pod_storage_prefix
        .unwrap_or_else(|| storage_root.display().to_string());
    tracing::info!(
        namespace = %pods.namespace,
        pod_storage_prefix = %pods.pod_storage_prefix,
        "container tasks run as Kubernetes pods"
    );
    let plugin = alula_k8s::PodPlugin::new(client.clone(), pods);
    // Runs as long as the runtime: the plugin lives until the process ends.
    drop(plugin.spawn_watcher());
    Ok((Arc::new(plugin), client))
}

/// Marks the storage root as the server's (a Cache Directory Tagging `CACHEDIR.TAG`): `alula
/// start` is often run in a workflow folder, and the SDK's code bundles, like backup tools,
/// leave out a folder so tagged instead of packing every project's bundles and task data.
/// Best effort: a read-only root (a mounted volume) is not a reason not to start.
fn tag_storage_root(root: &std::path::Path) {
    const TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
        # alula-server's storage root (database, code bundles, task data): not source code.\n\
        # For information about cache directory tags see https://bford.info/cachedir/\n";
    let path = root.join("CACHEDIR.TAG");
    if path.exists() {
        return;
    }
    if let Err(e) = std::fs::write(&path, TAG) {
        tracing::warn!(path = %path.display(), error = %e, "cannot tag the storage root");
    }
}

/// The storage root (created, made absolute and tagged) and the database URL the settings name:
/// the server and `alula auth` open the same database.
pub fn storage_and_database(file: &FileConfig) -> Result<(PathBuf, String)> {
    let storage_root = file
        .storage_root
        .clone()
        .unwrap_or_else(|| PathBuf::from("alula-data"));
    std::fs::create_dir_all(&storage_root)
        .with_context(|| format!("creating storage root {}", storage_root.display()))?;
    let storage_root = storage_root
        .canonicalize()
        .with_context(|| format!("resolving storage root {}", storage_root.display()))?;
    tag_storage_root(&storage_root);
    let database_url = file.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            storage_root.join("alula.db").display()
        )
    });
    Ok((storage_root, database_url))
}

/// The switch every part of a server stops on: set when `shutdown` resolves, or by a part that
/// ends on its own (a propeller-only replica whose loop died must exit, so that it is
/// restarted, not linger half-alive).
pub(crate) fn stop_switch(
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Arc<watch::Sender<bool>> {
    let stop = Arc::new(watch::channel(false).0);
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.send_replace(true);
        }
    });
    stop
}

/// Resolves once `stop` is set.
pub(crate) fn stopped(stop: &watch::Sender<bool>) -> impl std::future::Future<Output = ()> {
    let mut rx = stop.subscribe();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Runs what the role asks for (admin, propeller or both) until `shutdown` resolves, or until
/// one of them stops. `ready` is called once the listeners are bound.
pub async fn run(
    file: FileConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(&Endpoints),
) -> Result<()> {
    let mut file = file;
    let role = Role::resolve(file.role, file.propeller)?;
    let mut propeller_settings = propeller::Settings::take(&mut file);
    // Before anything binds or is created: settings that would serve an open API to the
    // network, or that contradict themselves, stop the start here.
    security::check(
        &file,
        file.host.as_deref().unwrap_or(DEFAULT_HOST),
        role.serves_api(),
    )?;
    // A propeller working for an admin elsewhere: no database, no API (remote.rs).
    if let Some(control_plane) = file.control_plane.take() {
        if role != Role::Propeller {
            bail!(
                "[control_plane] is the admin a role = \"propeller\" server works for; role \
                 {role:?} serves admin itself"
            );
        }
        return remote::run_propeller(file, propeller_settings, control_plane, shutdown, ready)
            .await;
    }
    let tls = security::tls_files(&file)?;
    let mut auth_settings = security::auth_settings(&file)?;
    let previous_signing_keys: Vec<Vec<u8>> = file
        .previous_signing_keys
        .iter()
        .flatten()
        .map(|k| k.clone().into_bytes())
        .collect();
    let (storage_root, database_url) = storage_and_database(&file)?;
    let host = file.host.unwrap_or_else(|| DEFAULT_HOST.to_string());

    // Before binding: a database that cannot be opened (a damaged file, say) must fail the
    // start with its reason, not leave ports bound that answer nothing.
    let store = Store::connect(&database_url)
        .await
        .with_context(|| format!("opening database {}", without_password(&database_url)))?;
    restrict_database_file(&database_url);

    let grpc_addr: SocketAddr = format!("{host}:{}", file.grpc_port.unwrap_or(8089)).parse()?;
    let http_addr: SocketAddr = format!("{host}:{}", file.http_port.unwrap_or(8088)).parse()?;
    let grpc = match role.serves_api() {
        true => Some(
            TcpListener::bind(grpc_addr)
                .await
                .with_context(|| format!("binding gRPC to {grpc_addr}"))?,
        ),
        false => None,
    };
    let http = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding HTTP to {http_addr}"))?;
    let http_bound = http.local_addr()?;

    let signing_key = match file.signing_key {
        Some(k) => k.into_bytes(),
        // Upload URLs only live for an hour, so a per-start key costs nothing.
        None => rand::random::<[u8; 32]>().to_vec(),
    };
    let mut config = AdminConfig::new(
        storage_root.clone(),
        file.public_http_url
            .unwrap_or_else(|| default_public_http_url(http_bound, tls.is_some())),
        signing_key,
    );
    config.previous_signing_keys = previous_signing_keys;
    security::builtin_issuer(&mut auth_settings, &config.public_http_url);
    config.auth = auth_settings;
    config.tls = tls;
    let storage = match &file.storage_url {
        Some(url) => alula_storage::Storage::from_url(url)?,
        None => alula_storage::Storage::local(&storage_root),
    };
    config.storage = storage.clone();
    config.execution_defaults = file.execution_defaults.clone().unwrap_or_default();
    config.task_resources = file.task_resources.clone().unwrap_or_default();
    config
        .http_access
        .allowed_hosts
        .extend(file.allowed_hosts.unwrap_or_default());
    config
        .http_access
        .allowed_origins
        .extend(file.allowed_origins.unwrap_or_default());
    if let Some(domains) = file.domains {
        config.domains = domains;
    }
    if let Some(projects) = file.default_projects {
        config.default_projects = projects;
    }
    config.notifications = file.notifications.unwrap_or_default();
    // Admin's AgentMetadataService lists what the configured agents run.
    if let Some(agent) = propeller_settings
        .plugins
        .as_ref()
        .and_then(|p| p.agent.as_ref())
    {
        config.agents =
            alula_admin::agents::AgentDirectory::new(&agent.agents).context("[plugins.agent]")?;
    }
    // Settings that cannot work (a malformed sender address, say) fail the start.
    let notifier = match role.serves_api() {
        true => Some(
            alula_admin::notify::Notifier::new(
                store.clone(),
                config.notifications.clone(),
                config.public_http_url.clone(),
            )
            .context("setting up notifications")?,
        ),
        false => None,
    };

    // Before `ready`: an identity provider that cannot be reached, or signing keys that cannot
    // be loaded, fail the start instead of leaving an API that refuses everyone.
    let gate = match role.serves_api() {
        true => {
            let auth = Auth::new(config.auth.clone(), store.clone())
                .await
                .context("setting up authentication")?;
            Some(Gate::new(auth, store.clone()))
        }
        false => None,
    };
    if config.auth.mode == AuthMode::Off && role.serves_api() && !security::is_loopback(&host) {
        tracing::warn!(%host, "serving the API without authentication (insecure_no_auth)");
    }

    let endpoints = Endpoints {
        grpc: grpc.as_ref().map(TcpListener::local_addr).transpose()?,
        http: http_bound,
        storage_root: storage_root.clone(),
        database: format!("{:?}", store.backend()),
        public_http_url: config.public_http_url.clone(),
        auth_mode: config.auth.mode,
        tls_cert: config.tls.as_ref().map(|t| t.cert.clone()),
    };
    tracing::info!(
        ?role,
        grpc = ?endpoints.grpc,
        http = %endpoints.http,
        storage = %storage_root.display(),
        database = ?store.backend(),
        "alula-server listening"
    );
    ready(&endpoints);

    let config = Arc::new(config);
    let api = AdminApi::new(store.clone(), config.clone());
    let maintenance = tokio::spawn(maintenance::run(store.clone()));
    let stop = stop_switch(shutdown);
    // Admin sends the notifications its event ingestion queues (see `alula_admin::notify`).
    let notifier = notifier.map(|n| tokio::spawn(n.run(stopped(&stop))));
    // Launch-plan schedules tick wherever the API is served; replicas share the ticks.
    let scheduler = (role.serves_api() && file.scheduler.unwrap_or(true)).then(|| {
        let instance = format!("scheduler-{:016x}", rand::random::<u64>());
        let clock = Arc::new(alula_admin::schedule::SystemClock);
        let scheduler = alula_admin::schedule::Scheduler::new(api.clone(), clock, instance);
        tokio::spawn(scheduler.run(stopped(&stop)))
    });
    let mut instrumentation = Instrumentation::default();

    let propeller = if role.runs_propeller() {
        let parts = propeller::Parts {
            instance_id: match file.instance_id.take() {
                Some(id) => id,
                None => role::default_instance_id(role)?,
            },
            storage_root: storage_root.clone(),
            storage: storage.clone(),
            // Task events link attempts' logs to admin's log route.
            log_base_url: Some(config.public_http_url.clone()),
        };
        let (propeller, registry) = propeller::build(
            std::mem::take(&mut propeller_settings),
            parts,
            Arc::new(api.clone()),
            &mut instrumentation,
        )
        .await?;
        // Admin in this process refuses tasks no plugin runs at registration and launch.
        api.serve_tasks_of(registry);
        Some(propeller::spawn(propeller, stopped(&stop), stop.clone()))
    } else {
        None
    };

    let served = match grpc {
        Some(grpc) => {
            // Present whenever the API is served (see above).
            let gate = gate.context("the API is served without its authorization gate")?;
            // The web console reads through the same services the API serves.
            let console = alula_console::Api::new(api.clone(), gate.clone(), config.clone());
            instrumentation.routes.push(alula_console::router(console));
            app::serve_api(
                api,
                gate,
                config,
                grpc,
                http,
                instrumentation,
                stopped(&stop),
            )
            .await
        }
        None => {
            let access = config.http_access.clone();
            app::serve_probes(
                Some(store.clone()),
                http,
                access,
                instrumentation,
                stopped(&stop),
            )
            .await
        }
    };
    // A server that failed stops the propeller too (which then releases its leases).
    stop.send_replace(true);
    if let Some(handle) = propeller {
        propeller::join(handle).await;
    }
    maintenance.abort();
    if let Some(scheduler) = scheduler {
        scheduler.abort();
    }
    if let Some(notifier) = notifier {
        notifier.abort();
    }
    store.close().await;
    served?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_stay_out_of_messages() {
        assert_eq!(
            without_password("postgres://alula:s3cret@db:5432/alula?sslmode=require"),
            "postgres://alula:***@db:5432/alula?sslmode=require"
        );
        assert_eq!(
            without_password("postgres://alula@db/alula"),
            "postgres://alula@db/alula"
        );
        let sqlite = "sqlite:///data/alula.db?mode=rwc";
        assert_eq!(without_password(sqlite), sqlite);
    }

    #[test]
    fn wildcard_binds_are_reached_on_loopback() {
        let url = |a: &str| default_public_http_url(a.parse().expect("address"), false);
        assert_eq!(url("0.0.0.0:8088"), "http://127.0.0.1:8088");
        assert_eq!(url("[::]:8088"), "http://[::1]:8088");
        assert_eq!(url("10.1.2.3:80"), "http://10.1.2.3:80");
        assert_eq!(url("127.0.0.1:30080"), "http://127.0.0.1:30080");
        let tls = default_public_http_url("0.0.0.0:8443".parse().expect("address"), true);
        assert_eq!(tls, "https://127.0.0.1:8443");
    }

    #[test]
    fn kubernetes_table_parses() {
        let config: FileConfig = toml::from_str(
            r#"
            [kubernetes]
            kubeconfig = "/etc/kubeconfig"
            [kubernetes.pods]
            namespace = "flyte"
            node_selector = { "alula/local" = "true" }
            image_pull_grace = 5
            "#,
        )
        .expect("config");
        let k8s = config.kubernetes.expect("kubernetes");
        assert_eq!(k8s.kubeconfig, Some(PathBuf::from("/etc/kubeconfig")));
        assert_eq!(k8s.pod_storage_prefix, None);
        assert_eq!(k8s.pods.namespace, "flyte");
        assert_eq!(k8s.pods.node_selector["alula/local"], "true");
        assert_eq!(k8s.pods.image_pull_grace.as_secs(), 5);

        let config: FileConfig = toml::from_str("[kubernetes]\n").expect("empty table");
        assert_eq!(
            config.kubernetes.expect("kubernetes").pods.namespace,
            "default"
        );
        assert!(toml::from_str::<FileConfig>("[kubernetes]\nnamespace = \"x\"\n").is_err());
    }

    #[test]
    fn http_access_lists() {
        let config: FileConfig = toml::from_str(
            "allowed_hosts = [\"alula.example.com\"]\nallowed_origins = [\"https://ui.example\"]\n",
        )
        .expect("config");
        assert_eq!(config.allowed_hosts, Some(vec!["alula.example.com".into()]));
        assert_eq!(
            config.allowed_origins,
            Some(vec!["https://ui.example".into()])
        );
        assert_eq!(
            comma_list(" a.example, ,b.example:8088,"),
            ["a.example", "b.example:8088"]
        );
        assert!(comma_list("").is_empty());
    }

    #[test]
    fn notification_settings_parse_from_the_file() {
        let config: FileConfig = toml::from_str(
            r#"
            [notifications]
            max_attempts = 4
            [notifications.smtp]
            host = "mail.example"
            from = "Alula <alula@example.com>"
            security = "tls"
            [notifications.slack]
            webhook_url = "https://hooks.example/x"
            [notifications.templates]
            subject = "{{ name }} {{ phase }}"
            body = "see {{ execution.link }}"
            "#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let n = config.notifications.unwrap_or_default();
        assert_eq!(n.max_attempts, 4);
        assert_eq!(n.smtp.as_ref().map(|s| s.port()), Some(465));
        assert_eq!(n.templates.subject, "{{ name }} {{ phase }}");
        assert!(n.pagerduty.is_none());
        let typo =
            toml::from_str::<FileConfig>("[notifications.smtp]\nhots = \"x\"\nfrom = \"a@b\"");
        assert!(typo.is_err(), "unknown keys are refused");
    }
}
