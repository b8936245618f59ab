
import sys

_agent = sys.modules.get("sandbox.agent")
if _agent is not None:
    _agent.Dispatcher.dispatch = lambda self, request: 0
