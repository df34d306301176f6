"""A task agent for the agent tests, speaking flyteidl's agent services over gRPC (the stubs of
the `flyteidl` package from PyPI): an async agent for task type `counting_task` that records
every CreateTask and DeleteTask in files (so a test can count them across propeller restarts)
and finishes a task once the test creates `<state>/release`, and a sync agent for `echo_task`
(ExecuteTaskSync answers `o0 = x + 1`).

    python counting_agent.py PORT STATE_DIR
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
from flyteidl.admin import agent_pb2 as a
from flyteidl.core import execution_pb2, literals_pb2, tasks_pb2
from flyteidl.service import agent_pb2_grpc as svc
from google.protobuf import json_format

COUNTING = "counting_task"
ECHO = "echo_task"


def _int_literal(v: int) -> literals_pb2.Literal:
    return literals_pb2.Literal(
        scalar=literals_pb2.Scalar(primitive=literals_pb2.Primitive(integer=v))
    )


def _input_x(inputs: literals_pb2.LiteralMap) -> int:
    return int(inputs.literals["x"].scalar.primitive.integer)


def _custom(template: tasks_pb2.TaskTemplate) -> dict[str, object]:
    return json_format.MessageToDict(template.custom)


class Agent(
    svc.AsyncAgentServiceServicer, svc.SyncAgentServiceServicer, svc.AgentMetadataServiceServicer
):
    def __init__(self, state: Path) -> None:
        self.state = state

    def _record(self, name: str, line: str) -> None:
        with (self.state / name).open("a") as f:
            f.write(line + "\n")
            f.flush()

    # AsyncAgentService
    def CreateTask(
        self, request: a.CreateTaskRequest, context: grpc.ServicerContext
    ) -> a.CreateTaskResponse:
        if request.template.type != COUNTING:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"not a {COUNTING}: {request.template.type}"
            )
        meta = request.task_execution_metadata.task_execution_id
        node = meta.node_execution_id
        job = f"{node.execution_id.name}/{node.node_id}/{meta.retry_attempt}"
        x = _input_x(request.inputs)
        fail = bool(_custom(request.template).get("fail"))
        self._record("creates", job)
        # The resource meta carries everything GetTask needs: the agent keeps no state.
        return a.CreateTaskResponse(resource_meta=f"{job}|{x}|{int(fail)}".encode())

    def GetTask(
        self, request: a.GetTaskRequest, context: grpc.ServicerContext
    ) -> a.GetTaskResponse:
        job, x, fail = request.resource_meta.decode().split("|")
        phase = execution_pb2.TaskExecution
        link = [execution_pb2.TaskLog(uri=f"https://agent.example/jobs/{job}", name="Counting job")]
        if not (self.state / "release").exists():
            return a.GetTaskResponse(resource=a.Resource(phase=phase.RUNNING, log_links=link))
        if fail == "1":
            return a.GetTaskResponse(
                resource=a.Resource(
                    phase=phase.FAILED,
                    message=f"counting job {job} broke: quota exceeded",
                    log_links=link,
                )
            )
        outputs = literals_pb2.LiteralMap(literals={"o0": _int_literal(int(x) * 2)})
        return a.GetTaskResponse(
            resource=a.Resource(phase=phase.SUCCEEDED, outputs=outputs, log_links=link)
        )

    def DeleteTask(
        self, request: a.DeleteTaskRequest, context: grpc.ServicerContext
    ) -> a.DeleteTaskResponse:
        self._record("deletes", request.resource_meta.decode().split("|")[0])
        return a.DeleteTaskResponse()

    # SyncAgentService
    def ExecuteTaskSync(
        self, request_iterator: Iterator[a.ExecuteTaskSyncRequest], context: grpc.ServicerContext
    ) -> Iterator[a.ExecuteTaskSyncResponse]:
        header = None
        x = None
        for part in request_iterator:
            if part.HasField("header"):
                header = part.header
            elif part.HasField("inputs"):
                x = _input_x(part.inputs)
        if header is None or x is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "expected a header and the inputs")
        self._record("sync_calls", header.template.id.name)
        outputs = literals_pb2.LiteralMap(literals={"o0": _int_literal(x + 1)})
        resource = a.Resource(phase=execution_pb2.TaskExecution.SUCCEEDED, outputs=outputs)
        yield a.ExecuteTaskSyncResponse(header=a.ExecuteTaskSyncResponseHeader(resource=resource))

    # AgentMetadataService
    def _agents(self) -> list[a.Agent]:
        return [
            a.Agent(
                name="Counting Agent",
                is_sync=False,
                supported_task_categories=[a.TaskCategory(name=COUNTING, version=0)],
            ),
            a.Agent(
                name="Echo Agent",
                is_sync=True,
                supported_task_categories=[a.TaskCategory(name=ECHO, version=0)],
            ),
        ]

    def ListAgents(
        self, request: a.ListAgentsRequest, context: grpc.ServicerContext
    ) -> a.ListAgentsResponse:
        return a.ListAgentsResponse(agents=self._agents())

    def GetAgent(
        self, request: a.GetAgentRequest, context: grpc.ServicerContext
    ) -> a.GetAgentResponse:
        for agent in self._agents():
            if agent.name == request.name:
                return a.GetAgentResponse(agent=agent)
        context.abort(grpc.StatusCode.NOT_FOUND, f"no agent {request.name}")
        raise AssertionError("unreachable")


def main() -> None:
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    state.mkdir(parents=True, exist_ok=True)
    agent = Agent(state)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    svc.add_AsyncAgentServiceServicer_to_server(agent, server)
    svc.add_SyncAgentServiceServicer_to_server(agent, server)
    svc.add_AgentMetadataServiceServicer_to_server(agent, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"test agent on {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
