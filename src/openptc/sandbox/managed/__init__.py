"""Stateless code interpreters as a backend (Bedrock AgentCore, or any interpreter API).

Such an interpreter cannot call back to the host mid-program, so ``replay`` runs the program
again with the tool results known so far: ``execution`` is that loop of passes, ``harness`` the
code that runs inside the interpreter and ``shipping`` how it is sent there and read back.
``interpreter`` is the interface of an interpreter, ``portable`` the tools that may run inside
one, and ``agentcore`` the AWS service (import ``openptc.sandbox.managed.agentcore`` for it: it
needs boto3).
"""

from openptc.sandbox.managed.interpreter import CodeInterpreter, CodeRun, LocalInterpreter
from openptc.sandbox.managed.portable import PortableTool, portable
from openptc.sandbox.managed.replay import ReplaySandbox

__all__ = [
    "CodeInterpreter",
    "CodeRun",
    "LocalInterpreter",
    "PortableTool",
    "ReplaySandbox",
    "portable",
]
