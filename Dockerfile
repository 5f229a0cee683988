# One image for every role; the command picks the role (aibroker ingress|dispatcher|...).
#   docker build -t aibroker .                                  # ingress, dispatcher, external pool
#   docker build -t aibroker-local --build-arg EXTRAS=embeddings,ocr \
#     --build-arg TORCH="torch --index-url https://download.pytorch.org/whl/cpu" .
#   docker build -t aibroker-vllm --build-arg EXTRAS=vllm .     # GPU pools (vLLM brings torch)
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
ARG EXTRAS=""
ARG TORCH=""
RUN groupadd --gid 10001 aibroker && useradd --create-home --uid 10001 --gid 10001 aibroker
COPY --from=build /wheels /wheels
# torch first (when asked for), so that the extras do not pull a build of their own.
RUN if [ -n "$TORCH" ]; then pip install --no-cache-dir $TORCH; fi \
    && pip install --no-cache-dir "$(ls /wheels/*.whl)${EXTRAS:+[$EXTRAS]}" \
    && rm -rf /wheels
# Numeric, so that Kubernetes can check `runAsNonRoot` (the chart runs it with a read-only
# root filesystem: /tmp and the home directory, with the model caches, are volumes there).
USER 10001:10001
WORKDIR /home/aibroker
ENV HOME=/home/aibroker HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
ENTRYPOINT ["aibroker"]
CMD ["ingress"]
