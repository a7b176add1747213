"""The live ZeroMQ runtime: coordinator, workers, launcher, load generator, telemetry. Filled by
the live-runtime issue; imports ``controllers``, ``envs`` and ``swarmsim``."""
