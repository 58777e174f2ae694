# syntax=docker/dockerfile:1
# Build:  docker build -t cam-tasks .
# Run:    docker run -p 8001:8001 -e CAM_TASKS_MONGO__URI=mongodb://mongo:27017/cam cam-tasks
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cam_tasks ./cam_tasks
RUN pip install --no-cache-dir build==1.6.1 && python -m build --wheel --outdir /dist

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 cam
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir "$(ls /tmp/*.whl)[uvloop]" && rm /tmp/*.whl
COPY config.example.toml /etc/cam-tasks/config.toml
USER 10001
# Fails closed: set CAM_TASKS_AUTH__TOKENS (docs/security.md), or explicitly allow anonymous use.
ENV CAM_TASKS_SERVER__HOST=0.0.0.0 \
    CAM_TASKS_LOG__FORMAT=json \
    CAM_TASKS_AUTH__ALLOW_ANONYMOUS=false
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8001/health/ready', timeout=2).status != 200)"]
ENTRYPOINT ["cam-tasks", "serve", "--config", "/etc/cam-tasks/config.toml"]
