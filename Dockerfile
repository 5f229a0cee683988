# One image for every role; the command picks the role (aibroker ingress|dispatcher|...).
#   docker build -t aibroker .                                  # ingress, dispatcher, external pool
#   docker build -t aibroker-local --build-arg EXTRAS=embeddings,ocr --build-arg TORCH=torch .
#   docker build -t aibroker-vllm --build-arg EXTRAS=vllm --build-arg CONSTRAINTS= .  # GPU pools
# Versions come from requirements.lock (the ones the tests passed with); torch from PyTorch's
# CPU index when it answers (TORCH_INDEX; else PyPI's CUDA build). vLLM and Paddle pin their own
# torch and stacks, outside the lock: build them with CONSTRAINTS empty.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY aibroker aibroker
COPY ingress ingress
COPY dispatcher dispatcher
COPY consumers consumers
COPY schemas schemas
COPY topics topics
COPY loadtest loadtest
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
# The base image carries the semantic cache's Qdrant client (light); local models are extras.
ARG EXTRAS="semantic"
ARG TORCH=""
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG CONSTRAINTS=/tmp/requirements.lock
RUN groupadd --gid 10001 aibroker && useradd --create-home --uid 10001 --gid 10001 aibroker
COPY --from=build /wheels /wheels
COPY requirements.lock .ci/torch-index /tmp/
# torch first (when asked for), so that the extras do not pull a build of their own.
RUN if [ -n "$TORCH" ]; then pip install --no-cache-dir ${CONSTRAINTS:+-c $CONSTRAINTS} \
        $(python /tmp/torch-index "$TORCH_INDEX") $TORCH; fi \
    && pip install --no-cache-dir ${CONSTRAINTS:+-c $CONSTRAINTS} \
        "$(ls /wheels/*.whl)${EXTRAS:+[$EXTRAS]}" \
    && rm -rf /wheels /tmp/requirements.lock /tmp/torch-index
# Numeric, so that Kubernetes can check `runAsNonRoot` (the chart runs it with a read-only
# root filesystem: /tmp and the home directory, with the model caches, are volumes there).
USER 10001:10001
WORKDIR /home/aibroker
ENV HOME=/home/aibroker HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
ENTRYPOINT ["aibroker"]
CMD ["ingress"]
