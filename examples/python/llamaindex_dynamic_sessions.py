"""LlamaIndex's Azure code interpreter tool spec, pointed at Tether.

    pip install llama-index-tools-azure-code-interpreter
    TETHER_URL=http://127.0.0.1:8080 TETHER_API_KEY=$(cat .tether/api-key) python llamaindex_dynamic_sessions.py

Not run by Tether's tests (the Python packages are not installed there); its requests are
replayed exactly in test/dynamic-sessions-legacy.test.ts.
"""
import os

from llama_index.tools.azure_code_interpreter import AzureCodeInterpreterToolSpec

spec = AzureCodeInterpreterToolSpec(pool_management_endpoint=os.environ.get("TETHER_URL", "http://127.0.0.1:8080") + "/dynamic-sessions")
# LlamaIndex has no constructor hook for the token: replace the attribute with one returning the Tether key.
key = os.environ["TETHER_API_KEY"]
spec.access_token_provider = lambda: key

print(spec.code_interpreter("import math\nmath.factorial(20)"))   # {'properties': {'status': 'Success', 'result': 2432902008176640000, ...}}
tools = spec.to_tool_list()                                         # hand these to a LlamaIndex agent
print([tool.metadata.name for tool in tools])
