"""``python -m curation.simulator --port N`` — the offline expert simulator on 127.0.0.1 (a contract).

Serves the world under the profile's storage root (``--world`` overrides); error rates and fault knobs come
from the profile's ``curation.simulator`` section and can be overridden here.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web


def main(argv: list[str] | None = None) -> int:
    from videorft.profile import ProfileError, load_profile

    parser = argparse.ArgumentParser(prog="python -m curation.simulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--profile", default=None, help="profile name or YAML (default $VIDEORFT_PROFILE or tiny)")
    parser.add_argument("--world", default=None, help="world folder (default: <storage root>/world)")
    parser.add_argument("--no-world", action="store_true", help="serve only sim-echo (benchmarks)")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    for knob in ("rate_429", "rate_500", "rate_truncated", "rate_malformed", "retry_after_s", "latency_ms",
                 "jitter_ms", "describer_drop_rate", "describer_alter_rate", "reasoner_wrong_rate",
                 "reasoner_invent_rate", "refiner_fix_rate", "refiner_error_rate"):
        parser.add_argument("--" + knob.replace("_", "-"), type=float, default=None, dest=knob)
    args = parser.parse_args(argv)
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in vars(args).items() if v is not None and hasattr(profile.curation.simulator, k)}
    cfg = profile.curation.simulator.model_copy(update=overrides)

    from synthetic.simulator.server import Simulator
    from synthetic.simulator.world import World
    from videorft.storage import join_uri

    world = None
    if not args.no_world:
        root = args.world or join_uri(profile.resolved_storage_root(), "world")
        try:
            world = World.load(root)
        except FileNotFoundError as exc:
            print(f"error: no synthetic world at {root} ({exc}); materialize synthetic_world first "
                  "(python -m dagster_project materialize --select synthetic_world) or pass --world/--no-world",
                  file=sys.stderr)
            return 2
    app = Simulator(cfg, world, args.api_key).app()
    print(f"expert simulator on http://{args.host}:{args.port}/v1 (world: {'none' if world is None else root})",
          flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None,
                loop=asyncio.new_event_loop())
    return 0


if __name__ == "__main__":
    sys.exit(main())
