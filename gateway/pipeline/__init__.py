"""One orchestration for new mail, retries, crash replays and review decisions.

`Pipeline` (facade.py) is what the runtime and the admin commands use. Inside, each module
holds one job: items (the typed work items), claim, evaluation, execution (journal + CRM
calls), tagging, recording, failure, decisions, and the runner that drives the steps.
"""

from gateway.pipeline.facade import Pipeline

__all__ = ["Pipeline"]
