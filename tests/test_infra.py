"""infra/: the compose file and the Prefect deployments, checked without a Docker engine.

Both files are parsed as YAML; every flow, script and work pool they name must exist in this
repository and agree with each other (a typo here only shows up at 02:00 on a server).
"""

from __future__ import annotations

import importlib
import re
import subprocess
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


def test_the_gpu_worker_reserves_one_nvidia_gpu_and_starts_only_where_asked(compose):
    gpu = compose["services"]["gpu-worker"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert device["count"] == 1
    # The reservation picks the GPU; NVIDIA_VISIBLE_DEVICES=all beside it would expose all.
    assert "NVIDIA_VISIBLE_DEVICES" not in gpu["environment"]
    assert gpu["build"]["dockerfile"] == "infra/Dockerfile.gpu"
    # A host without a GPU never creates it, and one whose GPU is gone does not loop.
    assert gpu["profiles"] == ["gpu"]
    assert re.fullmatch(r"on-failure:[1-5]", gpu["restart"]), gpu["restart"]


def _torch_pins() -> dict[str, str]:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pins = {"Makefile": re.search(r"^TORCH_PIN \?= torch==([\w.]+)$", makefile, re.M)[1]}
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (INFRA / name).read_text(encoding="utf-8")
        pins[name] = re.search(r"^ARG TORCH_VERSION=([\w.]+)$", text, re.M)[1]
        assert '"torch==${TORCH_VERSION}"' in text, f"{name} does not install its TORCH_VERSION"
    return pins


def test_one_torch_version_trains_and_serves():
    pins = _torch_pins()
    assert len(set(pins.values())) == 1, pins
    cpu = (INFRA / "Dockerfile").read_text(encoding="utf-8")
    gpu = (INFRA / "Dockerfile.gpu").read_text(encoding="utf-8")
    assert "download.pytorch.org/whl/cpu" in cpu  # the CPU build, no CUDA libraries
    assert "whl/cpu" not in gpu  # PyPI's Linux wheel: the CUDA build


def _locked(name: str) -> set[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return {line.split("==")[0].lower() for line in lines if "==" in line}


def test_runtime_images_carry_no_test_tools():
    tools = {"pytest", "hypothesis", "ruff"}
    assert tools <= _locked("requirements-test.lock")
    assert not tools & _locked("requirements.lock")
    assert not _locked("requirements.lock") & _locked("requirements-test.lock")
    for name in ("Dockerfile", "Dockerfile.gpu"):
        text = (INFRA / name).read_text(encoding="utf-8")
        installs = re.findall(r"pip install[^\n]*", text)
        assert any("-r requirements.lock" in line for line in installs)
        assert not any("test" in line for line in installs), installs
        ignored = (INFRA / f"{name}.dockerignore").read_text(encoding="utf-8").splitlines()
        assert {"tests", "requirements-test.lock"} <= set(ignored)
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "-r requirements.lock -r requirements-test.lock" in makefile  # make setup has both


def test_workers_have_healthchecks_on_the_port_their_scripts_serve(compose):
    for name in ("cpu-worker", "gpu-worker"):
        service = compose["services"][name]
        port = service["environment"]["ANGIOKG_WORKER_HEALTH_PORT"]
        probe = " ".join(service["healthcheck"]["test"])
        assert f"http://localhost:{port}/health" in probe, name
    env = (INFRA / "scripts" / "worker-env.sh").read_text(encoding="utf-8")
    assert 'PREFECT_WORKER_WEBSERVER_PORT="$ANGIOKG_WORKER_HEALTH_PORT"' in env
    for script in ("start-cpu-worker.sh", "start-gpu-worker.sh"):
        text = (INFRA / "scripts" / script).read_text(encoding="utf-8")
        assert "worker-env.sh" in text and "$health" in text


def test_neo4j_5_keeps_data_and_logs_in_volumes_and_sees_the_run_folder_at_import(compose):
    neo4j = compose["services"]["neo4j"]
    assert re.fullmatch(r"neo4j:5(\.[\w.-]*)?", neo4j["image"])
    mounts = {target: source for source, target in (v.rsplit(":", 1) for v in neo4j["volumes"])}
    assert mounts["/data"] == "neo4j-data" and mounts["/logs"] == "neo4j-logs"
    workers = compose["services"]["cpu-worker"]["volumes"]
    assert mounts["/import"] == next(v.rsplit(":", 1)[0] for v in workers if v.endswith(":/data"))
    assert {"neo4j-data", "neo4j-logs"} <= set(compose["volumes"])


def test_neo4j_is_given_what_its_image_accepts_and_a_memory_budget(compose):
    env = compose["services"]["neo4j"]["environment"]
    # The image takes only the user neo4j; the workers' NEO4J_USER is a separate setting.
    assert env["NEO4J_AUTH"].startswith("neo4j/${NEO4J_PASSWORD")
    for setting in ("NEO4J_server_memory_heap_initial__size",
                    "NEO4J_server_memory_heap_max__size", "NEO4J_server_memory_pagecache_size"):
        assert re.fullmatch(r"\$\{NEO4J_\w+_SIZE:-\d+[GM]\}", env[setting]), setting


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
    # deploy.sh fills in the time zone, Asia/Shanghai unless ANGIOKG_TIMEZONE says otherwise;
    # the description the UI shows names it too.
    assert schedule["timezone"] == "{{ $ANGIOKG_TIMEZONE }}"
    deploy = (INFRA / "scripts" / "deploy.sh").read_text(encoding="utf-8")
    assert f'ANGIOKG_TIMEZONE="${{ANGIOKG_TIMEZONE:-{DEFAULT_TIMEZONE}}}"' in deploy
    assert "02:00 ({{ $ANGIOKG_TIMEZONE }})" in nightly["description"]
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
    assert deployments["nightly"]["parameters"]["train_deployment"] == (
        f"{train_flow.name}/{name}")
    others = {d["work_pool"]["name"] for n, d in deployments.items() if n != name}
    assert others == {"angiokg-cpu"}


def test_deployment_parameters_satisfy_their_flow_parameter_schema(deployments):
    from prefect.utilities.callables import parameter_schema
    from prefect.utilities.schema_tools import validate

    for name, d in deployments.items():
        schema = parameter_schema(_flow(d["entrypoint"])).model_dump(exclude_unset=True)
        validate(d["parameters"], schema, raise_on_error=True)
        params = d["parameters"]
        assert all(str(params[k]).startswith("/data/") for k in ("annotated", "archive", "out")
                   if k in params), name
    # One run folder for every deployment: the GPU worker's model is the one extraction reads.
    assert len({d["parameters"]["out"] for d in deployments.values()}) == 1


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
    used = set(re.findall(r"\$\{(\w+)", text))
    example = (INFRA / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert used <= listed, used - listed


def test_every_deployment_is_described_and_runs_the_code_deploy_sh_names(prefect_file,
                                                                        deployments):
    (step,) = prefect_file["pull"]
    assert step["prefect.deployments.steps.set_working_directory"]["directory"] == (
        "{{ $ANGIOKG_CODE_DIR }}")
    for name, d in deployments.items():
        assert len(d.get("description", "")) > 40, f"{name} has no description"
    deploy = (INFRA / "scripts" / "deploy.sh").read_text(encoding="utf-8")
    assert 'code_dir="${1:-${ANGIOKG_CODE_DIR:-$checkout}}"' in deploy
    compose = _load("docker-compose.yml")
    assert compose["services"]["deploy"]["environment"]["ANGIOKG_CODE_DIR"] == "/app"
    assert "WORKDIR /app" in (INFRA / "Dockerfile").read_text(encoding="utf-8")


def test_every_cpu_deployment_shares_the_one_at_a_time_run_folder_queue(deployments):
    cpu = {n: d for n, d in deployments.items() if d["work_pool"]["name"] == "angiokg-cpu"}
    assert set(cpu) == {"nightly", "ingest", "extract", "export"}
    assert {d["work_pool"]["work_queue_name"] for d in cpu.values()} == {"run-folder"}
    deploy = (INFRA / "scripts" / "deploy.sh").read_text(encoding="utf-8")
    assert "prefect work-queue set-concurrency-limit run-folder 1" in deploy
    assert deploy.index("set-concurrency-limit") < deploy.index("prefect --no-prompt deploy")


# --- check-env.sh -------------------------------------------------------------------------


def _check_env(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / ".env"
    env_file.write_text(text, encoding="utf-8")
    return subprocess.run(["sh", str(INFRA / "scripts" / "check-env.sh"), str(env_file)],
                          capture_output=True, text=True, timeout=30)


def test_check_env_accepts_the_example_once_a_good_password_is_set(tmp_path):
    example = (INFRA / ".env.example").read_text(encoding="utf-8")
    assert _check_env(tmp_path, example).returncode == 1  # the password is still empty
    done = _check_env(tmp_path, example.replace("NEO4J_PASSWORD=\n",
                                                "NEO4J_PASSWORD='long-enough'\n"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(": ok")


@pytest.mark.parametrize(("line", "complaint"), [
    ("NEO4J_PASSWORD=short", "has 5 characters; Neo4j refuses fewer than 8"),
    ("NEO4J_PASSWORD=neo4j", "has 5 characters"),
    ("NEO4J_PASSWORD=\"with/slash\"", "holds a '/'"),
    ("NEO4J_PASSWORD=long-enough\nANGIOKG_NIGHTLY_DEADLINE=6am", "give an hour as HH:MM"),
    ("NEO4J_PASSWORD=long-enough\nANGIOKG_ALERT_BLOCK=oncall", "<block-type>/<block-name>"),
])
def test_check_env_names_what_neo4j_or_deploy_would_refuse(tmp_path, line, complaint):
    checked = _check_env(tmp_path, line + "\n")
    assert checked.returncode == 1
    assert complaint in checked.stderr, checked.stderr


def test_check_env_notes_a_user_the_image_does_not_create(tmp_path):
    checked = _check_env(tmp_path, "NEO4J_PASSWORD=long-enough\nNEO4J_USER=loader\n")
    assert checked.returncode == 0
    assert "creates only 'neo4j'" in checked.stderr
