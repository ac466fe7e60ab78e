"""P4: one hanging receiver must not slow the others, nor the post API.

    .venv/bin/python bench/engine_isolation.py [--rate 100] [--seconds 10] [--hung-for 20] [--runs 3]

Each run starts three bench/recv_timestamps.py receivers on core 1 (this process stays on core
0): two healthy ones, and one that hangs far past ``OutgoingIntegrationRequestsTimeout`` (3 s).
Posts are created at a steady rate through ``create_post`` with the worker in this process, as
inside ``tidings serve``, with the default per-destination cap (8) and retry schedule. Three
phases, each on a fresh database, in an order that rotates from run to run:

- without: one channel hook to the healthy receiver;
- control: the same hook plus a second one to another healthy receiver;
- with: the same hook plus a second one to the hanging receiver, both firing on every post. A
  receiver rarely starts hanging at the moment we look: before the phase, the hanging hook gets
  the backlog of ``--hung-for`` seconds of posts at the same rate (default 20 s), queued in bulk.

Reported per phase: the healthy hook's delivery latency (arrival − return of ``create_post``) and
the duration of ``create_post`` itself. The target ratios are with / without: p99 of both may grow
by at most 1.2×. With / control is printed too: it leaves out what any second hook costs (a second
delivery row per post, a second request), so it shows what the hang alone costs.
"""

import argparse
import json

from harness import World, forget_arrivals, percentile, pin_to_core, summary, timestamp_receiver
from pacing import enqueue_posts, first_arrivals, latencies, posts_at_rate

from tidings import process
from tidings.services import settings as settings_service
from tidings.webhooks.worker import Worker

TIMEOUT_SECONDS = 3
HANG_SECONDS = 60.0
WARMUP_SECONDS = 1.0


async def phase(
    healthy: str, second: str | None, rate: float, seconds: float, backlog: int = 0
) -> dict[str, float]:
    world = World()
    process.tune(world.settings)  # as `tidings serve` and `tidings worker` do
    await world.setup()
    await settings_service.patch_config(
        world.rt,
        None,
        {
            "ServiceSettings": {
                "OutgoingIntegrationRequestsTimeout": TIMEOUT_SECONDS,
                "OutgoingWebhookMaxConcurrencyPerDestination": 8,
            }
        },
    )
    await world.hook(f"{healthy}/hook", display_name="healthy")
    if second is not None:
        hook = await world.hook(f"{second}/hook", display_name="second")
        for start in range(0, backlog, 1000):
            await enqueue_posts(world, hook, start, min(1000, backlog - start))
    worker = Worker.from_runtime(world.rt)
    await worker.start()
    try:
        warm = await posts_at_rate(world, rate, WARMUP_SECONDS, "warm up")
        await first_arrivals(healthy, [s.post_id for s in warm])
        forget_arrivals(healthy)
        sent = await posts_at_rate(world, rate, seconds, "deploy build")
        arrivals = await first_arrivals(healthy, [s.post_id for s in sent])
    finally:
        await worker.stop()
        await world.close()
    delivered = latencies(sent, arrivals)
    took = [s.took * 1000 for s in sent]
    return {
        "delivery_p50_ms": percentile(delivered, 50),
        "delivery_p99_ms": percentile(delivered, 99),
        "post_p50_ms": percentile(took, 50),
        "post_p99_ms": percentile(took, 99),
        "delivered": len(delivered),
        "posted": len(sent),
    }


def one_run(rate: float, seconds: float, hung_for: float, turn: int = 0) -> dict[str, float]:
    """One run of the three phases; ``turn`` rotates their order, so that a machine slowing
    down (or speeding up) over a run does not always land on the same phase."""
    with (
        timestamp_receiver(cpu=1) as healthy,
        timestamp_receiver(cpu=1) as other,
        timestamp_receiver(cpu=1, hang_seconds=HANG_SECONDS) as hanging,
    ):
        phases = {}
        backlog = round(rate * hung_for)
        order = [("without", None, 0), ("control", other, 0), ("with", hanging, backlog)]
        turn %= len(order)
        for name, second, queued in order[turn:] + order[:turn]:
            phases[name] = process.run(phase(healthy, second, rate, seconds, queued))
            forget_arrivals(healthy)
    result = {f"{name}_{k}": v for name, found in phases.items() for k, v in found.items()}
    for measure in ("delivery", "post"):
        key = f"{measure}_p99_ms"
        result[f"{measure}_p99_ratio"] = phases["with"][key] / phases["without"][key]
        result[f"{measure}_p99_ratio_vs_control"] = phases["with"][key] / phases["control"][key]
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0, help="posts per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument(
        "--hung-for", type=float, default=20.0, help="seconds of backlog the hanging hook has"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    pin_to_core(0)
    runs = []
    for turn in range(args.runs):
        runs.append(one_run(args.rate, args.seconds, args.hung_for, turn))
        print(json.dumps({k: round(v, 3) for k, v in runs[-1].items()}), flush=True)
    print(
        json.dumps(
            {
                "P4": {
                    "rate_per_s": args.rate,
                    "seconds": args.seconds,
                    "timeout_s": TIMEOUT_SECONDS,
                    "hung_for_s": args.hung_for,
                    "target": "both p99 ratios ≤ 1.2",
                },
                **{k: summary([r[k] for r in runs]) for k in runs[0]},
            },
            indent=1,
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
