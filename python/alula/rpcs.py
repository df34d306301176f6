"""The flyteidl RPCs Alula's clients call by name: their service and their request and
response messages (under `flyteidl.`), for proto3 JSON calls through `alula._bridge`."""

from __future__ import annotations

_ADMIN = "flyteidl.service.AdminService"
_SIGNAL = "flyteidl.service.SignalService"
_DATA_PROXY = "flyteidl.service.DataProxyService"
_AUTH_METADATA = "flyteidl.service.AuthMetadataService"
# RPC name -> (service, request message, response message).
RPCS: dict[str, tuple[str, str, str]] = {
    "CreateTask": (_ADMIN, "admin.TaskCreateRequest", "admin.TaskCreateResponse"),
    "CreateWorkflow": (_ADMIN, "admin.WorkflowCreateRequest", "admin.WorkflowCreateResponse"),
    "CreateLaunchPlan": (_ADMIN, "admin.LaunchPlanCreateRequest", "admin.LaunchPlanCreateResponse"),
    "GetTask": (_ADMIN, "admin.ObjectGetRequest", "admin.Task"),
    "GetWorkflow": (_ADMIN, "admin.ObjectGetRequest", "admin.Workflow"),
    "GetLaunchPlan": (_ADMIN, "admin.ObjectGetRequest", "admin.LaunchPlan"),
    "CreateExecution": (_ADMIN, "admin.ExecutionCreateRequest", "admin.ExecutionCreateResponse"),
    "GetExecution": (_ADMIN, "admin.WorkflowExecutionGetRequest", "admin.Execution"),
    "GetExecutionData": (
        _ADMIN,
        "admin.WorkflowExecutionGetDataRequest",
        "admin.WorkflowExecutionGetDataResponse",
    ),
    "TerminateExecution": (
        _ADMIN,
        "admin.ExecutionTerminateRequest",
        "admin.ExecutionTerminateResponse",
    ),
    "ListTaskExecutions": (_ADMIN, "admin.TaskExecutionListRequest", "admin.TaskExecutionList"),
    "CreateUploadLocation": (
        _DATA_PROXY,
        "service.CreateUploadLocationRequest",
        "service.CreateUploadLocationResponse",
    ),
    "GetOAuth2Metadata": (
        _AUTH_METADATA,
        "service.OAuth2MetadataRequest",
        "service.OAuth2MetadataResponse",
    ),
    "GetPublicClientConfig": (
        _AUTH_METADATA,
        "service.PublicClientAuthConfigRequest",
        "service.PublicClientAuthConfigResponse",
    ),
    "ListProjects": (_ADMIN, "admin.ProjectListRequest", "admin.Projects"),
    "GetProject": (_ADMIN, "admin.ProjectGetRequest", "admin.Project"),
    "RegisterProject": (_ADMIN, "admin.ProjectRegisterRequest", "admin.ProjectRegisterResponse"),
    "UpdateProject": (_ADMIN, "admin.Project", "admin.ProjectUpdateResponse"),
    "ListTasks": (_ADMIN, "admin.ResourceListRequest", "admin.TaskList"),
    "ListWorkflows": (_ADMIN, "admin.ResourceListRequest", "admin.WorkflowList"),
    "ListLaunchPlans": (_ADMIN, "admin.ResourceListRequest", "admin.LaunchPlanList"),
    "ListTaskIds": (
        _ADMIN,
        "admin.NamedEntityIdentifierListRequest",
        "admin.NamedEntityIdentifierList",
    ),
    "ListWorkflowIds": (
        _ADMIN,
        "admin.NamedEntityIdentifierListRequest",
        "admin.NamedEntityIdentifierList",
    ),
    "ListLaunchPlanIds": (
        _ADMIN,
        "admin.NamedEntityIdentifierListRequest",
        "admin.NamedEntityIdentifierList",
    ),
    "UpdateLaunchPlan": (_ADMIN, "admin.LaunchPlanUpdateRequest", "admin.LaunchPlanUpdateResponse"),
    "ListExecutions": (_ADMIN, "admin.ResourceListRequest", "admin.ExecutionList"),
    "RelaunchExecution": (
        _ADMIN,
        "admin.ExecutionRelaunchRequest",
        "admin.ExecutionCreateResponse",
    ),
    "RecoverExecution": (_ADMIN, "admin.ExecutionRecoverRequest", "admin.ExecutionCreateResponse"),
    "UpdateExecution": (_ADMIN, "admin.ExecutionUpdateRequest", "admin.ExecutionUpdateResponse"),
    "ListNodeExecutions": (_ADMIN, "admin.NodeExecutionListRequest", "admin.NodeExecutionList"),
    "ListSignals": (_SIGNAL, "admin.SignalListRequest", "admin.SignalList"),
    "SetSignal": (_SIGNAL, "admin.SignalSetRequest", "admin.SignalSetResponse"),
    "GetVersion": (_ADMIN, "admin.GetVersionRequest", "admin.GetVersionResponse"),
}
for _scope in ("ProjectDomain", "Project", "Workflow"):
    for _verb in ("Get", "Update", "Delete"):
        RPCS[f"{_verb}{_scope}Attributes"] = (
            _ADMIN,
            f"admin.{_scope}Attributes{_verb}Request",
            f"admin.{_scope}Attributes{_verb}Response",
        )

# Answered without a token: where to get one.
PUBLIC_RPCS = frozenset({"GetOAuth2Metadata", "GetPublicClientConfig"})
