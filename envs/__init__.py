"""Gymnasium environments: one Task per learned decision (shard routing, autoscaling, role
assignment) driven by the simulator. Filled by the environments issue; imports only ``swarmsim``."""
