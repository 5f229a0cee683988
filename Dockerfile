# One image for every role; the command picks the role (aibroker ingress|dispatcher|...).
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
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 aibroker
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER aibroker
EXPOSE 8080
ENTRYPOINT ["aibroker"]
CMD ["ingress"]
