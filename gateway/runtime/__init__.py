"""The runtime: starts, schedules and stops the rest (docs/DESIGN.md).

`Gateway` (gateway/runtime/gateway.py) is the running whole; `parts` builds what handles
mail; `intake`, `scheduler`, `threads`/`processes` (one worker loop, `loop`), `watchdog`
and `tasks` are its collaborators.
"""
