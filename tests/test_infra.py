"""infra/: the compose file and the Prefect deployments, checked without a Docker engine.

Both files are parsed as YAML; every flow, script and work pool they name must exist in this
repository and agree with each other (a typo here only shows up at 02:00 on a server).
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
SCRIPT = re.compile(r"infra/scripts/[\w.-]+\.sh")


def _load(name: str) -> dict:
    return yaml.safe_load((INFRA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return _load("docker-compose.yml")


@pytest.fixture(scope="module")
def prefect_file() -> dict:
    return _load("prefect.yaml")


@pytest.fixture(scope="module")
def deployments(prefect_file) -> dict[str, dict]:
    return {d["name"]: d for d in prefect_file["deployments"]}


def _flow(entrypoint: str):
    """The object an entrypoint `path/to/file.py:function` names, imported from this repo."""
    path, _, attribute = entrypoint.partition(":")
    assert (ROOT / path).is_file(), f"{entrypoint}: {path} does not exist"
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, attribute)


def _pool_default(script: str, variable: str) -> str:
    text = (INFRA / "scripts" / script).read_text(encoding="utf-8")
    found = re.findall(r"\$\{" + variable + r":-([\w.-]+)\}", text)
    assert found, f"{script} does not name a default for {variable}"
    return found[0]


def _labels(service: dict, key: str) -> set[str]:
    return {v.strip() for v in service.get("labels", {}).get(key, "").split(",") if v.strip()}


# --- compose ------------------------------------------------------------------------------


def test_compose_runs_a_prefect_server_and_both_workers(compose):
    services = compose["services"]
    server = services["prefect-server"]
    assert server["image"].startswith("prefecthq/prefect:3")
    assert server["command"][:3] == ["prefect", "server", "start"]
    assert "infra/scripts/start-cpu-worker.sh" in services["cpu-worker"]["command"]
    assert "infra/scripts/start-gpu-worker.sh" in services["gpu-worker"]["command"]
    for worker in ("cpu-worker", "gpu-worker"):
        env = services[worker]["environment"]
        assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
        assert "prefect-server" in services[worker]["depends_on"]
        assert any(v.endswith(":/data") for v in services[worker]["volumes"])


def test_the_gpu_worker_reserves_an_nvidia_gpu(compose):
    gpu = compose["services"]["gpu-worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    assert gpu["build"]["dockerfile"] == "infra/Dockerfile.gpu"
    base = next(line for line in (INFRA / "Dockerfile.gpu").read_text(encoding="utf-8")
                .splitlines() if line.startswith("FROM"))
    assert "cuda" in base, f"the GPU image is not built on a CUDA base: {base}"


def test_neo4j_5_keeps_its_data_in_a_named_volume(compose):
    neo4j = compose["services"]["neo4j"]
    assert re.fullmatch(r"neo4j:5(\.[\w.-]*)?", neo4j["image"])
    mounts = dict(v.split(":", 1) for v in neo4j["volumes"])
    assert mounts.get("neo4j-data") == "/data"
    assert "neo4j-data" in compose["volumes"]
    assert "NEO4J_PASSWORD" in neo4j["environment"]["NEO4J_AUTH"]


def test_the_workers_share_one_data_volume(compose):
    services = compose["services"]
    sources = {s: next(v.rsplit(":", 1)[0] for v in services[s]["volumes"] if v.endswith(":/data"))
               for s in ("cpu-worker", "gpu-worker", "dask-worker")}
    assert len(set(sources.values())) == 1, sources
    assert "angiokg-data" in compose["volumes"]


def test_every_script_a_service_or_image_runs_exists(compose):
    commands = [" ".join(s["command"]) if isinstance(s.get("command"), list)
                else s.get("command", "") for s in compose["services"].values()]
    commands += [(INFRA / f).read_text(encoding="utf-8") for f in ("Dockerfile", "Dockerfile.gpu")]
    named = {m for text in commands for m in SCRIPT.findall(text)}
    assert {"infra/scripts/start-cpu-worker.sh", "infra/scripts/start-gpu-worker.sh",
            "infra/scripts/deploy.sh"} <= named
    for script in named:
        assert (ROOT / script).is_file(), f"{script} is named but does not exist"
    for service in compose["services"].values():
        if "build" in service:
            assert (ROOT / service["build"]["dockerfile"]).is_file()


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_images_leave_out_credentials_and_local_state(dockerfile):
    ignored = (INFRA / f"{dockerfile}.dockerignore").read_text(encoding="utf-8").splitlines()
    assert {"infra/.env", ".venv", ".git", "runs"} <= set(ignored)


def test_compose_services_name_flows_that_exist_in_their_work_pool(compose, deployments):
    flows = {name: _flow(d["entrypoint"]).name for name, d in deployments.items()}
    pool_flows: dict[str, set[str]] = {}
    for name, d in deployments.items():
        pool_flows.setdefault(d["work_pool"]["name"], set()).add(flows[name])
    named: set[str] = set()
    for service_name, service in compose["services"].items():
        listed = _labels(service, "org.angiokg.flows")
        assert listed <= set(flows.values()), f"{service_name} names unknown flows"
        named |= listed
        for pool in _labels(service, "org.angiokg.work-pool"):
            assert listed == pool_flows[pool], f"{service_name} serves {pool}"
    assert named == set(flows.values())


# --- prefect.yaml -------------------------------------------------------------------------


def test_every_deployment_entrypoint_is_a_prefect_flow(deployments):
    from prefect import Flow

    assert set(deployments) == {"nightly", "gpu", "ingest", "extract", "export"}
    for name, d in deployments.items():
        assert isinstance(_flow(d["entrypoint"]), Flow), f"{name}: {d['entrypoint']}"


def test_nightly_runs_at_two_in_shanghai_on_the_cpu_pool(deployments):
    from flows.flows_cli import DEFAULT_CRON, DEFAULT_TIMEZONE

    nightly = deployments["nightly"]
    (schedule,) = nightly["schedules"]
    assert schedule["cron"] == "0 2 * * *" == DEFAULT_CRON
    assert schedule["timezone"] == "Asia/Shanghai" == DEFAULT_TIMEZONE
    assert schedule.get("active", True)
    assert nightly["work_pool"]["name"] == "angiokg-cpu"
    assert nightly["concurrency_limit"] == 1
    assert all("schedules" not in d for name, d in deployments.items() if name != "nightly")


def test_training_goes_to_the_gpu_pool_and_the_nightly_asks_for_it_by_name(deployments):
    from flows.train_flow import train_flow

    (name, train), = [(n, d) for n, d in deployments.items()
                      if d["entrypoint"] == "flows/train_flow.py:train_flow"]
    assert train["work_pool"]["name"] == "angiokg-gpu"
    assert train_flow.name == "angiokg-train"
    assert deployments["nightly"]["parameters"]["params"]["train_deployment"] == (
        f"{train_flow.name}/{name}")
    others = {d["work_pool"]["name"] for n, d in deployments.items() if n != name}
    assert others == {"angiokg-cpu"}


def test_deployment_parameters_satisfy_their_flow_parameter_schema(deployments):
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import validate

    for name, d in deployments.items():
        schema = parameter_schema(_flow(d["entrypoint"])).model_dump(exclude_unset=True)
        validate(d["parameters"], schema, raise_on_error=True)
        params = d["parameters"]["params"]
        assert all(str(params[k]).startswith("/data/") for k in ("annotated", "archive", "out")
                   if k in params), name
    # One run folder for every deployment: the GPU worker's model is the one extraction reads.
    assert len({d["parameters"]["params"]["out"] for d in deployments.values()}) == 1


def test_worker_scripts_serve_the_pools_the_deployments_use(compose, deployments):
    pools = {d["work_pool"]["name"] for d in deployments.values()}
    cpu = _pool_default("start-cpu-worker.sh", "ANGIOKG_CPU_POOL")
    gpu = _pool_default("start-gpu-worker.sh", "ANGIOKG_GPU_POOL")
    assert {cpu, gpu} == pools == {"angiokg-cpu", "angiokg-gpu"}
    assert _pool_default("deploy.sh", "ANGIOKG_CPU_POOL") == cpu
    assert _pool_default("deploy.sh", "ANGIOKG_GPU_POOL") == gpu
    services = compose["services"]
    assert services["cpu-worker"]["environment"]["ANGIOKG_CPU_POOL"] == cpu
    assert services["gpu-worker"]["environment"]["ANGIOKG_GPU_POOL"] == gpu
    for script in ("start-cpu-worker.sh", "start-gpu-worker.sh"):
        text = (INFRA / "scripts" / script).read_text(encoding="utf-8")
        assert "prefect worker start" in text and "--type process" in text
    assert "--prefect-file infra/prefect.yaml" in (INFRA / "scripts" / "deploy.sh").read_text()


def test_every_variable_compose_reads_is_in_the_env_example(compose):
    text = (INFRA / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{(\w+)", text)) - {"PREFECT_UI_API_URL"}
    example = (INFRA / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert used <= listed, used - listed
