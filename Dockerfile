# The skipsearch image: workers, the dashboard and one-shot commands (see docker-compose.yml).
# Secrets (the database password) come from the environment at run time, never from the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
# The CPU build of torch first (the default index would pull the CUDA build, gigabytes larger).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY skipsearch ./skipsearch
RUN pip install .
COPY studies ./studies

# An unprivileged user; /artifacts (topology pictures shared by workers and the dashboard) is
# created here so that a fresh named volume mounted on it belongs to that user.
RUN useradd --create-home --uid 1000 skipsearch && mkdir /artifacts && chown skipsearch /artifacts
USER skipsearch

CMD ["skipsearch", "--help"]
