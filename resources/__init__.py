"""Dagster resources and launchers, keyed to a profile (``resources.core.build_resources``): the layer between
the stage libraries and the asset layer. The asset layer imports it; it imports no asset."""
