# syntax=docker/dockerfile:1
# Build:  docker build -t cam-tasks .
# Run:    docker run -p 8001:8001 -e CAM_TASKS_MONGO__URI=mongodb://mongo:27017/cam \
#           -e CAM_TASKS_AUTH__TOKENS='{"console": {"token": "…", "role": "admin"}}' cam-tasks
# Its configuration (deploy/config.production.toml) is for production: no demo provider or
# schedule, and it refuses to start on memory:// ([mongo] allow_memory = false) and without
# credentials ([auth]). docs/deployment.md has the details.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY cam_tasks ./cam_tasks
RUN pip install --no-cache-dir build==1.6.1 && python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 cam
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/*.whl)[uvloop]" && rm /tmp/*.whl
COPY deploy/config.production.toml /etc/cam-tasks/config.toml
USER 10001
# Fails closed: set CAM_TASKS_AUTH__TOKENS (docs/security.md), or explicitly allow anonymous use.
ENV CAM_TASKS_SERVER__HOST=0.0.0.0 \
    CAM_TASKS_LOG__FORMAT=json \
    CAM_TASKS_AUTH__ALLOW_ANONYMOUS=false
EXPOSE 8001
# Asks the port the settings give (the file, then CAM_TASKS_SERVER__PORT), as `serve` does.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; from cam_tasks.config import load_settings; port = load_settings('/etc/cam-tasks/config.toml').server.port; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/health/ready', timeout=2).status != 200)"]
ENTRYPOINT ["cam-tasks", "serve", "--config", "/etc/cam-tasks/config.toml"]
