"""Detectors: pure functions from text to findings, with no knowledge of hooks or providers.

Built-in policies (`capsem_proxy.policies`) wrap them; the evaluation harness (`eval/`) measures them.
"""

from capsem_proxy.detectors.base import Detector, Finding

__all__ = ["Detector", "Finding"]
