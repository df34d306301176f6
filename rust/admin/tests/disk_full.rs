//! A full disk under the storage or under the database: the call that needs the space gets
//! RESOURCE_EXHAUSTED saying so, writes nothing, and everything committed before stays readable.
//! The disks are small tmpfs mounts (CI runs as root, as this machine's sessions do); a mount that
//! cannot be made fails the test, it is never skipped.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a panic is how a test reports failure"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use alula_admin::{AdminApi, AdminConfig, Store};
use alula_idl::flyteidl::admin::{self as admin, ExecutionSpec, TaskSpec};
use alula_idl::flyteidl::core::{literal, scalar, Identifier, LiteralMap, SimpleType};
use alula_idl::flyteidl::service::admin_service_server::AdminService;
use alula_storage::Storage;
use common::builders::*;
use tonic::{Code, Request};

/// A fresh folder under the system's temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("alula-disk-full-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A tmpfs of `size` mounted on a new folder, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(parent: &Path, name: &str, size: &str) -> Self {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a {size} tmpfs on {} failed: this test needs root (CI runs as root)",
            dir.display()
        );
        Self(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn text(len: usize) -> LiteralMap {
    literals(&[("s", str_literal(&"x".repeat(len)))])
}

async fn admin_on(db: &Path, storage_root: &Path) -> (AdminApi, Identifier) {
    let store = Store::connect(&format!("sqlite://{}?mode=rwc", db.display()))
        .await
        .unwrap();
    let mut config = AdminConfig::new(
        storage_root.into(),
        "http://127.0.0.1:1".into(),
        b"key".to_vec(),
    );
    config.storage = Storage::local(storage_root);
    let api = AdminApi::new(store, Arc::new(config));
    api.ensure_default_projects().await.unwrap();
    let mut task = int_task("text", "v1", "img:1");
    task.interface = Some(interface(
        &[("s", SimpleType::String)],
        &[("s", SimpleType::String)],
    ));
    let id = task.id.clone().unwrap();
    api.create_task(Request::new(admin::TaskCreateRequest {
        id: task.id.clone(),
        spec: Some(TaskSpec {
            template: Some(task),
            description: None,
        }),
    }))
    .await
    .unwrap();
    (api, id)
}

async fn launch(
    api: &AdminApi,
    task: &Identifier,
    name: &str,
    inputs: LiteralMap,
) -> Result<(), tonic::Status> {
    api.create_execution(Request::new(admin::ExecutionCreateRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        spec: Some(ExecutionSpec {
            launch_plan: Some(task.clone()),
            ..Default::default()
        }),
        inputs: Some(inputs),
        org: String::new(),
    }))
    .await
    .map(|_| ())
}

fn exec_id(name: &str) -> alula_idl::flyteidl::core::WorkflowExecutionIdentifier {
    alula_idl::flyteidl::core::WorkflowExecutionIdentifier {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        org: String::new(),
    }
}

/// The length of input `s` of execution `name`, read back through the API.
async fn input_len(api: &AdminApi, name: &str) -> usize {
    let data = api
        .get_execution_data(Request::new(admin::WorkflowExecutionGetDataRequest {
            id: Some(exec_id(name)),
        }))
        .await
        .unwrap()
        .into_inner();
    let s = &data.full_inputs.unwrap().literals["s"];
    match &s.value {
        Some(literal::Value::Scalar(sc)) => match &sc.value {
            Some(scalar::Value::Primitive(p)) => match &p.value {
                Some(alula_idl::flyteidl::core::primitive::Value::StringValue(v)) => v.len(),
                other => panic!("not a string: {other:?}"),
            },
            other => panic!("not a primitive: {other:?}"),
        },
        other => panic!("not a scalar: {other:?}"),
    }
}

async fn assert_absent(api: &AdminApi, name: &str) {
    let got = api
        .get_execution(Request::new(admin::WorkflowExecutionGetRequest {
            id: Some(exec_id(name)),
        }))
        .await;
    assert_eq!(
        got.map(|_| ()).unwrap_err().code(),
        Code::NotFound,
        "the refused execution {name} left a record"
    );
}

#[tokio::test]
async fn a_full_storage_disk_refuses_the_write_and_keeps_what_was_there() {
    let dir = TempDir::new();
    let disk = SmallDisk::mount(dir.path(), "storage", "3m");
    let (api, task) = admin_on(&dir.path().join("alula.db"), &disk.0).await;
    // Above the 1 MiB inline limit: offloaded to storage.
    launch(&api, &task, "fits", text(1_500_000)).await.unwrap();
    let refused = launch(&api, &task, "too-big", text(2_000_000))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("no space left"),
        "{}",
        refused.message()
    );
    assert_absent(&api, "too-big").await;
    assert_eq!(input_len(&api, "fits").await, 1_500_000);
    drop(disk);
}

#[tokio::test]
async fn a_full_database_disk_refuses_the_write_and_keeps_what_was_committed() {
    let dir = TempDir::new();
    let disk = SmallDisk::mount(dir.path(), "db", "2m");
    let storage = dir.path().join("storage");
    let (api, task) = admin_on(&disk.0.join("alula.db"), &storage).await;
    // Below the inline limit: each input goes into the database, until it is full.
    let mut created = Vec::new();
    let refused = loop {
        let name = format!("run-{}", created.len());
        match launch(&api, &task, &name, text(400_000)).await {
            Ok(()) => created.push(name),
            Err(status) => break status,
        }
        assert!(created.len() < 20, "2 MiB never filled up");
    };
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("no space left"),
        "{}",
        refused.message()
    );
    assert!(!created.is_empty(), "the database took nothing at all");
    assert_absent(&api, &format!("run-{}", created.len())).await;
    for name in &created {
        assert_eq!(input_len(&api, name).await, 400_000, "{name}");
    }
    drop(disk);
}
