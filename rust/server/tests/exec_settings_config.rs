//! The server's execution defaults and task resources are read from its TOML file in
//! flyteidl's field names.

use alula_server::FileConfig;

#[test]
fn execution_defaults_and_task_resources_come_from_the_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("alula.toml");
    std::fs::write(
        &path,
        r#"
[execution_defaults]
maxParallelism = 5
[execution_defaults.securityContext.runAs]
k8sServiceAccount = "tasks"
[execution_defaults.rawOutputDataConfig]
outputLocationPrefix = "s3://bucket/raw"

[task_resources.defaults]
cpu = "1"
memory = "1Gi"
[task_resources.limits]
memory = "4Gi"
"#,
    )?;
    let config = FileConfig::load(path.to_str())?;
    let defaults = config.execution_defaults.unwrap_or_default();
    assert_eq!(defaults.max_parallelism, 5);
    let run_as = defaults
        .security_context
        .and_then(|s| s.run_as)
        .unwrap_or_default();
    assert_eq!(run_as.k8s_service_account, "tasks");
    assert_eq!(
        defaults
            .raw_output_data_config
            .map(|r| r.output_location_prefix),
        Some("s3://bucket/raw".to_string())
    );
    let resources = config.task_resources.unwrap_or_default();
    assert_eq!(resources.defaults.unwrap_or_default().memory, "1Gi");
    assert_eq!(resources.limits.unwrap_or_default().memory, "4Gi");
    Ok(())
}
