"""The expert endpoints as a Dagster resource: one client per role, sharing the response cache, and the offline
simulator (tiny profile) for a role with no ``base_url``.

The roles and their settings come from the profile (``experts``: role -> endpoint), which reads each key from
``VIDEORFT_<ROLE>_API_KEY`` only: the resource's config holds the profile's name, never a key, so run config and
the event log cannot leak one.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from videorft.profile import Profile, load_profile


class ExpertsResource(dg.ConfigurableResource):
    """Expert clients per role. ``simulator_world`` set (tiny profile): a role without ``base_url`` is served by
    the offline simulator, started in this process on the first request that misses the cache and stopped
    after the step."""

    profile: str
    cache_root: str
    media_cache: str | None = None
    simulator_world: str | None = None

    _simulator: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default=None)

    @cached_property
    def _profile(self) -> Profile:
        return load_profile(self.profile)

    def _simulator_url(self) -> str:
        from synthetic.simulator.server import start_simulator

        if self._lock is None:
            self._lock = threading.Lock()
        with self._lock:
            if self._simulator is None:
                assert self.simulator_world is not None
                self._simulator = start_simulator(self._profile.curation.simulator, self.simulator_world)
                dg.get_dagster_logger().info(f"expert simulator started on {self._simulator.base_url}")
            return self._simulator.base_url

    def client(self, role: str, on_record: Any = None) -> Any:
        """A (not yet opened) ``ExpertClient`` for ``role``."""
        from curation.experts import build_client

        return build_client(role, self._profile.expert(role), self.cache_root, media_cache=self.media_cache,
                            simulator_url=self._simulator_url if self.simulator_world else None,
                            on_record=on_record)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._simulator is not None:
            self._simulator.stop()
            self._simulator = None
