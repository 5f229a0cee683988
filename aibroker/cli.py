"""The `aibroker` command: one subcommand per process, plus the dev stack and admin chores."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvloop

from aibroker import installed_version
from aibroker.settings import Settings, load_settings
from aibroker.stores.tenants import Tenant
from aibroker.telemetry import metrics, tracing
from aibroker.telemetry.logs import setup_logging


def _service(run: Callable[[Settings, asyncio.Event], Awaitable[None]], settings: Settings) -> None:
    from aibroker.runtime.service import EXIT_MARGIN_S, stop_on_signals
    from aibroker.telemetry.metrics import serve

    serve(settings.metrics.port, settings.metrics.host)

    async def main() -> None:
        await run(settings, stop_on_signals(settings.consumer.drain_timeout_s + EXIT_MARGIN_S))

    uvloop.run(main())


def cmd_dev(settings: Settings, args: argparse.Namespace) -> None:
    from aibroker.devstack.dev import run_dev

    if args.kafka or args.kafka_brokers:
        dev = settings.dev.model_copy(
            update={
                "kafka": "apache" if args.kafka_brokers else args.kafka,
                **({"kafka_brokers": args.kafka_brokers} if args.kafka_brokers else {}),
            }
        )
        settings = settings.model_copy(update={"dev": dev})
    from aibroker.devstack.apache_kafka import KafkaSetupError

    try:
        run_dev(settings)
    except KafkaSetupError as exc:
        raise SystemExit(f"aibroker dev: {exc}") from None


def cmd_ingress(settings: Settings, _: argparse.Namespace) -> None:
    from aibroker.telemetry.metrics import serve
    from ingress.main import run

    serve(settings.metrics.port, settings.metrics.host)
    run(settings)


def cmd_dispatcher(settings: Settings, _: argparse.Namespace) -> None:
    from dispatcher.main import run

    _service(run, settings)


def cmd_consumer(settings: Settings, args: argparse.Namespace) -> None:
    from consumers.offload.main import run_offload
    from consumers.pool.main import run_external, run_local

    if args.pool not in ("external", "offload") and not args.model:
        raise SystemExit(f"aibroker consumer {args.pool} needs --model NAME")

    async def run(s: Settings, stop: asyncio.Event) -> None:
        if args.pool == "external":
            await run_external(s, stop, args.provider or None)
        elif args.pool == "offload":
            await run_offload(s, stop, args.provider or None)
        else:
            await run_local(s, stop, args.pool, args.model)

    _service(run, settings)


def cmd_results(settings: Settings, _: argparse.Namespace) -> None:
    from consumers.results.sink import run

    _service(run, settings)


def cmd_webhooks(settings: Settings, _: argparse.Namespace) -> None:
    from consumers.webhooks.deliverer import run

    _service(run, settings)


def cmd_batches(settings: Settings, _: argparse.Namespace) -> None:
    from consumers.batches.runner import run

    _service(run, settings)


def cmd_rag(settings: Settings, _: argparse.Namespace) -> None:
    from consumers.rag.main import run_rag

    _service(run_rag, settings)


def cmd_batch_submit(settings: Settings, args: argparse.Namespace) -> None:
    from aibroker.batch_client import run

    url = args.url or f"http://{settings.ingress.host}:{settings.ingress.port}"
    key = args.key or settings.dev.api_key
    if not key:
        raise SystemExit("give --key (or set AIBROKER_DEV_API_KEY)")
    raise SystemExit(run(url, key, args.file, args.endpoint, args.window, wait=args.wait))


def cmd_topics_apply(settings: Settings, _: argparse.Namespace) -> None:
    from aibroker.kafka.clients import bootstrap
    from aibroker.routes import build_route_table
    from aibroker.rules.offload import offload_topics
    from topics.apply import apply_topics
    from topics.catalog import TopicNames, catalogue

    names = TopicNames(settings.kafka.topic_prefix)
    routes = build_route_table(settings)
    specs = catalogue(
        names,
        routes.dispatch_topics(names),
        partitions=settings.kafka.partitions,
        max_message_bytes=settings.kafka.max_message_bytes,
        offload_topics=offload_topics(routes, names),
    )
    bootstrap(settings.kafka)
    created = asyncio.run(apply_topics(settings.kafka, specs))
    print(f"{len(specs)} topics in the catalogue, {len(created)} created: {', '.join(created)}")


def cmd_keys_create(settings: Settings, args: argparse.Namespace) -> None:
    from aibroker.control.plane import control_plane
    from aibroker.kafka.clients import running_producer
    from aibroker.stores.redis import connect
    from topics.catalog import TopicNames

    config = TopicNames(settings.kafka.topic_prefix).config

    async def create() -> str:
        async with (
            connect(settings.redis) as redis,
            running_producer(settings.kafka) as producer,
            control_plane(settings.kafka, config, redis, producer) as plane,
        ):
            if await plane.tenants.get(args.tenant) is None:  # a key is never without its tenant
                await plane.tenants.put(Tenant(name=args.tenant))
                print(f"created tenant {args.tenant} (no limits)", file=sys.stderr)
            key, _ = await plane.keys.add(args.tenant)
            return key

    print(asyncio.run(create()))


def cmd_redis_retag(settings: Settings, _: argparse.Namespace) -> None:
    from aibroker.stores.guard import deadline
    from aibroker.stores.redis import connect
    from aibroker.stores.retag import retag

    async def run() -> tuple[int, int]:
        async with connect(settings.redis) as redis:
            with deadline(30.0):
                return await retag(redis)

    moved, left = asyncio.run(run())
    print(f"{moved} keys moved to their hash-tagged names, {left} left where they were")


def cmd_redis_rebuild(settings: Settings, _: argparse.Namespace) -> None:
    from aibroker.control.plane import control_plane
    from aibroker.kafka.clients import running_producer
    from aibroker.stores.control_view import ControlView
    from aibroker.stores.redis import connect
    from aibroker.stores.results import RedisRequestStore
    from aibroker.stores.results_view import ResultsView
    from consumers.results.rebuild import ResultsRebuild
    from topics.catalog import TopicNames

    names, ttl_s = TopicNames(settings.kafka.topic_prefix), settings.redis.ttl_s

    async def run() -> str:
        async with connect(settings.redis) as redis, running_producer(settings.kafka) as producer:
            before, whole = await ControlView(redis, names.config).position()
            async with control_plane(settings.kafka, names.config, redis, producer) as plane:
                after, _ = await plane.view.position()
            store, view = RedisRequestStore(redis, ttl_s), ResultsView(redis, ttl_s)
            done = await ResultsRebuild(settings.kafka, names, store, view, ttl_s).rebuild()
        was = "whole" if whole else "empty" if before is None else f"behind (at {before})"
        return (
            f"control plane: the view was {was}, it is at offset {after} of {names.config}; "
            f"{done.results} results and {done.queued} queued requests rebuilt "
            f"in {done.seconds:.1f}s"
        )

    print(asyncio.run(run()))


def cmd_schemas_export(_: Settings, args: argparse.Namespace) -> None:
    from pydantic import BaseModel

    from schemas.envelopes import Outcome, Request, Result

    envelopes: dict[str, type[BaseModel]] = {
        "request": Request,
        "result": Result,
        "outcome": Outcome,
    }
    model = envelopes[args.envelope]
    print(json.dumps(model.model_json_schema(), indent=2))


def cmd_asyncapi(settings: Settings, args: argparse.Namespace) -> None:
    from aibroker.routes import build_route_table
    from topics.asyncapi import deployment_document, reference_document

    if args.reference:
        doc = reference_document()
    else:
        doc = deployment_document(settings, build_route_table(settings))
    print(json.dumps(doc, indent=2))


def cmd_settings(_: Settings, args: argparse.Namespace) -> None:
    from aibroker.settings.doc import MarkersMissing, replace_marked, settings_table

    table = settings_table()
    if args.update_docs is None:
        print(table, end="")
        return
    try:
        page = replace_marked(args.update_docs.read_text(), "settings", table)
    except MarkersMissing as exc:
        raise SystemExit(f"{args.update_docs}: {exc}") from exc
    args.update_docs.write_text(page)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aibroker", description="Kafka-driven AI request broker")
    parser.add_argument("--version", action="version", version=f"aibroker {installed_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="run everything on the embedded stack")
    dev.add_argument(
        "--kafka",
        choices=["tansu", "apache"],
        help="the broker to start (AIBROKER_DEV_KAFKA; default tansu)",
    )
    dev.add_argument(
        "--kafka-brokers",
        type=int,
        choices=[1, 3],
        help="Apache Kafka brokers to start (AIBROKER_DEV_KAFKA_BROKERS; implies --kafka apache)",
    )
    dev.set_defaults(func=cmd_dev)
    sub.add_parser("ingress", help="the HTTP ingress").set_defaults(func=cmd_ingress)
    sub.add_parser("dispatcher", help="routing, retries, delay topics").set_defaults(
        func=cmd_dispatcher
    )
    consumer = sub.add_parser("consumer", help="a consumer pool")
    consumer.add_argument("pool", choices=["external", "offload", "embeddings", "ocr", "vllm"])
    consumer.add_argument(
        "--provider", action="append", help="external, offload: serve only these providers"
    )
    consumer.add_argument("--model", help="local pools: the served model name")
    consumer.set_defaults(func=cmd_consumer)
    sub.add_parser("results", help="the results sink").set_defaults(func=cmd_results)
    sub.add_parser("webhooks", help="the webhook deliverer").set_defaults(func=cmd_webhooks)
    sub.add_parser("batches", help="the batch runner").set_defaults(func=cmd_batches)
    sub.add_parser("rag", help="the RAG worker").set_defaults(func=cmd_rag)
    topics = sub.add_parser("topics", help="the topic catalogue")
    topics_sub = topics.add_subparsers(dest="action", required=True)
    topics_sub.add_parser("apply", help="create missing topics").set_defaults(func=cmd_topics_apply)
    batch = sub.add_parser("batch", help="batch jobs, as a client of the broker")
    batch_sub = batch.add_subparsers(dest="action", required=True)
    submit = batch_sub.add_parser("submit", help="upload a JSONL file and start its batch")
    submit.add_argument("file", type=Path)
    submit.add_argument("--endpoint", default="/v1/chat/completions")
    submit.add_argument("--window", default="24h", help="completion window")
    submit.add_argument("--wait", action="store_true", help="show progress, then download")
    submit.add_argument("--url", help="the broker (default: this machine's ingress)")
    submit.add_argument("--key", help="an API key (default: AIBROKER_DEV_API_KEY)")
    submit.set_defaults(func=cmd_batch_submit)
    keys = sub.add_parser("keys", help="API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="create a key (printed once)")
    create.add_argument("--tenant", required=True, help="created (no limits) if it is new")
    create.set_defaults(func=cmd_keys_create)
    sub.add_parser(
        "redis-retag", help="once, on upgrading: move keys to their hash-tagged names"
    ).set_defaults(func=cmd_redis_retag)
    sub.add_parser(
        "redis-rebuild",
        help="after Redis lost data: the control plane, request states and results from Kafka",
    ).set_defaults(func=cmd_redis_rebuild)
    schemas = sub.add_parser("schemas", help="JSON Schemas of the envelopes")
    schemas_sub = schemas.add_subparsers(dest="action", required=True)
    export = schemas_sub.add_parser("export", help="print one envelope's JSON Schema")
    export.add_argument("envelope", choices=["request", "result", "outcome"])
    export.set_defaults(func=cmd_schemas_export)
    asyncapi = sub.add_parser("asyncapi", help="print the AsyncAPI 3.0 document of the topics")
    asyncapi.add_argument(
        "--reference",
        action="store_true",
        help="the default settings' document (docs/reference/asyncapi.json), not this one's",
    )
    asyncapi.set_defaults(func=cmd_asyncapi)
    settings = sub.add_parser("settings", help="print the settings reference (Markdown)")
    settings.add_argument(
        "--update-docs",
        type=Path,
        nargs="?",
        const=Path("docs/reference/settings.md"),
        default=None,
        metavar="PAGE",
        help="replace the settings table in this docs page instead "
        "(default: docs/reference/settings.md)",
    )
    settings.set_defaults(func=cmd_settings)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    setup_logging(settings.log_level, json=args.command != "dev")
    service = "-".join(["aibroker", args.command, *([args.pool] if "pool" in args else [])])
    tracing.setup(settings.otel, service)
    metrics.build_info(service)
    args.func(settings, args)


if __name__ == "__main__":
    main(sys.argv[1:])
