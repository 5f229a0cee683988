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
RUN useradd --create-home --uid 10001 aibroker
COPY --from=build /wheels /wheels
# torch first (when asked for), so that the extras do not pull a build of their own.
RUN if [ -n "$TORCH" ]; then pip install --no-cache-dir $TORCH; fi \
    && pip install --no-cache-dir "$(ls /wheels/*.whl)${EXTRAS:+[$EXTRAS]}" \
    && rm -rf /wheels
USER aibroker
ENV HF_HUB_OFFLINE=1
EXPOSE 8080
ENTRYPOINT ["aibroker"]
CMD ["ingress"]
