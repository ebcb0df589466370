"""LangChain's Azure dynamic sessions tool, pointed at Tether instead of Azure.

    pip install langchain-azure-dynamic-sessions
    TETHER_URL=http://127.0.0.1:8080 TETHER_API_KEY=$(cat .tether/api-key) python langchain_dynamic_sessions.py

Not run by Tether's tests (the Python packages are not installed there); the HTTP requests
this makes are replayed exactly in test/dynamic-sessions-legacy.test.ts.
"""
import os

from langchain_azure_dynamic_sessions import SessionsPythonREPLTool

endpoint = os.environ.get("TETHER_URL", "http://127.0.0.1:8080") + "/dynamic-sessions"
key = os.environ["TETHER_API_KEY"]

# The Tether API key is the bearer token: no Azure credential involved.
tool = SessionsPythonREPLTool(pool_management_endpoint=endpoint, access_token_provider=lambda: key)

print(tool.invoke("import sys\nprint(sys.version)\n6 * 7"))  # {"result": 42, "stdout": "3.x ...", "stderr": ""}
tool.upload_file(data=open(__file__, "rb"), remote_file_path="example.py")
print([f.filename for f in tool.list_files()])               # ['example.py']
print(tool.invoke("len(open('example.py').read())"))          # files live in the working directory (also /mnt/data with sandboxed launchers)
